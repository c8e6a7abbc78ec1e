// A fake Product replica for the load-balancing suites: the real proto and the standard health
// service on 127.0.0.1, GetProduct answering with the replica's name; each replica counts the
// calls it answered.
import { loadProductService } from '@bff/schema';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

export interface ProductReplica {
  readonly name: string;
  readonly port: number;
  /** GetProduct calls this replica answered. */
  readonly calls: number;
  /** Stops at once, in-flight calls and connections cut: a pod killed. */
  kill(): void;
}

/** Starts a replica on `port` (0 picks a free one) with the gRPC server options given. */
export async function startReplica(
  name: string,
  options: { port?: number; server?: grpc.ServerOptions } = {},
): Promise<ProductReplica> {
  let calls = 0;
  const server = new grpc.Server(options.server);
  const unimplemented: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) =>
    callback({ code: grpc.status.UNIMPLEMENTED });
  server.addService(loadProductService().service, {
    GetProduct: ((call, callback) => {
      calls++;
      callback(null, { id: call.request.id, name, price: { amountMinor: 100, currency: 'EUR' } });
    }) satisfies grpc.handleUnaryCall<{ id: string }, unknown>,
    GetProducts: unimplemented,
    ListProducts: unimplemented,
    UpdatePrice: unimplemented,
  });
  new HealthImplementation({ '': 'SERVING' }).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `127.0.0.1:${options.port ?? 0}`,
      grpc.ServerCredentials.createInsecure(),
      (error, bound) => (error ? reject(error) : resolve(bound)),
    ),
  );
  return {
    name,
    port,
    get calls() {
      return calls;
    },
    kill: () => server.forceShutdown(),
  };
}
