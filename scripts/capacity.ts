// `pnpm capacity --rps 2000 --p99-ms 200`: how many replicas of each process, how many nodes and
// what a month costs for a peak request rate, from
// - the latest benchmark (bench/results/latest.json, `pnpm bench`): CPU µs per operation of the
//   BFF and of its upstreams, response size and latency, per workload;
// - the production overlay as rendered (deploy/k8s/overlays/prod): each container's CPU and
//   memory requests, the HPAs' target utilisation and their min and max replicas;
// - a price card (DEFAULT_PRICES, a small provider's; `--prices file.json` replaces any part).
//
// Exit codes: 0 a plan; 1 a bad option; 2 no usable benchmark results (run `pnpm bench`).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './app-discovery.ts';
import { K8S_DIR, type KubernetesObject, renderKustomization } from './kustomize.ts';

/** One row of bench/results/latest.json (bench/run.ts writes it). */
export interface BenchRow {
  contender: string;
  workload: string;
  latencyMs: number;
  mode: 'max' | 'fixed-rate';
  rps: number;
  p99: number;
  bytesPerResponse: number;
  upstreamCallsPerOp: Record<string, number>;
  cpuUsPerOp: { contender: number; upstreams: number; loadGenerator?: number };
  valid?: boolean;
}

export interface BenchResults {
  results: BenchRow[];
}

/** A price card: every amount per month, in `currency`. */
export interface PriceCard {
  provider: string;
  currency: string;
  /** The worker node the cluster is made of. */
  node: { name: string; vcpu: number; memoryGiB: number; monthly: number; allocatable: number };
  /** The managed control plane. */
  clusterMonthly: number;
  /** The load balancer in front of the ingress controller. */
  loadBalancerMonthly: number;
  /** Managed PostgreSQL (one cluster, a schema per service) and its storage. */
  database: { name: string; monthly: number; storageGiB: number; storagePerGiBMonthly: number };
  /** Managed Redis (rate limits, response cache). */
  redisMonthly: number;
  /** RabbitMQ (a small managed plan). */
  brokerMonthly: number;
  /** Traffic out of the cluster (CDN or egress), beyond what the nodes include. */
  egressPerGiB: number;
  includedEgressGiBPerNode: number;
}

/**
 * The defaults: a small provider's public card, rounded (USD, as listed in 2026 for 4 vCPU /
 * 8 GiB shared-CPU nodes, a free control plane, a small load balancer, a 2-node managed
 * PostgreSQL with 40 GiB, a small managed Redis and RabbitMQ). Check your provider's; override
 * with `--prices file.json` (any subset of these fields).
 */
export const DEFAULT_PRICES: PriceCard = Object.freeze({
  provider: 'a small cloud provider (list prices, rounded)',
  currency: 'USD',
  node: Object.freeze({ name: '4 vCPU / 8 GiB', vcpu: 4, memoryGiB: 8, monthly: 48, allocatable: 0.85 }),
  clusterMonthly: 0,
  loadBalancerMonthly: 12,
  database: Object.freeze({
    name: 'managed PostgreSQL, 2 vCPU / 4 GiB, primary + standby',
    monthly: 120,
    storageGiB: 40,
    storagePerGiBMonthly: 0.1,
  }),
  redisMonthly: 30,
  brokerMonthly: 40,
  egressPerGiB: 0.01,
  includedEgressGiBPerNode: 4000,
}) as PriceCard;

export interface CapacityOptions {
  /** Peak requests per second over the three BFFs together. */
  rps: number;
  /** The p99 latency the plan must keep, in ms. */
  p99Ms: number;
  /** Workload weights (normalised); @default every workload measured for the contender, equally */
  mix?: Record<string, number>;
  /** Share of the traffic each BFF takes (normalised). @default equal */
  clients?: Record<string, number>;
  /** The benchmark contender whose figures count. @default 'bff' */
  contender?: string;
  /** Real services do more per call than the benchmark's fake upstreams (a database). @default 3 */
  serviceCpuFactor?: number;
  /** Peak over the month's average request rate, for traffic volume. @default 3 */
  peakToAverage?: number;
  /** Utilisation of the CPU request aimed at for processes without an HPA. @default 0.6 */
  serviceUtilization?: number;
}

