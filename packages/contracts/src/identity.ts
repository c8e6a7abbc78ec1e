/**
 * Identity's REST contract. The request schemas are what its routes validate with; the request
 * types are derived from them (json-schema-to-ts), so the type and the validation cannot drift.
 */
import type { FromSchema } from 'json-schema-to-ts';

/**
 * What a token audience looks like: an app's name (`web`, `ios`, the `bff.name` of any app).
 * Which audiences Identity issues is its configuration (`audiences`, `TOKEN_AUDIENCES`), not
 * this contract, so that a new app needs no change here.
 */
export const IDENTITY_AUDIENCE_PATTERN = '^[a-z][a-z0-9-]{0,31}$';
/** A token audience: one app's name. */
export type IdentityAudience = string;

/** At most this many ids per `GET /v1/users`. */
export const IDENTITY_MAX_BATCH = 100;

/** No C0/C1 controls or DEL: PostgreSQL refuses a NUL in text, which would surface as a 500. */
const NO_CONTROLS = '^[^\\u0000-\\u001f\\u007f-\\u009f]*$';

/** `POST /v1/token` body. */
export const tokenRequestSchema = {
  type: 'object',
  required: ['email', 'password', 'audience'],
  additionalProperties: false,
  properties: {
    // Any text may be tried (a wrong one is a 401), but not what the lookup cannot hold.
    email: { type: 'string', minLength: 1, maxLength: 254, pattern: NO_CONTROLS },
    password: { type: 'string', minLength: 1, maxLength: 128 },
    // Identity narrows this to its configured audiences when it registers the route.
    audience: { type: 'string', pattern: IDENTITY_AUDIENCE_PATTERN },
  },
} as const;
export type TokenRequest = FromSchema<typeof tokenRequestSchema>;

/** `POST /v1/token` 200 body. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

/** `GET /v1/users/:id` params. */
export const userParamsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 64 } },
} as const;
export type UserParams = FromSchema<typeof userParamsSchema>;

/** `GET /v1/users?ids=a,b` query: comma-separated ids. */
export const usersQuerySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ids'],
  properties: { ids: { type: 'string', minLength: 1, maxLength: 4_000 } },
} as const;
export type UsersQuery = FromSchema<typeof usersQuerySchema>;

/** A user as Identity answers it (`GET /v1/users/:id`, `POST /v1/users` 201). */
export interface IdentityUser {
  id: string;
  email: string;
  name: string;
  avatarUrl: string | null;
  roles: string[];
  createdAt: string;
}

/** `GET /v1/users` 200 body: known users in request order. */
export interface UsersResponse {
  users: IdentityUser[];
}

/** `POST /v1/users` body. */
export const registerUserRequestSchema = {
  type: 'object',
  required: ['email', 'password', 'name'],
  additionalProperties: false,
  properties: {
    email: {
      type: 'string',
      minLength: 3,
      maxLength: 254,
      // \s does not cover NUL or the other controls that are not whitespace.
      pattern:
        '^[^\\s@\\u0000-\\u001f\\u007f-\\u009f]+@[^\\s@\\u0000-\\u001f\\u007f-\\u009f]+\\.[^\\s@\\u0000-\\u001f\\u007f-\\u009f]+$',
    },
    password: { type: 'string', minLength: 8, maxLength: 128 },
    name: { type: 'string', minLength: 1, maxLength: 100, pattern: NO_CONTROLS },
    avatarUrl: {
      type: 'string',
      maxLength: 2_000,
      pattern: '^https://[^\\u0000-\\u0020\\u007f-\\u009f]*$',
    },
  },
} as const;
export type RegisterUserRequest = FromSchema<typeof registerUserRequestSchema>;
