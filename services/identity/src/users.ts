import { randomUUID } from 'node:crypto';
import type { IdentityUser } from '@bff/contracts';
import { type Database, isUniqueViolation, type Queryable } from '@bff/db';
import type { DemoUser } from '@bff/demo-data';
import { enqueueEvent } from '@bff/events';
import type { Context } from '@bff/observability';
import { hashPassword } from './passwords.ts';

/** A user as Identity answers it: the REST contract's type. */
export type User = IdentityUser;

interface UserRow {
  id: string;
  email: string;
  name: string;
  avatar_url: string | null;
  roles: string[];
  created_at: Date;
  password_hash: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PUBLIC_COLUMNS = 'id, email, name, avatar_url, roles, created_at';

export function toUser(row: Omit<UserRow, 'password_hash'>): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    avatarUrl: row.avatar_url,
    roles: row.roles,
    createdAt: row.created_at.toISOString(),
  };
}

export class EmailTakenError extends Error {}

/** The Identity service's user SQL. Password hashes never leave this class except for login. */
export class UserStore {
  constructor(private readonly db: Database) {}

  /** Users for `ids` in request order; unknown and malformed ids are left out. */
  async byIds(ids: readonly string[]): Promise<User[]> {
    const wanted = [...new Set(ids.filter((id) => UUID.test(id)).map((id) => id.toLowerCase()))];
    if (wanted.length === 0) return [];
    const result = await this.db.query<UserRow>(
      `SELECT ${PUBLIC_COLUMNS} FROM users WHERE id = ANY($1::uuid[])`,
      [wanted],
    );
    const byId = new Map(result.rows.map((row) => [row.id, toUser(row)]));
    return wanted.flatMap((id) => byId.get(id) ?? []);
  }

  async forLogin(email: string): Promise<(User & { passwordHash: string }) | null> {
    const result = await this.db.query<UserRow>(
      `SELECT ${PUBLIC_COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)`,
      [email],
    );
    const row = result.rows[0];
    return row ? { ...toUser(row), passwordHash: row.password_hash } : null;
  }

  /**
   * Creates the user and records `identity.user.registered` in the same transaction, carrying
   * `traceContext` (the registering request's) to the event's consumers.
   */
  async register(
    input: {
      email: string;
      password: string;
      name: string;
      avatarUrl?: string | undefined;
    },
    traceContext?: Context,
  ): Promise<User> {
    const passwordHash = await hashPassword(input.password);
    try {
      return await this.db.transaction(async (tx) => {
        const result = await tx.query<UserRow>(
          `INSERT INTO users (id, email, name, avatar_url, roles, password_hash)
           VALUES ($1, $2, $3, $4, '{customer}', $5) RETURNING ${PUBLIC_COLUMNS}`,
          [randomUUID(), input.email, input.name, input.avatarUrl ?? null, passwordHash],
        );
        const user = toUser(result.rows[0] as UserRow);
        await enqueueEvent(
          tx,
          'identity',
          'identity.user.registered',
          1,
          { userId: user.id, email: user.email, name: user.name },
          { traceContext },
        );
        return user;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new EmailTakenError();
      throw error;
    }
  }
}

/** Inserts the demo users when the table is empty. */
export async function seedUsers(
  tx: Queryable,
  users: readonly DemoUser[],
  password: string,
): Promise<number> {
  const existing = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
  if ((existing.rows[0]?.n ?? 0) > 0) return 0;
  for (const user of users) {
    await tx.query(
      `INSERT INTO users (id, email, name, avatar_url, roles, password_hash) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT DO NOTHING`,
      [user.id, user.email, user.name, user.avatarUrl, user.roles, await hashPassword(password)],
    );
  }
  return users.length;
}
