// Cancellation: the light cancellation signal the BFF makes per request and per upstream call,
// which must behave as an AbortSignal's `{ once: true }` listeners do.
import { describe, expect, it } from 'vitest';
import { Cancellation } from '../src/index.ts';

describe('Cancellation', () => {
  it('runs each listener once, in the order added, and only once however often it is aborted', () => {
    const cancel = new Cancellation();
    const ran: string[] = [];
    cancel.addEventListener('abort', () => ran.push('a'));
    cancel.addEventListener('abort', () => ran.push('b'));
    expect(cancel.aborted).toBe(false);
    cancel.abort('gone');
    cancel.abort('again');
    expect(ran).toEqual(['a', 'b']);
    expect(cancel.aborted).toBe(true);
    expect(cancel.reason).toBe('gone');
  });

  it('never runs a listener removed before the abort, or one added after it', () => {
    const cancel = new Cancellation();
    const ran: string[] = [];
    const removed = () => ran.push('removed');
    cancel.addEventListener('abort', removed);
    cancel.addEventListener('abort', () => ran.push('kept'));
    cancel.removeEventListener('abort', removed);
    cancel.removeEventListener('abort', () => ran.push('never added'));
    cancel.abort();
    cancel.addEventListener('abort', () => ran.push('late'));
    expect(ran).toEqual(['kept']);
  });

  it('removes one registration of a listener added twice, as many calls as there were adds', () => {
    const cancel = new Cancellation();
    let runs = 0;
    const listener = () => runs++;
    cancel.addEventListener('abort', listener);
    cancel.addEventListener('abort', listener);
    cancel.removeEventListener('abort', listener);
    cancel.abort();
    expect(runs).toBe(1);
  });

  it('runs the other listeners when one throws, and raises that error on the next tick', async () => {
    const cancel = new Cancellation();
    const ran: string[] = [];
    const raised = new Promise<unknown>((resolve) => {
      const listeners = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.once('uncaughtException', (error) => {
        for (const listener of listeners) process.on('uncaughtException', listener);
        resolve(error);
      });
    });
    cancel.addEventListener('abort', () => {
      throw new Error('listener failed');
    });
    cancel.addEventListener('abort', () => ran.push('after'));
    cancel.abort();
    expect(ran).toEqual(['after']);
    expect(((await raised) as Error).message).toBe('listener failed');
  });
});