export interface ProcessPlan {
  name: string;
  rps: number;
  cpuUsPerOp: number;
  cores: number;
  cpuRequest: number;
  memoryRequestMiB: number;
  targetUtilization: number;
  replicas: number;
  minReplicas: number;
  maxReplicas: number | undefined;
  /** Why the count is what it is, when it is not simply the CPU need. */
  note?: string;
}

export interface CapacityPlan {
  mix: Record<string, number>;
  clients: Record<string, number>;
  processes: ProcessPlan[];
  latency: { workload: string; p99Ms: number; mode: string; meets: boolean }[];
  nodes: { count: number; byCpu: number; byMemory: number; cpuRequested: number; memoryRequestedGiB: number };
  egressGiBPerMonth: number;
  monthly: { item: string; amount: number }[];
  total: number;
  warnings: string[];
}

/** A result file that cannot be planned from: exit 2. */
export class MissingResultsError extends Error {}

function normalise(weights: Record<string, number>, what: string): Record<string, number> {
  const sum = Object.values(weights).reduce((a, b) => a + b, 0);
  if (!(sum > 0) || Object.values(weights).some((w) => !(w >= 0)))
    throw new TypeError(
      `capacity: ${what} weights must be non-negative with a positive sum, received ${JSON.stringify(weights)}`,
    );
  return Object.fromEntries(Object.entries(weights).map(([k, w]) => [k, w / sum]));
}

/** `500m` → 0.5, `2` → 2. */
export function cpuCores(quantity: string | number): number {
  const text = String(quantity);
  return text.endsWith('m') ? Number(text.slice(0, -1)) / 1000 : Number(text);
}

/** `384Mi` → 384, `1Gi` → 1024 (MiB). */
export function memoryMiB(quantity: string | number): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|M|G)?$/.exec(String(quantity));
  if (!match) throw new TypeError(`capacity: cannot read the memory quantity ${JSON.stringify(quantity)}`);
  const value = Number(match[1]);
  const unit =
    { Ki: 1 / 1024, Mi: 1, Gi: 1024, M: 1e6 / 1048576, G: 1e9 / 1048576 }[match[2] ?? ''] ?? 1 / 1048576;
  return value * unit;
}

// biome-ignore lint/suspicious/noExplicitAny: rendered YAML is read field by field
type Any = any;

