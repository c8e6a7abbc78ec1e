import type { IdentityUser, TokenRequest, TokenResponse, UsersResponse } from '@bff/contracts';
import { type CallOptions, isJsonObject, type RestClientOptions, RestTransport, unexpected } from './rest.ts';

export type { IdentityUser } from '@bff/contracts';

/** Identity refused the credentials. */
export class InvalidCredentialsError extends Error {
  override readonly name = 'InvalidCredentialsError';
}

export interface IdentityClient {
  /** An access token for `audience`; InvalidCredentialsError for a wrong email or password. Never retried. */
  issueToken(
    // The audience stays a string here: callers pass what their client claimed, and Identity's
    // refusal (400) of one it does not issue for is an InvalidCredentialsError.
    credentials: Omit<TokenRequest, 'audience'> & { audience: string },
    options?: CallOptions,
  ): Promise<{ accessToken: string; expiresIn: number }>;
  /** Known users in request order; unknown ids are left out. At most 100 ids. */
  getUsers(ids: readonly string[], options?: CallOptions): Promise<IdentityUser[]>;
  /** Whether the service answers `/readyz`. */
  ready(options?: CallOptions): Promise<boolean>;
  close(): Promise<void>;
}

export function createIdentityClient(options: RestClientOptions): IdentityClient {
  const rest = new RestTransport('identity', options);
  return {
    async issueToken(credentials, callOptions) {
      const response = await rest.request<TokenResponse>('POST', '/v1/token', {
        ...callOptions,
        operation: 'POST /v1/token',
        body: credentials,
        accepts: (body) =>
          isJsonObject(body) && typeof body.access_token === 'string' && typeof body.expires_in === 'number',
      });
      if (response.status === 401 || response.status === 400)
        throw new InvalidCredentialsError('Email or password is incorrect');
      if (response.status !== 200) unexpected('identity', 'POST /v1/token', response);
      return { accessToken: response.body.access_token, expiresIn: response.body.expires_in };
    },
    async getUsers(ids, callOptions) {
      if (ids.length === 0) return [];
      const query = ids.map(encodeURIComponent).join(',');
      const response = await rest.request<UsersResponse>('GET', `/v1/users?ids=${query}`, {
        ...callOptions,
        operation: 'GET /v1/users',
        batchSize: ids.length,
        accepts: (body) => isJsonObject(body) && Array.isArray(body.users),
      });
      if (response.status !== 200) unexpected('identity', 'GET /v1/users', response);
      return response.body.users;
    },
    ready: (callOptions) => rest.ready(callOptions),
    close: () => rest.close(),
  };
}
