// deploy/k8s checked without a cluster: every overlay rendered (scripts/kustomize.ts, and
// `kubectl kustomize` where kubectl is installed, which must agree), every object validated
// against the Kubernetes v1.33 OpenAPI schemas (kubernetes-models 4.5), and our own rules.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBffConfig } from '@bff/bff-server';
import { readBillingConfig } from '@bff/billing-service';
import { readProductConfig } from '@bff/product-service';
import { createProductClient } from '@bff/upstream-clients';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { SHIPPED_BFF_NODE_FLAGS } from '../../bench/harness.ts';
import { K8S_DIR, type KubernetesObject, renderKustomization } from '../../scripts/kustomize.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const OVERLAYS = ['overlays/dev', 'overlays/prod'] as const;
const rendered = new Map<string, KubernetesObject[]>(
  ['base', ...OVERLAYS].map((dir) => [dir, renderKustomization(join(K8S_DIR, dir))]),
);
const overlay = (name: string) => rendered.get(name) ?? [];

/** The processes and how each is reached, as the code defines them. */
const BFFS = { 'web-bff': 4000, 'ios-bff': 4001, 'android-bff': 4002 } as const;
const SERVICES = { identity: 5001, billing: 5002, product: 5003 } as const;
/** `onShutdownSignal`'s budget (15 s) is the longest a process takes to stop. */
const SHUTDOWN_BUDGET_S = 15;
/** The Secrets the tree refers to by name, and that the README tells an operator to create. */
const SECRETS = ['billing-db', 'identity-admin', 'identity-db', 'product-db', 'rabbitmq', 'redis'];

// biome-ignore lint/suspicious/noExplicitAny: rendered YAML is walked field by field below
type Any = any;
interface Container {
  name: string;
  image: string;
  ports: { name: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: Any }[];
  envFrom?: { configMapRef?: { name: string } }[];
  [field: string]: Any;
}

function deployments(objects: KubernetesObject[]) {
  return objects
    .filter((o) => o.kind === 'Deployment')
    .map((o) => ({ object: o, name: o.metadata.name, pod: (o as Any).spec.template.spec as Any }));
}

function migrationJobs(objects: KubernetesObject[]) {
  return objects
    .filter((o) => o.kind === 'Job')
    .map((o) => ({ object: o as Any, name: o.metadata.name, pod: (o as Any).spec.template.spec as Any }));
}

