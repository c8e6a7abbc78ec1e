// Entry point for the iOS BFF as a container runs it.
import { bffOptionsFromConfig, readAppVersionPolicy, readBffConfig } from '@bff/bff-server';
import { configOrExit, env, readConfig } from '@bff/config';
import { onShutdownSignal } from '@bff/http-service';
import { startIosBff } from './index.ts';

const config = configOrExit(() => readBffConfig(4001));
const own = configOrExit(() =>
  readConfig({ IOS_UNIVERSAL_LINK_BASE: env.url(['https:'], 'https://shop.example.com') }),
);
const bff = await startIosBff({
  ...bffOptionsFromConfig(config),
  universalLinkBase: own.IOS_UNIVERSAL_LINK_BASE,
  appVersion: configOrExit(() => readAppVersionPolicy('https://apps.apple.com/app/id0000000000')),
});
bff.app.log.info(
  `iOS BFF listening on ${bff.url}/graphql${config.graphiql ? ` (GraphiQL: ${bff.url}/graphiql)` : ''}`,
);
onShutdownSignal(() => bff.close());