/** The plan for `options` over benchmark `results`, the rendered overlay and a price card. */
export function planCapacity(
  options: CapacityOptions,
  results: BenchResults,
  objects: KubernetesObject[],
  prices: PriceCard = DEFAULT_PRICES,
): CapacityPlan {
  if (!(options.rps > 0))
    throw new TypeError(`capacity: --rps must be a positive number, received ${options.rps}`);
  if (!(options.p99Ms > 0))
    throw new TypeError(`capacity: --p99-ms must be a positive number, received ${options.p99Ms}`);
  const contender = options.contender ?? 'bff';
  const warnings: string[] = [];
  const valid = (results.results ?? []).filter((r) => r.valid !== false);
  const rows = valid.filter((r) => r.contender === contender && r.mode === 'max');
  if (rows.length === 0) {
    const present = [...new Set(valid.map((r) => r.contender))].join(', ') || 'none';
    throw new MissingResultsError(
      `capacity: the results have no valid maximum-rate run of ${contender} (contenders there: ${present}); ` +
        `run e.g. BENCH_CONTENDERS=handwritten,${contender} pnpm bench`,
    );
  }
  // The lowest upstream latency measured: the fake upstreams at 0 ms are the BFF's own cost.
  const latency = Math.min(...rows.map((r) => r.latencyMs));
  const byWorkload = new Map(rows.filter((r) => r.latencyMs === latency).map((r) => [r.workload, r]));
  const mix = normalise(options.mix ?? Object.fromEntries([...byWorkload.keys()].map((w) => [w, 1])), 'mix');
  for (const workload of Object.keys(mix))
    if (!byWorkload.has(workload))
      throw new MissingResultsError(
        `capacity: no ${contender} run of the workload ${workload} (measured: ${[...byWorkload.keys()].join(', ')})`,
      );
  const row = (workload: string) => byWorkload.get(workload) as BenchRow;
  const weighted = (f: (r: BenchRow) => number) =>
    Object.entries(mix).reduce((sum, [workload, w]) => sum + w * f(row(workload)), 0);

  const deployments = objects.filter((o) => o.kind === 'Deployment') as Any[];
  const hpas = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler') as Any[];
  const bffNames = deployments
    .filter((d) => d.metadata.labels?.['app.kubernetes.io/component'] === 'bff')
    .map((d) => d.metadata.name as string);
  const clients = normalise(
    options.clients ?? Object.fromEntries(bffNames.map((n) => [n.replace(/-bff$/, ''), 1])),
    'clients',
  );
  const serviceFactor = options.serviceCpuFactor ?? 3;
  const serviceUtilization = options.serviceUtilization ?? 0.6;

  const bffCpuUs = weighted((r) => r.cpuUsPerOp.contender);
  // Upstream CPU split over the services by the calls each operation makes to each.
  const upstreamCpuUs = weighted((r) => r.cpuUsPerOp.upstreams);
  const calls: Record<string, number> = {};
  for (const [workload, w] of Object.entries(mix))
    for (const [call, count] of Object.entries(row(workload).upstreamCallsPerOp ?? {})) {
      const service = call.split('.')[0] ?? call;
      calls[service] = (calls[service] ?? 0) + w * count;
    }
  const totalCalls = Object.values(calls).reduce((a, b) => a + b, 0);

  const processes: ProcessPlan[] = deployments.map((deployment) => {
    const name = deployment.metadata.name as string;
    const container = deployment.spec.template.spec.containers[0];
    const cpuRequest = cpuCores(container.resources.requests.cpu);
    const memoryRequestMiB = memoryMiB(container.resources.requests.memory);
    const hpa = hpas.find((h) => h.spec.scaleTargetRef.name === name);
    const isBff = bffNames.includes(name);
    const rps = isBff ? options.rps * (clients[name.replace(/-bff$/, '')] ?? 0) : options.rps;
    const cpuUsPerOp = isBff
      ? bffCpuUs
      : totalCalls > 0
        ? (upstreamCpuUs * serviceFactor * (calls[name] ?? 0)) / totalCalls
        : 0;
    const cores = (rps * cpuUsPerOp) / 1e6;
    const targetUtilization = hpa
      ? (hpa.spec.metrics.find((m: Any) => m.resource?.name === 'cpu')?.resource.target.averageUtilization ??
          80) / 100
      : serviceUtilization;
    const needed = Math.ceil(cores / (cpuRequest * targetUtilization));
    const minReplicas = hpa ? (hpa.spec.minReplicas ?? 1) : (deployment.spec.replicas ?? 1);
    const maxReplicas: number | undefined = hpa?.spec.maxReplicas;
    let replicas = Math.max(needed, minReplicas);
    let note: string | undefined;
    if (needed < minReplicas) note = hpa ? 'HPA minimum' : 'overlay replicas';
    if (maxReplicas !== undefined && needed > maxReplicas) {
      warnings.push(
        `${name}: needs ${needed} replicas, above its HPA maximum ${maxReplicas}: raise maxReplicas`,
      );
      note = `above HPA max ${maxReplicas}`;
    }
    if (!hpa && needed > minReplicas)
      warnings.push(`${name}: needs ${needed} replicas, the overlay runs ${minReplicas}: raise replicas`);
    replicas = Math.max(replicas, 1);
    return {
      name,
      rps: Math.round(rps),
      cpuUsPerOp: Math.round(cpuUsPerOp),
      cores,
      cpuRequest,
      memoryRequestMiB,
      targetUtilization,
      replicas,
      minReplicas,
      maxReplicas,
      ...(note ? { note } : {}),
    };
  });

  const latencyChecks = Object.keys(mix).map((workload) => {
    const fixed = valid.find(
      (r) =>
        r.contender === contender &&
        r.workload === workload &&
        r.mode === 'fixed-rate' &&
        r.latencyMs === latency,
    );
    const source = fixed ?? row(workload);
    return {
      workload,
      p99Ms: source.p99,
      mode: fixed ? 'fixed rate' : 'maximum rate',
      meets: source.p99 <= options.p99Ms,
    };
  });
  for (const check of latencyChecks)
    if (!check.meets)
      warnings.push(
        `${check.workload}: the benchmark's p99 at ${check.mode} was ${check.p99Ms} ms, above ${options.p99Ms} ms: ` +
          'the replica counts give CPU headroom, not that latency',
      );

  // Nodes: every pod's requests over the node's allocatable share, plus one spare so that a node
  // can be drained (upgrades) without the PDBs blocking, and at least three for zone spread.
  const cpuRequested = processes.reduce((s, p) => s + p.replicas * p.cpuRequest, 0);
  const memoryRequestedGiB = processes.reduce((s, p) => s + (p.replicas * p.memoryRequestMiB) / 1024, 0);
  const byCpu = Math.ceil(cpuRequested / (prices.node.vcpu * prices.node.allocatable));
  const byMemory = Math.ceil(memoryRequestedGiB / (prices.node.memoryGiB * prices.node.allocatable));
  const count = Math.max(byCpu, byMemory, 2) + 1;

  const averageRps = options.rps / (options.peakToAverage ?? 3);
  const bytesPerOp = weighted((r) => r.bytesPerResponse);
  const egressGiBPerMonth = (averageRps * bytesPerOp * 30 * 86_400) / 2 ** 30;
  const billedEgress = Math.max(0, egressGiBPerMonth - count * prices.includedEgressGiBPerNode);

  const monthly = [
    { item: `${count} nodes (${prices.node.name})`, amount: count * prices.node.monthly },
    { item: 'control plane', amount: prices.clusterMonthly },
    { item: 'load balancer', amount: prices.loadBalancerMonthly },
    { item: prices.database.name, amount: prices.database.monthly },
    {
      item: `database storage (${prices.database.storageGiB} GiB)`,
      amount: prices.database.storageGiB * prices.database.storagePerGiBMonthly,
    },
    { item: 'Redis', amount: prices.redisMonthly },
    { item: 'RabbitMQ', amount: prices.brokerMonthly },
    {
      item: `bandwidth (${Math.round(egressGiBPerMonth)} GiB out, ${Math.round(billedEgress)} GiB billed)`,
      amount: billedEgress * prices.egressPerGiB,
    },
  ].map((line) => ({ ...line, amount: Math.round(line.amount * 100) / 100 }));
  const total = Math.round(monthly.reduce((s, line) => s + line.amount, 0) * 100) / 100;
  return {
    mix,
    clients,
    processes,
    latency: latencyChecks,
    nodes: { count, byCpu, byMemory, cpuRequested, memoryRequestedGiB },
    egressGiBPerMonth,
    monthly,
    total,
    warnings,
  };
}

