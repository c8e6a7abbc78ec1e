import { parseCookie, stringifySetCookie } from 'cookie';

/**
 * The web app's session cookie. `__Host-` makes browsers refuse it unless it is Secure, has
 * Path=/ and no Domain: it is pinned to this origin, and no sibling subdomain can plant one.
 */
export const SESSION_COOKIE = '__Host-bff_session';

/**
 * The session token a `Cookie` header carries, or undefined when it carries none. Never
 * throws: a malformed, huge or hostile header is simply no session (the verifier then judges
 * whatever token was found).
 */
export function readSessionToken(cookieHeader: string | null | undefined): string | undefined {
  if (typeof cookieHeader !== 'string' || cookieHeader.length === 0) return undefined;
  try {
    const token = parseCookie(cookieHeader)[SESSION_COOKIE];
    return token ? token : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The `Set-Cookie` value that starts a session holding `token` for `maxAgeSeconds`: HttpOnly
 * (no script reads it), Secure, SameSite=Strict (no cross-site request carries it), Path=/.
 * A fractional lifetime is rounded down; a negative or non-finite one is a TypeError.
 */
export function startSessionCookie(token: string, maxAgeSeconds: number): string {
  if (typeof token !== 'string' || token.length === 0)
    throw new TypeError(`startSessionCookie: token must be a non-empty string, received ${typeof token}`);
  if (!(typeof maxAgeSeconds === 'number' && Number.isFinite(maxAgeSeconds) && maxAgeSeconds >= 0))
    throw new TypeError(
      `startSessionCookie: maxAgeSeconds must be a non-negative number, received ${String(maxAgeSeconds)}`,
    );
  return setCookie(token, Math.floor(maxAgeSeconds));
}

/** The `Set-Cookie` value that ends the session: the same cookie, emptied, with Max-Age=0. */
export function endSessionCookie(): string {
  return setCookie('', 0);
}

function setCookie(value: string, maxAge: number): string {
  return stringifySetCookie({
    name: SESSION_COOKIE,
    value,
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    maxAge,
  });
}