/** `registry/name:tag@digest` split, as Kustomize's `images` writes it. */
function imageParts(image: string): { tag?: string; digest?: string } {
  const [withTag = '', digest] = image.split('@');
  const colon = withTag.lastIndexOf(':');
  const tag = colon > withTag.lastIndexOf('/') ? withTag.slice(colon + 1) : undefined;
  return { ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/**
 * The rules every pod of ours follows, whatever runs it: non-root, no service-account token, a
 * `/tmp` emptyDir under a read-only root, no privilege, requests and a memory limit, a pinned
 * image; and the three probes for a process that serves (a Job's pods serve nothing).
 */
function expectLockedDown(name: string, pod: Any, options: { probes: boolean }): void {
  expect(pod.securityContext.runAsNonRoot, name).toBe(true);
  expect(pod.securityContext.runAsUser, name).toBeGreaterThan(0);
  expect(pod.automountServiceAccountToken, name).toBe(false);
  const tmp = pod.volumes.find((v: Any) => v.emptyDir && v.name === 'tmp');
  expect(tmp, `${name}: an emptyDir for /tmp`).toBeDefined();
  for (const container of pod.containers as Container[]) {
    const where = `${name}/${container.name}`;
    if (options.probes)
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'])
        expect(container[probe], `${where} ${probe}`).toBeDefined();
    expect(container.resources.requests.cpu, where).toBeDefined();
    expect(container.resources.requests.memory, where).toBeDefined();
    expect(container.resources.limits.memory, where).toBeDefined();
    expect(container.securityContext, where).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.volumeMounts, where).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    // By digest, or by a fixed release tag: never a tag that moves.
    expect(container.image, where).toMatch(
      /^[a-z0-9./-]+(@sha256:[0-9a-f]{64}|:v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(@sha256:[0-9a-f]{64})?)$/,
    );
  }
}

/** The model class for an object, from kubernetes-models' module for its group and version. */
async function modelFor(object: KubernetesObject): Promise<new (data: unknown) => { validate(): void }> {
  const [group, version] = object.apiVersion.includes('/')
    ? object.apiVersion.split('/')
    : ['', object.apiVersion];
  const module = (await import(`kubernetes-models/${group ? `${group}/` : ''}${version}`)) as Record<
    string,
    Any
  >;
  const model = module[object.kind];
  if (typeof model !== 'function')
    throw new Error(`kubernetes-models has no ${object.apiVersion} ${object.kind}`);
  return model;
}

describe('deploy/k8s renders and validates', () => {
  it.each(['base', ...OVERLAYS])(
    '%s: every object is valid against the Kubernetes 1.33 schemas',
    async (dir) => {
      const objects = overlay(dir);
      expect(objects.length).toBeGreaterThan(20);
      for (const object of objects) {
        const Model = await modelFor(object);
        expect(
          () => new Model(object).validate(),
          `${dir}: ${object.kind}/${object.metadata.name}`,
        ).not.toThrow();
      }
    },
  );

  it('renders the same objects with `kubectl kustomize` (where kubectl is installed)', (context) => {
    const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      console.warn(
        '[skip] kubectl kustomize: kubectl is not installed (scripts/kustomize.ts rendered alone)',
      );
      context.skip();
    }
    for (const dir of ['base', ...OVERLAYS]) {
      const out = spawnSync('kubectl', ['kustomize', join(K8S_DIR, dir)], { encoding: 'utf8' });
      expect(out.status, out.stderr).toBe(0);
      const theirs = parseAllDocuments(out.stdout).map((d) => d.toJS() as KubernetesObject);
      const key = (o: KubernetesObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      const byKey = (list: KubernetesObject[]) =>
        Object.fromEntries(list.map((o) => [key(o), JSON.parse(JSON.stringify(o))]));
      expect(byKey(overlay(dir)), dir).toEqual(byKey(theirs));
    }
  });
});

describe.each(OVERLAYS)('%s follows the house rules', (dir) => {
  const objects = overlay(dir);
  const all = deployments(objects);

  it('runs the six processes, each with probes, requests, a memory limit and a locked-down container', () => {
    expect(all.map((d) => d.name).sort()).toEqual([...Object.keys(BFFS), ...Object.keys(SERVICES)].sort());
    for (const { name, pod } of all) {
      expectLockedDown(name, pod, { probes: true });
      expect(pod.topologySpreadConstraints?.length, name).toBeGreaterThan(0);
      // Above the preStop pause plus the process's shutdown budget: never SIGKILLed mid-drain.
      expect(pod.terminationGracePeriodSeconds, name).toBeGreaterThan(
        SHUTDOWN_BUDGET_S + (pod.containers[0].lifecycle?.preStop?.sleep?.seconds ?? 0),
      );
    }
  });

  it('runs each service’s migrations in one Job of the release it deploys, locked down as the Deployments are', () => {
    const jobs = migrationJobs(objects);
    expect(jobs).toHaveLength(Object.keys(SERVICES).length);
    for (const service of Object.keys(SERVICES)) {
      const deployment = all.find((d) => d.name === service);
      const deployed = deployment?.pod.containers[0] as Container;
      // Exactly one Job runs this service's image: the image this overlay rolls out.
      const mine = jobs.filter((j) => j.pod.containers.some((c: Container) => c.image === deployed.image));
      expect(
        mine.map((j) => j.name),
        service,
      ).toHaveLength(1);
      const [job] = mine as [(typeof jobs)[number]];
      // Named for the release, so that the next one is a new Job (a Job's template cannot change).
      const { tag, digest } = imageParts(deployed.image);
      const release = (tag ?? digest?.replace('sha256:', '').slice(0, 12) ?? '')
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-');
      expect(job.name).toBe(`${service}-migrate-${release}`);
      expect(job.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
      expect(job.object.metadata.labels['app.kubernetes.io/component']).toBe('migrations');
      expect(job.object.spec.template.metadata.labels).toMatchObject(job.object.metadata.labels);
      // The same container rules as the Deployments, probes excepted, and the same pod security.
      expectLockedDown(job.name, job.pod, { probes: false });
      expect(job.pod.securityContext, job.name).toEqual(deployment?.pod.securityContext);
      expect(job.pod.containers).toHaveLength(1);
      const [container] = job.pod.containers as [Container];
      expect(container.ports, `${job.name} serves nothing`).toBeUndefined();
      // Bounded: a few retries, a deadline, and cleaned up after a while.
      expect(job.pod.restartPolicy).toBe('Never');
      expect(job.object.spec.backoffLimit).toBeGreaterThanOrEqual(0);
      expect(job.object.spec.backoffLimit).toBeLessThanOrEqual(5);
      expect(job.object.spec.activeDeadlineSeconds).toBeGreaterThan(0);
      expect(job.object.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
      // Migrate-only, against the database and schema the Deployment uses.
      const env = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
      expect(env(container).MIGRATE_ONLY?.value).toBe('true');
      for (const variable of ['DATABASE_SCHEMA', 'DATABASE_URL'])
        expect(env(container)[variable], `${job.name} ${variable}`).toEqual(env(deployed)[variable]);
    }
  });

  it('never lets a Service, a PodDisruptionBudget or a Deployment select a migration Job’s pods', () => {
    const selectors = objects.flatMap((o) => {
      const spec = (o as Any).spec;
      if (o.kind === 'Service') return [{ owner: `Service/${o.metadata.name}`, labels: spec.selector }];
      if (o.kind === 'PodDisruptionBudget' || o.kind === 'Deployment')
        return [{ owner: `${o.kind}/${o.metadata.name}`, labels: spec.selector.matchLabels }];
      return [];
    });
    for (const job of migrationJobs(objects)) {
      const labels = job.object.spec.template.metadata.labels as Record<string, string>;
      for (const { owner, labels: selector } of selectors)
        expect(
          Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v),
          `${owner} selects ${job.name}`,
        ).toBe(false);
    }
  });

  it('runs the services without migrating at start (the Jobs do)', () => {
    const configMaps = new Map(
      objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, (o as Any).data ?? {}]),
    );
    for (const service of Object.keys(SERVICES)) {
      const container = all.find((d) => d.name === service)?.pod.containers[0] as Container;
      expect(container.env?.find((e) => e.name === 'MIGRATE_ON_START')?.value, service).toBe('false');
      const fromConfigMaps = (container.envFrom ?? []).flatMap((f) =>
        Object.keys(configMaps.get(f.configMapRef?.name ?? '') ?? {}),
      );
      const names = [...(container.env ?? []).map((e) => e.name), ...fromConfigMaps];
      expect(names, `${service}: a Deployment never runs migrate-only`).not.toContain('MIGRATE_ONLY');
      expect(fromConfigMaps, `${service}: MIGRATE_ON_START set once, in the Deployment`).not.toContain(
        'MIGRATE_ON_START',
      );
    }
  });

  it('probes what each process serves, on the port it listens on', () => {
    for (const { name, pod } of all) {
      const [container] = pod.containers as Container[];
      const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value]));
      const expected = { ...BFFS, ...SERVICES }[name as keyof typeof BFFS];
      expect(container?.ports[0]?.containerPort, name).toBe(expected);
      expect(env.PORT, name).toBe(String(expected));
      const ports = container?.ports.map((p) => p.name) ?? [];
      if (name === 'product') {
        // gRPC: the standard health service, on the gRPC port.
        expect(container?.readinessProbe.grpc.port).toBe(SERVICES.product);
        expect(container?.startupProbe.grpc.port).toBe(SERVICES.product);
        expect(ports).toContain(container?.livenessProbe.tcpSocket.port);
      } else {
        expect(container?.readinessProbe.httpGet.path, name).toBe('/readyz');
        expect(container?.livenessProbe.httpGet.path, name).toBe('/healthz');
        expect(container?.startupProbe.httpGet.path, name).toBe('/healthz');
        expect(ports, name).toContain(container?.readinessProbe.httpGet.port);
      }
      expect(ports, `${name} exposes its metrics`).toContain('metrics');
    }
  });

  it('points every PRODUCT_ADDR at a headless Service over the Product pods, dns:///, so calls are balanced', () => {
    const configMaps = new Map(
      objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, (o as Any).data ?? {}]),
    );
    /** A container's variables as the process sees them: its own env over its ConfigMaps'. */
    const variables = (container: Container): Record<string, string | undefined> => ({
      ...Object.assign(
        {},
        ...(container.envFrom ?? []).map((f) => configMaps.get(f.configMapRef?.name ?? '')),
      ),
      ...Object.fromEntries(
        (container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]),
      ),
    });
    const podOf = ({ object }: (typeof all)[number]): Peer => ({
      namespace: object.metadata.namespace ?? '',
      labels: (object as Any).spec.template.metadata.labels,
    });
    const product = all.find((d) => d.name === 'product');
    if (!product) throw new Error('no product Deployment');
    const productContainer = product.pod.containers[0] as Container;
    const productPod: Peer = {
      ...podOf(product),
      ports: Object.fromEntries(productContainer.ports.map((p) => [p.name, p.containerPort])),
    };
    const grpcPort = productPod.ports?.grpc;
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as Any[];

    const dialers: string[] = [];
    for (const deployment of all) {
      const { name, object, pod } = deployment;
      const env = variables(pod.containers[0] as Container);
      const address = env.PRODUCT_ADDR;
      if (address === undefined) continue;
      dialers.push(name);
      // dns:///<service>[.<namespace>.svc.cluster.local]:<port>; the short form is completed by the
      // pod's search domains, so it is the Service in the pod's own namespace.
      const match = /^dns:\/\/\/([a-z0-9-]+)(?:\.([a-z0-9-]+)\.svc\.cluster\.local\.?)?:(\d+)$/.exec(address);
      expect(match, `${name}: PRODUCT_ADDR ${address}`).not.toBeNull();
      const [, serviceName, namespace = object.metadata.namespace, port] = match ?? [];
      expect(namespace, `${name}: PRODUCT_ADDR in its own namespace`).toBe(object.metadata.namespace);
      const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === serviceName) as Any;
      expect(service, `${name}: PRODUCT_ADDR names a Service of this tree (${serviceName})`).toBeDefined();
      // Headless: the name resolves to every ready pod, and the client balances over them.
      expect(service.spec.clusterIP, `${serviceName} is headless`).toBe('None');
      expect(service.spec.publishNotReadyAddresses ?? false, `${serviceName} lists ready pods only`).toBe(
        false,
      );
      expect(
        selects({ matchLabels: service.spec.selector }, productPod.labels),
        `${serviceName} selects Product`,
      ).toBe(true);
      for (const other of all.filter((d) => d.name !== 'product'))
        expect(selects({ matchLabels: service.spec.selector }, podOf(other).labels), other.name).toBe(false);
      // No port mapping without a virtual IP: the address's port is the pods' gRPC port.
      expect(Number(port), `${name}: PRODUCT_ADDR's port`).toBe(grpcPort);
      expect(service.spec.ports.map((p: Any) => p.port)).toContain(grpcPort);
      // The process takes the value (its config, then the client it builds from it)...
      const withSecrets = { ...env, DATABASE_URL: 'postgres://db:5432/bff' };
      const read =
        name in BFFS ? () => readBffConfig(4000, withSecrets) : () => readBillingConfig(withSecrets);
      expect(read().PRODUCT_ADDR).toBe(address);
      expect(() => createProductClient({ address }).close()).not.toThrow();
      // ...and the NetworkPolicies, which select pods, let it reach them directly.
      expect(allowed(policies, podOf(deployment), productPod, Number(port)), `${name} -> product pods`).toBe(
        true,
      );
    }
    expect(dialers.sort()).toEqual([...Object.keys(BFFS), 'billing'].sort());

    // Product ages connections out, so that clients look the name up again and find new pods; in
    // flight calls get a grace period above the longest deadline a BFF gives them.
    const productConfig = readProductConfig({
      ...variables(productContainer),
      DATABASE_URL: 'postgres://db:5432/bff',
    });
    expect(productConfig.GRPC_MAX_CONNECTION_AGE_MS).toBeLessThanOrEqual(30 * 60_000);
    expect(productConfig.GRPC_MAX_CONNECTION_AGE_GRACE_MS).toBeGreaterThan(
      Number(configMaps.get('bff-config')?.UPSTREAM_TIMEOUT_MS),
    );
  });

  it('autoscales every BFF and protects every process with a PodDisruptionBudget', () => {
    for (const { name, object } of all) {
      const selector = (object as Any).spec.selector.matchLabels;
      const pdb = objects.find(
        (o) =>
          o.kind === 'PodDisruptionBudget' &&
          JSON.stringify((o as Any).spec.selector.matchLabels) === JSON.stringify(selector),
      );
      expect(pdb, `${name}: a PodDisruptionBudget`).toBeDefined();
      if (!(name in BFFS)) continue;
      const hpa = objects.find(
        (o) => o.kind === 'HorizontalPodAutoscaler' && (o as Any).spec.scaleTargetRef.name === name,
      ) as Any;
      expect(hpa, `${name}: a HorizontalPodAutoscaler`).toBeDefined();
      expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
      // The HPA owns the count: a replicas field would reset it at every apply.
      expect((object as Any).spec.replicas, name).toBeUndefined();
    }
  });

  it('runs the BFFs with the Node flags the benchmark measured', () => {
    for (const name of Object.keys(BFFS)) {
      const container = all.find((d) => d.name === name)?.pod.containers[0] as Container;
      expect(container.env?.find((e) => e.name === 'NODE_OPTIONS')?.value, name).toBe(
        SHIPPED_BFF_NODE_FLAGS.join(' '),
      );
    }
  });

  it('holds no Secret and refers to every credential by Secret name', () => {
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    const referenced = new Set<string>();
    for (const { name, pod } of [...all, ...migrationJobs(objects)]) {
      for (const container of pod.containers as Container[]) {
        for (const e of container.env ?? []) {
          if (e.valueFrom?.secretKeyRef) referenced.add(e.valueFrom.secretKeyRef.name);
          if (/^(DATABASE_URL|AMQP_URL|REDIS_URL|ADMIN_TOKEN)$/.test(e.name))
            expect(e.valueFrom?.secretKeyRef, `${name}: ${e.name} comes from a Secret`).toBeDefined();
        }
      }
    }
    expect([...referenced].sort()).toEqual(SECRETS);
    // Nothing that looks like a credential in any rendered value.
    expect(JSON.stringify(objects)).not.toMatch(/:\/\/[^/\s":@]+:[^@\s"/]+@/);
    for (const configMap of objects.filter((o) => o.kind === 'ConfigMap'))
      for (const key of Object.keys((configMap as Any).data ?? {}))
        expect(key, `${configMap.metadata.name}: a secret-like key`).not.toMatch(
          /PASSWORD|SECRET|TOKEN$|_KEY$|DATABASE_URL|AMQP_URL|REDIS_URL/,
        );
  });

  it('sets only variables the processes read, and TRUST_PROXY to an address range, never true', () => {
    const sources = (files: string[]) =>
      new Set(
        files.flatMap((file) =>
          [...readFileSync(join(root, file), 'utf8').matchAll(/\b([A-Z][A-Z0-9_]{2,})\s*:/g)].map(
            (m) => m[1],
          ),
        ),
      );
    const observability = ['packages/observability/src/config.ts'];
    const configMaps = new Map(
      objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, (o as Any).data ?? {}]),
    );
    const jobs = migrationJobs(objects).map((job) => ({
      name: job.object.metadata.labels['app.kubernetes.io/name'].replace(/-migrate$/, ''),
      pod: job.pod,
    }));
    for (const { name, pod } of [...all, ...jobs]) {
      const container = pod.containers[0] as Container;
      const known =
        name in BFFS
          ? sources([
              'packages/bff-server/src/config.ts',
              `apps/${name.replace('-bff', '')}/src/main.ts`,
              ...observability,
            ])
          : sources([`services/${name}/src/config.ts`, ...observability]);
      known.add('NODE_OPTIONS'); // Node's own
      const names = [
        ...(container.env ?? []).map((e) => e.name),
        ...(container.envFrom ?? []).flatMap((f) =>
          Object.keys(configMaps.get(f.configMapRef?.name ?? '') ?? {}),
        ),
      ];
      for (const variable of names)
        expect(known.has(variable), `${name}: ${variable} is read by the process`).toBe(true);
    }
    const trustProxy = configMaps.get('bff-config')?.TRUST_PROXY as string | undefined;
    expect(trustProxy).toBeDefined();
    for (const range of trustProxy?.split(',') ?? [])
      expect(range.trim()).toMatch(/^[\d.]+\/\d{1,2}$|^[0-9a-f:]+\/\d{1,3}$/);
  });

  it('serves the BFFs over HTTPS through one Ingress: cert-manager, TLS on every host, long WebSocket timeouts', () => {
    const ingresses = objects.filter((o) => o.kind === 'Ingress') as Any[];
    expect(ingresses).toHaveLength(1);
    const [ingress] = ingresses;
    const annotations = ingress.metadata.annotations;
    expect(annotations['cert-manager.io/cluster-issuer']).toMatch(/^letsencrypt-/);
    expect(annotations['nginx.ingress.kubernetes.io/force-ssl-redirect']).toBe('true');
    for (const timeout of ['proxy-read-timeout', 'proxy-send-timeout'])
      expect(Number(annotations[`nginx.ingress.kubernetes.io/${timeout}`])).toBeGreaterThanOrEqual(3600);
    const hosts = ingress.spec.rules.map((r: Any) => r.host);
    expect(ingress.spec.tls.flatMap((t: Any) => t.hosts).sort()).toEqual([...hosts].sort());
    const backends = ingress.spec.rules.flatMap((r: Any) =>
      r.http.paths.map((p: Any) => p.backend.service.name),
    );
    // Clients reach the BFFs, and only them.
    expect(backends.sort()).toEqual(Object.keys(BFFS).sort());
  });
});