const percent = (w: number) => `${Math.round(w * 100)}%`;

/** The plan as the command prints it. */
export function formatPlan(
  plan: CapacityPlan,
  options: CapacityOptions,
  prices: PriceCard,
  source: string,
): string {
  const out: string[] = [];
  const pad = (s: string | number, n: number) => String(s).padEnd(n);
  const padL = (s: string | number, n: number) => String(s).padStart(n);
  out.push(`capacity for ${options.rps} req/s at peak, p99 target ${options.p99Ms} ms (${source})`);
  out.push(
    `mix: ${Object.entries(plan.mix)
      .map(([w, x]) => `${w} ${percent(x)}`)
      .join(', ')}; clients: ${Object.entries(plan.clients)
      .map(([c, x]) => `${c} ${percent(x)}`)
      .join(', ')}`,
  );
  out.push('');
  out.push(
    `${pad('process', 12)}${padL('req/s', 7)}${padL('CPU µs/op', 11)}${padL('cores', 7)}${padL('request', 9)}${padL('target', 8)}${padL('replicas', 10)}  bounds`,
  );
  for (const p of plan.processes)
    out.push(
      `${pad(p.name, 12)}${padL(p.rps, 7)}${padL(p.cpuUsPerOp, 11)}${padL(p.cores.toFixed(2), 7)}${padL(`${p.cpuRequest}`, 9)}${padL(percent(p.targetUtilization), 8)}${padL(p.replicas, 10)}  ` +
        `${p.maxReplicas === undefined ? `fixed ${p.minReplicas}` : `HPA ${p.minReplicas}-${p.maxReplicas}`}${p.note ? ` (${p.note})` : ''}`,
    );
  out.push('');
  out.push(
    `nodes: ${plan.nodes.count} x ${prices.node.name} (requests: ${plan.nodes.cpuRequested.toFixed(1)} vCPU -> ${plan.nodes.byCpu}, ` +
      `${plan.nodes.memoryRequestedGiB.toFixed(1)} GiB -> ${plan.nodes.byMemory}; +1 spare for drains)`,
  );
  out.push(
    `p99 measured: ${plan.latency.map((l) => `${l.workload} ${l.p99Ms} ms at ${l.mode}${l.meets ? '' : ' (above target)'}`).join(', ')}`,
  );
  out.push('');
  out.push(`monthly cost (${prices.currency}, ${prices.provider}):`);
  for (const line of plan.monthly) out.push(`  ${pad(line.item, 62)}${padL(line.amount.toFixed(2), 10)}`);
  out.push(`  ${pad('total', 62)}${padL(plan.total.toFixed(2), 10)}`);
  for (const warning of plan.warnings) out.push(`warning: ${warning}`);
  return out.join('\n');
}

