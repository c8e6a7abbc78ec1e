import type { Upstreams } from '@bff/loaders';
import type { FastifyInstance } from 'fastify';
import type { UpstreamGuards } from './upstreams.ts';

/**
 * `/healthz`: the process answers. `/readyz`: 503 while draining, or when no upstream can be
 * reached (nothing useful can be served). One upstream down is "degraded" but ready: the BFF
 * still serves partial results, and taking every replica out of the load balancer would turn
 * that into a full outage.
 */
export function registerHealthRoutes(
  app: FastifyInstance,
  state: {
    upstreams: Upstreams;
    guards: UpstreamGuards;
    draining: () => boolean;
    /** Open WebSocket connections and subscriptions, when subscriptions are served. */
    live?: () => { connections: number; subscriptions: number } | undefined;
  },
): void {
  const { upstreams, guards } = state;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const live = state.live?.();
    const subscriptions = live
      ? { connections: live.connections, subscriptions: live.subscriptions }
      : undefined;
    if (state.draining()) return reply.code(503).send({ status: 'draining', subscriptions });
    const check = { timeoutMs: 1_000 };
    const [identity, billing, product] = await Promise.all([
      upstreams.identity.ready(check),
      upstreams.billing.ready(check),
      upstreams.product.ready(check),
    ]);
    const reachable = { identity, billing, product };
    const breakers = {
      identity: guards.identity.state,
      billing: guards.billing.state,
      product: guards.product.state,
    };
    const healthy = (name: keyof typeof reachable) => reachable[name] && breakers[name] !== 'open';
    const up = (['identity', 'billing', 'product'] as const).filter(healthy).length;
    const status = up === 3 ? 'ready' : up === 0 ? 'unavailable' : 'degraded';
    return reply.code(up === 0 ? 503 : 200).send({ status, upstreams: reachable, breakers, subscriptions });
  });
}
