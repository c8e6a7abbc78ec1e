import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BffErrorCode } from '@bff/error-codes';
import type { FastifyInstance } from 'fastify';

const require = createRequire(import.meta.url);

/** A file inside an installed package, found through its package.json (UMD builds are not in `exports`). */
function packageFile(name: string, file: string): Buffer {
  return readFileSync(join(dirname(require.resolve(`${name}/package.json`)), file));
}

interface Asset {
  body: Buffer;
  type: string;
}

const INIT_SCRIPT = `
(function () {
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  var fetcher = GraphiQL.createFetcher({ url: new URL('/graphql', window.location.href).toString() });
  var defaultQuery = document.getElementById('graphiql').getAttribute('data-default-query');
  root.render(React.createElement(GraphiQL, { fetcher: fetcher, defaultQuery: defaultQuery, shouldPersistHeaders: true }));
})();
`;

const DEFAULT_QUERY = `# Sign in with the Identity service and add the token under Headers:
# { "Authorization": "Bearer <access_token>" }
{
  products(first: 3) {
    edges { node { id name price { formatted } } }
    pageInfo { hasNextPage endCursor }
  }
}
`;

/**
 * Whether the Accept header asks for a page rather than a GraphQL response: `text/html` listed
 * with a weight above every JSON type's (a browser's address bar sends `text/html,…,*\/*;q=0.8`;
 * clients send a JSON type, `*\/*` or nothing, and wildcards never count as asking for HTML).
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = 0;
  let json = 0;
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const weight = params.find((param) => param.startsWith('q='));
    const q = weight === undefined ? 1 : Number(weight.slice(2));
    if (!Number.isFinite(q)) continue;
    if (type === 'text/html') html = Math.max(html, q);
    else if (type === 'application/json' || type === 'application/graphql-response+json')
      json = Math.max(json, q);
  }
  return html > 0 && html > json;
}

/** The GraphQL-over-HTTP GET parameters: a request with any of them is a client's, not a browser's visit. */
const GRAPHQL_PARAMETERS = ['query', 'extensions', 'operationName', 'variables'];

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * GraphiQL at `/graphiql`, every asset served from this process (React and GraphiQL's UMD
 * builds from node_modules): no CDN, so it works offline and behind strict egress rules.
 * A browser that opens `graphqlPath` itself (GET, asking for HTML, no GraphQL parameters) is
 * redirected there, since that is where people look for it; clients' GETs are untouched.
 */
export function registerGraphiql(app: FastifyInstance, title: string, graphqlPath = '/graphql'): void {
  // onRequest: before the request guards and Apollo, which would answer the visit with a 400.
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'GET' || request.routeOptions.url !== graphqlPath) return;
    if (!prefersHtml(request.headers.accept)) return;
    const params = request.query as Record<string, unknown> | null | undefined;
    if (params && GRAPHQL_PARAMETERS.some((name) => params[name] !== undefined)) return;
    return reply.code(302).header('location', '/graphiql').header('cache-control', 'no-store').send();
  });
  const assets = new Map<string, Asset>([
    ['react.js', { body: packageFile('react', 'umd/react.production.min.js'), type: 'text/javascript' }],
    [
      'react-dom.js',
      { body: packageFile('react-dom', 'umd/react-dom.production.min.js'), type: 'text/javascript' },
    ],
    ['graphiql.js', { body: packageFile('graphiql', 'dist/index.umd.js'), type: 'text/javascript' }],
    ['graphiql.css', { body: packageFile('graphiql', 'dist/style.css'), type: 'text/css' }],
    ['init.js', { body: Buffer.from(INIT_SCRIPT), type: 'text/javascript' }],
  ]);
  const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · GraphiQL</title>
<link rel="stylesheet" href="/graphiql/assets/graphiql.css">
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql" data-default-query="${escapeAttribute(DEFAULT_QUERY)}">Loading…</div>
<script src="/graphiql/assets/react.js"></script>
<script src="/graphiql/assets/react-dom.js"></script>
<script src="/graphiql/assets/graphiql.js"></script>
<script src="/graphiql/assets/init.js"></script>
</body>
</html>`;
  const csp = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
  ].join('; ');

  app.get('/graphiql', async (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', csp)
      .send(page),
  );
  app.get<{ Params: { name: string } }>('/graphiql/assets/:name', async (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset)
      return reply
        .code(404)
        .send({ errors: [{ message: 'No such asset', extensions: { code: BffErrorCode.NotFound } }] });
    return reply
      .header('content-type', asset.type)
      .header('cache-control', 'public, max-age=3600')
      .send(asset.body);
  });
}
