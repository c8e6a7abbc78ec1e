import { describe, expect, it } from 'vitest';
import { ConfigError, env, readConfig } from '../src/index.ts';

const schema = {
  PORT: env.port(5001),
  DATABASE_URL: env.optionalUrl(['postgres:', 'postgresql:']),
  SEED: env.bool(true),
  LOG_LEVEL: env.oneOf(['info', 'debug'], 'info'),
};

describe('readConfig', () => {
  it('applies defaults and returns a frozen object', () => {
    const config = readConfig(schema, {});
    expect(config).toEqual({ PORT: 5001, DATABASE_URL: undefined, SEED: true, LOG_LEVEL: 'info' });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('parses what is set, treating an empty variable as unset', () => {
    expect(readConfig(schema, { PORT: '0', SEED: 'no', DATABASE_URL: '' })).toMatchObject({
      PORT: 0,
      SEED: false,
    });
  });

  it('names every bad variable and the value it received', () => {
    let error: unknown;
    try {
      readConfig(schema, { PORT: '70000', DATABASE_URL: 'mysql://x', SEED: 'maybe', LOG_LEVEL: 'loud' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    for (const fragment of [
      'PORT',
      '"70000"',
      'DATABASE_URL',
      '"mysql://x"',
      'SEED',
      '"maybe"',
      'LOG_LEVEL',
      '"loud"',
    ]) {
      expect(message).toContain(fragment);
    }
    expect((error as ConfigError).problems).toHaveLength(4);
  });

  it('rejects a port that is not a number', () => {
    expect(() => readConfig(schema, { PORT: '50a1' })).toThrow(
      /PORT: expected a whole number \(received "50a1"\)/,
    );
  });
});
