// Entry point for the Android BFF as a container runs it.
import { bffOptionsFromConfig, readAppVersionPolicy, readBffConfig } from '@bff/bff-server';
import { configOrExit, env, readConfig } from '@bff/config';
import { onShutdownSignal } from '@bff/http-service';
import { startAndroidBff } from './index.ts';

const config = configOrExit(() => readBffConfig(4002));
const own = configOrExit(() =>
  readConfig({ ANDROID_APP_LINK_BASE: env.url(['https:'], 'https://shop.example.com') }),
);
const bff = await startAndroidBff({
  ...bffOptionsFromConfig(config),
  appLinkBase: own.ANDROID_APP_LINK_BASE,
  appVersion: configOrExit(() =>
    readAppVersionPolicy('https://play.google.com/store/apps/details?id=com.example.shop'),
  ),
});
bff.app.log.info(
  `Android BFF listening on ${bff.url}/graphql${config.graphiql ? ` (GraphiQL: ${bff.url}/graphiql)` : ''}`,
);
onShutdownSignal(() => bff.close());
