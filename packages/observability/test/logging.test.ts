import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions, redactVariables } from '../src/index.ts';

describe('redactVariables', () => {
  it('censors secrets, personal data and emails wherever they sit', () => {
    expect(
      redactVariables({
        email: 'ada@example.com',
        password: 'hunter2',
        input: { note: 'write to grace@example.com', id: 'p-1', accessToken: 'abc' },
        ids: ['p-1', 'p-2'],
      }),
    ).toEqual({
      email: '[redacted]',
      password: '[redacted]',
      input: { note: '[redacted]', id: 'p-1', accessToken: '[redacted]' },
      ids: ['p-1', 'p-2'],
    });
  });

  it('never lets a generated email through and never throws', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.emailAddress(), (value, email) => {
        const out = JSON.stringify(redactVariables({ value, nested: [{ x: email }] }));
        expect(out).not.toContain(email);
      }),
      { numRuns: 300 },
    );
  });

  it('bounds what it keeps from a huge input', () => {
    const huge = Array.from({ length: 2_000 }, (_, i) => ({ id: `p-${i}`, text: 'x'.repeat(2_000) }));
    expect(JSON.stringify(redactVariables({ huge })).length).toBeLessThan(20_000);
  });
});

describe('loggerOptions', () => {
  it('writes JSON lines with the base fields and censors credentials', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = pino(loggerOptions({ base: { service: 'billing' }, destination }), destination);
    logger.info(
      { req: { headers: { authorization: 'Bearer secret', cookie: 's=1', accept: '*/*' } } },
      'hello',
    );
    const line = JSON.parse(lines[0] ?? '{}');
    expect(line).toMatchObject({ service: 'billing', level: 'info', msg: 'hello' });
    expect(line.req.headers).toEqual({ authorization: '[redacted]', cookie: '[redacted]', accept: '*/*' });
    expect(Number.isNaN(Date.parse(line.time))).toBe(false);
  });

  it('refuses an unknown level or format, naming it', () => {
    expect(() => loggerOptions({ base: {}, level: 'loud' })).toThrow(/"loud"/);
    expect(() => loggerOptions({ base: {}, format: 'xml' as never })).toThrow(/"xml"/);
  });
});
