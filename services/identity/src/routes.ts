import { randomUUID, timingSafeEqual } from 'node:crypto';
import {
  IDENTITY_MAX_BATCH,
  type IdentityUser,
  type RegisterUserRequest,
  registerUserRequestSchema,
  type TokenRequest,
  type TokenResponse,
  tokenRequestSchema,
  type UserParams,
  type UsersQuery,
  type UsersResponse,
  userParamsSchema,
  usersQuerySchema,
} from '@bff/contracts';
import { ErrorCode, HttpError, requestTraceContext } from '@bff/http-service';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { type KeyRing, SIGNING_ALG } from './keys.ts';
import { decoyHash, verifyPassword } from './passwords.ts';
import { EmailTakenError, type UserStore } from './users.ts';

const MAX_BATCH = IDENTITY_MAX_BATCH;

export interface IdentityRouteOptions {
  users: UserStore;
  keys: KeyRing;
  issuer: string;
  tokenTtlSeconds: number;
  /** The audiences tokens are issued for; any other is a 400. */
  audiences: readonly string[];
  /** Bearer token for the admin endpoints; absent disables them. */
  adminToken: string | undefined;
  /** Seconds clients may cache the JWKS. */
  jwksMaxAgeSeconds: number;
  /** Called after a transaction that enqueued events commits. */
  onEvent: () => void;
}

/** The contract's token request, its audience narrowed to the configured ones. */
function tokenBodySchema(audiences: readonly string[]) {
  return {
    ...tokenRequestSchema,
    properties: {
      ...tokenRequestSchema.properties,
      audience: { ...tokenRequestSchema.properties.audience, enum: [...audiences] },
    },
  };
}

export function identityRoutes(app: FastifyInstance, options: IdentityRouteOptions) {
  const { users, keys } = options;

  app.post<{ Body: TokenRequest; Reply: TokenResponse }>(
    '/v1/token',
    { schema: { body: tokenBodySchema(options.audiences) } },
    async (request) => {
      const { email: address, password, audience } = request.body;
      const user = await users.forLogin(address);
      // Always run the KDF, so an unknown email costs what a wrong password costs.
      const ok = await verifyPassword(password, user?.passwordHash ?? (await decoyHash));
      if (!user || !ok)
        throw new HttpError(401, ErrorCode.InvalidCredentials, 'Email or password is incorrect');
      const { kid, key } = await keys.current();
      const accessToken = await new SignJWT({ roles: user.roles, email: user.email, name: user.name })
        .setProtectedHeader({ alg: SIGNING_ALG, kid, typ: 'JWT' })
        .setIssuer(options.issuer)
        .setSubject(user.id)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(`${options.tokenTtlSeconds}s`)
        .setJti(randomUUID())
        .sign(key);
      return { access_token: accessToken, token_type: 'Bearer', expires_in: options.tokenTtlSeconds };
    },
  );

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    reply.header('cache-control', `public, max-age=${options.jwksMaxAgeSeconds}`);
    return { keys: await keys.published() };
  });

  app.post('/v1/admin/keys/rotate', async (request) => {
    if (!options.adminToken)
      throw new HttpError(404, ErrorCode.NotFound, 'No route POST /v1/admin/keys/rotate');
    const presented = Buffer.from(request.headers.authorization ?? '');
    const expected = Buffer.from(`Bearer ${options.adminToken}`);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      throw new HttpError(401, ErrorCode.Unauthorized, 'Admin token required');
    }
    const rotated = await keys.rotate();
    request.log.info({ kid: rotated.kid, retired: rotated.retired }, 'signing key rotated');
    return rotated;
  });

  app.get<{ Params: UserParams; Reply: IdentityUser }>(
    '/v1/users/:id',
    { schema: { params: userParamsSchema } },
    async (request) => {
      const [user] = await users.byIds([request.params.id]);
      if (!user) throw new HttpError(404, ErrorCode.NotFound, 'User not found');
      return user;
    },
  );

  app.get<{ Querystring: UsersQuery; Reply: UsersResponse }>(
    '/v1/users',
    { schema: { querystring: usersQuerySchema } },
    async (request) => {
      const ids = request.query.ids.split(',').filter(Boolean);
      if (ids.length > MAX_BATCH) {
        throw new HttpError(
          400,
          ErrorCode.BadRequest,
          `ids: at most ${MAX_BATCH} per request, received ${ids.length}`,
        );
      }
      return { users: await users.byIds(ids) };
    },
  );

  app.post<{ Body: RegisterUserRequest }>(
    '/v1/users',
    { schema: { body: registerUserRequestSchema } },
    async (request, reply) => {
      try {
        const user = await users.register(
          { ...request.body, name: request.body.name.trim() },
          requestTraceContext(request),
        );
        options.onEvent();
        return reply.code(201).send(user);
      } catch (error) {
        if (error instanceof EmailTakenError) {
          throw new HttpError(409, ErrorCode.EmailTaken, 'An account with this email already exists');
        }
        throw error;
      }
    },
  );
}
