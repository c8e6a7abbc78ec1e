import { UpstreamError, UpstreamErrorCode } from './errors.ts';
import { type CallOptions, isJsonObject, type RestClientOptions, RestTransport } from './rest.ts';

/** A JSON Web Key as a key set holds it: an object, whose members the verifier reads. */
export interface JsonWebKeyRecord {
  readonly [member: string]: unknown;
}

/** A JSON Web Key Set (RFC 7517): checked to be an object with a `keys` array of objects. */
export interface JsonWebKeySet {
  keys: JsonWebKeyRecord[];
}

export interface JwksClientOptions extends Omit<RestClientOptions, 'baseUrl' | 'connections'> {
  /** Identity's JWKS URL, http(s), e.g. `http://identity:4001/.well-known/jwks.json`. */
  url: string;
}

export interface JwksClient {
  /**
   * Identity's signing keys. Retried like any read; an answer that is not a key set is an
   * UpstreamError UPSTREAM_BAD_RESPONSE. Caching is the caller's (the verifier keeps the keys).
   */
  fetchKeySet(options?: CallOptions): Promise<JsonWebKeySet>;
  close(): Promise<void>;
}

/**
 * Fetches Identity's JWKS through the same transport as every other upstream call: a deadline,
 * the identity guard (retries, circuit breaker) when given, and `onCall` for every try. Its
 * own small pool, since the JWKS may be served from another origin than Identity's API.
 */
export function createJwksClient(options: JwksClientOptions): JwksClient {
  if (
    typeof options.url !== 'string' ||
    !URL.canParse(options.url) ||
    !/^https?:$/.test(new URL(options.url).protocol)
  ) {
    throw new TypeError(
      `createJwksClient: url must be an http(s) URL, received ${JSON.stringify(options.url)}`,
    );
  }
  const url = new URL(options.url);
  const path = `${url.pathname}${url.search}`;
  const operation = `GET ${url.pathname}`;
  // Fetches are rare and never concurrent (the verifier makes concurrent ones one): one
  // connection is plenty.
  const { url: _url, ...transport } = options;
  const rest = new RestTransport('identity', { ...transport, baseUrl: url.origin, connections: 1 });
  return {
    async fetchKeySet(callOptions) {
      const response = await rest.request<JsonWebKeySet>('GET', path, {
        ...callOptions,
        operation,
        accepts: isKeySet,
      });
      // Any answer but 200 (a 404 from a misconfigured URL, say) is the service's fault: the
      // request has no input of the caller's to refuse.
      if (response.status !== 200) {
        throw new UpstreamError(
          'identity',
          UpstreamErrorCode.BadResponse,
          `identity ${operation} answered ${response.status}`,
        );
      }
      return response.body;
    },
    close: () => rest.close(),
  };
}

function isKeySet(body: unknown): boolean {
  return isJsonObject(body) && Array.isArray(body.keys) && body.keys.every(isJsonObject);
}