describe('ingress-nginx values', () => {
  it('send HSTS for a year and keep the controller from believing clients’ X-Forwarded-For', () => {
    const values = parse(readFileSync(join(K8S_DIR, 'ingress-nginx-values.yaml'), 'utf8')) as Any;
    expect(values.controller.config.hsts).toBe('true');
    expect(Number(values.controller.config['hsts-max-age'])).toBeGreaterThanOrEqual(31_536_000);
    expect(values.controller.config['use-forwarded-headers']).toBe('false');
    // Below the BFFs' KEEP_ALIVE_TIMEOUT_MS: the proxy closes idle connections first.
    const bffConfig = overlay('overlays/prod').find((o) => o.metadata.name === 'bff-config') as Any;
    expect(Number(values.controller.config['upstream-keepalive-timeout']) * 1000).toBeLessThan(
      Number(bffConfig.data.KEEP_ALIVE_TIMEOUT_MS),
    );
  });
});

describe('the deploy tree', () => {
  it('has no Secret manifest and no credential in any file', () => {
    const files = readdirSync(join(root, 'deploy'), { recursive: true })
      .map(String)
      .filter((f) => /\.ya?ml$/.test(f));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const text = readFileSync(join(root, 'deploy', file), 'utf8');
      expect(text, file).not.toMatch(/^kind:\s*Secret\s*$/m);
      expect(text, file).not.toMatch(/:\/\/[^/\s:@]+:[^@\s/]+@/);
    }
  });
});

