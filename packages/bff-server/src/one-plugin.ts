import type {
  ApolloServerPlugin,
  BaseContext,
  GraphQLRequestContext,
  GraphQLRequestContextDidEncounterErrors,
  GraphQLRequestContextDidResolveOperation,
  GraphQLRequestContextResponseForOperation,
  GraphQLRequestContextWillSendResponse,
  GraphQLRequestListener,
  GraphQLResponse,
} from '@apollo/server';

/** The request hooks the composed listener passes on (all the BFF's plugins use). */
type PassedHook = 'didResolveOperation' | 'didEncounterErrors' | 'willSendResponse';
/**
 * Request hooks it does not pass on: a plugin with one of them must stay a plugin of its own.
 * (The fast route does not call them either.)
 */
export const NOT_PASSED = [
  'didResolveSource',
  'parsingDidStart',
  'validationDidStart',
  'executionDidStart',
  'didEncounterSubsequentErrors',
  'willSendSubsequentPayload',
] as const;
/** Server hooks: a plugin with one of these must stay a plugin of its own too. */
const SERVER_HOOKS = ['serverWillStart', 'startupDidFail'] as const;

/**
 * Several plugins as one. Apollo calls every request hook of every request listener through a
 * `Promise.all` over all of them (and `responseForOperation` with an `await` per listener), whether
 * a listener has the hook or not: with the BFF's seven plugins that was a quarter of everything the
 * BFF allocated per request on the small benchmark workload. As one plugin, Apollo sees one
 * listener, and each hook calls only the listeners that have it.
 *
 * What Apollo does is kept: every plugin's `requestDidStart` is started before any is awaited;
 * a hook's listeners are all started, in the plugins' order, before any is awaited, and the first
 * to reject rejects the hook; `responseForOperation` asks the listeners in order until one answers.
 * `unexpectedErrorProcessingRequest`, `contextCreationDidFail` and `invalidRequestWasReceived`
 * are passed on the same way. A plugin with a server hook or a request hook this does not pass on
 * (parsing, validation, execution, incremental delivery) is refused here: keep it apart.
 */
export function asOnePlugin<TContext extends BaseContext>(
  plugins: readonly ApolloServerPlugin<TContext>[],
): ApolloServerPlugin<TContext> {
  for (const [index, plugin] of plugins.entries()) {
    const hook = SERVER_HOOKS.find((name) => plugin[name] !== undefined);
    if (hook) throw new TypeError(`asOnePlugin: plugin ${index} has ${hook}; keep it out of the composition`);
  }
  const starters = plugins.filter((plugin) => plugin.requestDidStart !== undefined);
  const each =
    <K extends 'unexpectedErrorProcessingRequest' | 'contextCreationDidFail' | 'invalidRequestWasReceived'>(
      name: K,
    ) =>
    async (argument: Parameters<NonNullable<ApolloServerPlugin<TContext>[K]>>[0]) => {
      const started: Promise<void>[] = [];
      for (const plugin of plugins) {
        const hook = plugin[name] as ((argument: unknown) => Promise<void>) | undefined;
        if (hook) started.push(hook.call(plugin, argument));
      }
      await Promise.all(started);
    };
  return {
    async requestDidStart(requestContext) {
      const started: Promise<GraphQLRequestListener<TContext> | undefined>[] = [];
      for (const plugin of starters)
        started.push(plugin.requestDidStart?.call(plugin, requestContext) as Promise<never>);
      const listeners: GraphQLRequestListener<TContext>[] = [];
      for (const listener of await Promise.all(started)) {
        if (!listener) continue;
        const unsupported = NOT_PASSED.find((name) => listener[name] !== undefined);
        if (unsupported)
          throw new TypeError(`asOnePlugin: a request listener has ${unsupported}, which is not passed on`);
        listeners.push(listener);
      }
      return listeners.length === 0 ? undefined : new OneListener(listeners);
    },
    unexpectedErrorProcessingRequest: each('unexpectedErrorProcessingRequest'),
    contextCreationDidFail: each('contextCreationDidFail'),
    invalidRequestWasReceived: each('invalidRequestWasReceived'),
  };
}

/** One request's listeners, as one. */
class OneListener<TContext extends BaseContext> implements GraphQLRequestListener<TContext> {
  constructor(private readonly listeners: readonly GraphQLRequestListener<TContext>[]) {}

  didResolveOperation(requestContext: GraphQLRequestContextDidResolveOperation<TContext>): Promise<void> {
    return this.all('didResolveOperation', requestContext);
  }

  didEncounterErrors(requestContext: GraphQLRequestContextDidEncounterErrors<TContext>): Promise<void> {
    return this.all('didEncounterErrors', requestContext);
  }

  willSendResponse(requestContext: GraphQLRequestContextWillSendResponse<TContext>): Promise<void> {
    return this.all('willSendResponse', requestContext);
  }

  async responseForOperation(
    requestContext: GraphQLRequestContextResponseForOperation<TContext>,
  ): Promise<GraphQLResponse | null> {
    for (const listener of this.listeners) {
      if (!listener.responseForOperation) continue;
      const response = await listener.responseForOperation(requestContext);
      if (response !== null && response !== undefined) return response;
    }
    return null;
  }

  /** Starts the hook of every listener that has it, in order, then waits for them all. */
  private all(name: PassedHook, requestContext: GraphQLRequestContext<TContext>): Promise<void> {
    let single: Promise<void> | undefined;
    let several: Promise<void>[] | undefined;
    for (const listener of this.listeners) {
      const hook = listener[name] as ((context: unknown) => Promise<void>) | undefined;
      if (!hook) continue;
      // A hook that throws before its first await rejects the hook, as under Promise.all.
      let started: Promise<void>;
      try {
        started = hook.call(listener, requestContext);
      } catch (error) {
        started = Promise.reject(error);
      }
      if (several) several.push(started);
      else if (single) several = [single, started];
      else single = started;
    }
    if (several) return Promise.all(several).then(nothing);
    return single ?? DONE;
  }
}

const DONE: Promise<void> = Promise.resolve();
const nothing = (): void => {};