function parseWeights(text: string, what: string): Record<string, number> {
  return Object.fromEntries(
    text.split(',').map((pair) => {
      const [key, value] = pair.split('=');
      if (!key || value === undefined || Number.isNaN(Number(value)))
        throw new TypeError(`capacity: ${what} must look like a=1,b=2, received ${JSON.stringify(text)}`);
      return [key.trim(), Number(value)];
    }),
  );
}

function mergePrices(file: string): PriceCard {
  const override = JSON.parse(readFileSync(file, 'utf8')) as Partial<PriceCard>;
  return {
    ...DEFAULT_PRICES,
    ...override,
    node: { ...DEFAULT_PRICES.node, ...override.node },
    database: { ...DEFAULT_PRICES.database, ...override.database },
  };
}

async function main(argv: string[]): Promise<number> {
  const options: Partial<CapacityOptions> = {};
  let resultsFile = join(REPO_ROOT, 'bench', 'results', 'latest.json');
  let overlayDir = join(K8S_DIR, 'overlays', 'prod');
  let prices = DEFAULT_PRICES;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const take = () => {
      if (value === undefined) throw new TypeError(`capacity: ${flag} needs a value`);
      i++;
      return value;
    };
    switch (flag) {
      case '--rps':
        options.rps = Number(take());
        break;
      case '--p99-ms':
        options.p99Ms = Number(take());
        break;
      case '--mix':
        options.mix = parseWeights(take(), '--mix');
        break;
      case '--clients':
        options.clients = parseWeights(take(), '--clients');
        break;
      case '--contender':
        options.contender = take();
        break;
      case '--service-cpu-factor':
        options.serviceCpuFactor = Number(take());
        break;
      case '--peak-to-average':
        options.peakToAverage = Number(take());
        break;
      case '--results':
        resultsFile = resolve(take());
        break;
      case '--overlay':
        overlayDir = resolve(take());
        break;
      case '--prices':
        prices = mergePrices(resolve(take()));
        break;
      default:
        throw new TypeError(
          `capacity: unknown option ${flag} (--rps N --p99-ms N [--mix small=2,medium=1] [--clients web=2,ios=1,android=1] ` +
            '[--contender bff] [--service-cpu-factor 3] [--peak-to-average 3] [--results file] [--overlay dir] [--prices file.json])',
        );
    }
  }
  if (options.rps === undefined || options.p99Ms === undefined)
    throw new TypeError(
      'capacity: --rps and --p99-ms are required, e.g. pnpm capacity --rps 2000 --p99-ms 200',
    );
  if (!existsSync(resultsFile))
    throw new MissingResultsError(`capacity: ${resultsFile} does not exist: run \`pnpm bench\` first`);
  const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchResults;
  const plan = planCapacity(options as CapacityOptions, results, renderKustomization(overlayDir), prices);
  console.log(formatPlan(plan, options as CapacityOptions, prices, resultsFile.replace(`${REPO_ROOT}`, '')));
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(error instanceof MissingResultsError ? 2 : 1);
    },
  );
}
