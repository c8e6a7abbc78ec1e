// The web app's cookie session: the Set-Cookie values that start and end it, and reading the
// token back from whatever Cookie header a client sends (never throwing).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endSessionCookie, readSessionToken, SESSION_COOKIE, startSessionCookie } from '../src/index.ts';

const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJl';

describe('startSessionCookie / endSessionCookie', () => {
  it('starts a __Host- cookie that is HttpOnly, Secure, SameSite=Strict, Path=/ and has no Domain', () => {
    const header = startSessionCookie(TOKEN, 900);
    expect(SESSION_COOKIE).toBe('__Host-bff_session');
    expect(header.startsWith(`__Host-bff_session=${TOKEN};`)).toBe(true);
    const attributes = header.split('; ').slice(1);
    expect(attributes).toEqual(
      expect.arrayContaining(['Max-Age=900', 'Path=/', 'HttpOnly', 'Secure', 'SameSite=Strict']),
    );
    expect(header).not.toMatch(/Domain/i);
  });

  it('rounds a fractional lifetime down and names a bad one', () => {
    expect(startSessionCookie(TOKEN, 899.9)).toMatch(/Max-Age=899;/);
    expect(() => startSessionCookie(TOKEN, -1)).toThrow(/maxAgeSeconds .*received -1/);
    expect(() => startSessionCookie(TOKEN, Number.NaN)).toThrow(/received NaN/);
    expect(() => startSessionCookie('', 60)).toThrow(TypeError);
  });

  it('ends the session with the same cookie, emptied and expired', () => {
    const header = endSessionCookie();
    expect(header).toMatch(/^__Host-bff_session=;/);
    expect(header).toMatch(/Max-Age=0/);
    expect(header).toMatch(/Path=\//);
    expect(header).toMatch(/Secure/);
  });
});

describe('readSessionToken', () => {
  it('reads back the token a started session set, among other cookies', () => {
    const pair = startSessionCookie(TOKEN, 60).split(';')[0] as string;
    expect(readSessionToken(pair)).toBe(TOKEN);
    expect(readSessionToken(`theme=dark; ${pair}; lang=en`)).toBe(TOKEN);
  });

  it('finds no session in no header, an empty cookie, or a lookalike name', () => {
    expect(readSessionToken(undefined)).toBeUndefined();
    expect(readSessionToken(null)).toBeUndefined();
    expect(readSessionToken('')).toBeUndefined();
    expect(readSessionToken('__Host-bff_session=')).toBeUndefined();
    expect(readSessionToken(`bff_session=${TOKEN}`)).toBeUndefined();
    expect(readSessionToken(`__host-bff_session=${TOKEN}`)).toBeUndefined();
  });

  it('never throws on a malformed or huge header', () => {
    const hostile = [
      ';;;;==;=',
      '__Host-bff_session=%E0%A4%A', // broken percent-encoding
      '__Host-bff_session="unterminated',
      '__proto__=x; constructor=y',
      `__Host-bff_session=${'a'.repeat(1_000_000)}`,
      `${'x=1; '.repeat(100_000)}__Host-bff_session=${TOKEN}`,
      '\u0000\uffff\ud800',
    ];
    for (const header of hostile) expect(() => readSessionToken(header)).not.toThrow();
    expect(readSessionToken(hostile[5])).toBe(TOKEN);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 2_000 }), (header) => {
        const token = readSessionToken(header);
        return token === undefined || typeof token === 'string';
      }),
      { numRuns: 500 },
    );
  });
});