// NetworkPolicy semantics, for the peers that matter: which connections the policies allow.
interface Peer {
  namespace: string;
  labels: Record<string, string>;
  /** Named container ports, for policies that name a port. */
  ports?: Record<string, number>;
}

function selects(selector: Any, labels: Record<string, string>): boolean {
  return Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

function peerMatches(rulePeer: Any, policyNamespace: string, peer: Peer): boolean {
  const namespaceOk = rulePeer.namespaceSelector
    ? selects(rulePeer.namespaceSelector, { 'kubernetes.io/metadata.name': peer.namespace })
    : peer.namespace === policyNamespace;
  const podOk = rulePeer.podSelector ? selects(rulePeer.podSelector, peer.labels) : true;
  return namespaceOk && podOk;
}

function portMatches(rulePorts: Any[] | undefined, to: Peer, port: number): boolean {
  if (!rulePorts) return true;
  return rulePorts.some((p) => (typeof p.port === 'string' ? to.ports?.[p.port] === port : p.port === port));
}

function allowed(policies: Any[], from: Peer, to: Peer, port: number): boolean {
  const direction = (peer: Peer, type: 'Ingress' | 'Egress') =>
    policies.filter(
      (p) =>
        p.metadata.namespace === peer.namespace &&
        p.spec.policyTypes.includes(type) &&
        selects(p.spec.podSelector, peer.labels),
    );
  const egress = direction(from, 'Egress');
  const egressOk =
    egress.length === 0 ||
    egress.some((p) =>
      (p.spec.egress ?? []).some(
        (rule: Any) =>
          (rule.to ?? [{}]).some((peer: Any) => peerMatches(peer, p.metadata.namespace, to)) &&
          portMatches(rule.ports, to, port),
      ),
    );
  const ingress = direction(to, 'Ingress');
  const ingressOk =
    ingress.length === 0 ||
    ingress.some((p) =>
      (p.spec.ingress ?? []).some(
        (rule: Any) =>
          (rule.from ?? [{}]).some((peer: Any) => peerMatches(peer, p.metadata.namespace, from)) &&
          portMatches(rule.ports, to, port),
      ),
    );
  return egressOk && ingressOk;
}

describe('NetworkPolicies (production overlay)', () => {
  const objects = overlay('overlays/prod');
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as Any[];
  const namespace = 'bff';
  const pod = (name: string): Peer => {
    const deployment = deployments(objects).find((d) => d.name === name);
    const container = deployment?.pod.containers[0] as Container;
    return {
      namespace,
      labels: deployment?.pod ? (deployment.object as Any).spec.template.metadata.labels : {},
      ports: Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort])),
    };
  };
  const outside = (ns: string, labels: Record<string, string> = {}): Peer => ({ namespace: ns, labels });
  const ingressController = outside('ingress-nginx', { 'app.kubernetes.io/name': 'ingress-nginx' });
  const stranger = outside('default', { app: 'anything' });
  const dns = outside('kube-system', { 'k8s-app': 'kube-dns' });
  const [postgres, redis, rabbitmq, prometheus] = ['postgres', 'redis', 'rabbitmq', 'monitoring'].map((ns) =>
    outside(ns),
  ) as [Peer, Peer, Peer, Peer];
  const can = (from: Peer, to: Peer, port: number) => allowed(policies, from, to, port);

  it('let clients (through the ingress controller) reach the BFFs, and nothing else', () => {
    for (const [bff, port] of Object.entries(BFFS)) {
      expect(can(ingressController, pod(bff), port), bff).toBe(true);
      expect(can(stranger, pod(bff), port), `${bff} from another namespace`).toBe(false);
    }
    for (const [service, port] of Object.entries(SERVICES)) {
      expect(can(ingressController, pod(service), port), service).toBe(false);
      expect(can(stranger, pod(service), port), service).toBe(false);
    }
  });

  it('let the BFFs reach the three services, Redis and RabbitMQ only', () => {
    for (const bff of Object.keys(BFFS)) {
      for (const [service, port] of Object.entries(SERVICES))
        expect(can(pod(bff), pod(service), port), `${bff} -> ${service}`).toBe(true);
      expect(can(pod(bff), redis, 6379)).toBe(true);
      expect(can(pod(bff), rabbitmq, 5672)).toBe(true);
      expect(can(pod(bff), postgres, 5432), `${bff} -> PostgreSQL`).toBe(false);
      expect(can(pod(bff), stranger, 443), `${bff} -> elsewhere`).toBe(false);
    }
  });

  it('let each service reach its database and the broker, and billing reach product', () => {
    for (const service of Object.keys(SERVICES)) {
      expect(can(pod(service), postgres, 5432), service).toBe(true);
      expect(can(pod(service), rabbitmq, 5672), service).toBe(true);
      expect(can(pod(service), redis, 6379), `${service} -> Redis`).toBe(false);
      expect(can(pod(service), stranger, 443), `${service} -> elsewhere`).toBe(false);
    }
    expect(can(pod('billing'), pod('product'), SERVICES.product)).toBe(true);
    expect(can(pod('identity'), pod('product'), SERVICES.product)).toBe(false);
    expect(can(pod('product'), pod('billing'), SERVICES.billing)).toBe(false);
  });

  it('let each migration Job reach PostgreSQL and nothing else, and nothing reach it', () => {
    const jobs = migrationJobs(objects);
    expect(jobs).toHaveLength(Object.keys(SERVICES).length);
    for (const job of jobs) {
      const migrations: Peer = { namespace, labels: job.object.spec.template.metadata.labels };
      expect(can(migrations, postgres, 5432), job.name).toBe(true);
      expect(can(migrations, dns, 53), job.name).toBe(true);
      expect(can(migrations, rabbitmq, 5672), `${job.name} -> RabbitMQ`).toBe(false);
      expect(can(migrations, redis, 6379), `${job.name} -> Redis`).toBe(false);
      expect(can(migrations, stranger, 443), `${job.name} -> elsewhere`).toBe(false);
      for (const [service, port] of Object.entries(SERVICES))
        expect(can(migrations, pod(service), port), `${job.name} -> ${service}`).toBe(false);
      for (const [bff, port] of Object.entries(BFFS))
        expect(can(pod(bff), migrations, port), `${bff} -> ${job.name}`).toBe(false);
    }
  });

  it('let every pod resolve names, and Prometheus scrape metrics ports only', () => {
    for (const name of [...Object.keys(BFFS), ...Object.keys(SERVICES)]) {
      expect(can(pod(name), dns, 53), name).toBe(true);
      expect(can(prometheus, pod(name), 9464), name).toBe(true);
      expect(can(prometheus, pod(name), { ...BFFS, ...SERVICES }[name as keyof typeof BFFS]), name).toBe(
        false,
      );
    }
  });
});
