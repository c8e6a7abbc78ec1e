export interface DemoUser {
  id: string;
  email: string;
  name: string;
  avatarUrl: string;
  roles: string[];
}

/** The password of every demo user. For local exploration only; never seeded in production data. */
export const DEMO_PASSWORD = 'demo-password';

export const demoUsers: readonly DemoUser[] = Object.freeze([
  {
    id: '0a1d2a9e-5a3c-4c1e-9d0a-000000000ada',
    email: 'ada@example.com',
    name: 'Ada Lovelace',
    avatarUrl: 'https://images.example.com/avatars/ada.png',
    roles: ['customer', 'admin'],
  },
  {
    id: '0a1d2a9e-5a3c-4c1e-9d0a-000000009ace',
    email: 'grace@example.com',
    name: 'Grace Hopper',
    avatarUrl: 'https://images.example.com/avatars/grace.png',
    roles: ['customer'],
  },
]);
