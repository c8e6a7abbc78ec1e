// Entry point for the web BFF as a container runs it.
import { bffOptionsFromConfig, readBffConfig } from '@bff/bff-server';
import { configOrExit, env, readConfig } from '@bff/config';
import { onShutdownSignal } from '@bff/http-service';
import { startWebBff } from './index.ts';

const config = configOrExit(() => readBffConfig(4000));
const own = configOrExit(() =>
  readConfig({
    /** Comma-separated browser origins allowed to call this BFF (CORS), e.g. https://shop.example.com */
    CORS_ORIGINS: env.optionalString(),
  }),
);
const corsOrigins = own.CORS_ORIGINS?.split(',')
  .map((o) => o.trim())
  .filter(Boolean);
const bff = await startWebBff({ ...bffOptionsFromConfig(config), corsOrigins });
bff.app.log.info(
  `web BFF listening on ${bff.url}/graphql${config.graphiql ? ` (GraphiQL: ${bff.url}/graphiql)` : ''}`,
);
onShutdownSignal(() => bff.close());
