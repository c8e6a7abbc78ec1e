// Summarises a V8 CPU profile written under BENCH_CPU_PROF: self time by function and by
// package, so that a bench run says where a contender's time goes.
// `node --import tsx bench/profile.ts <file.cpuprofile> [top] [function-name-regex]` (PROFILE_SKIP_S
// below leaves out the start): with a
// pattern, also the call paths that lead to the matching functions, heaviest first.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg = '40', pattern] = process.argv.slice(2);
if (!file) {
  console.error('usage: node --import tsx bench/profile.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const top = Number(topArg);
const loaded = JSON.parse(readFileSync(file, 'utf8')) as Profile | HeapProfile;
// A sampling heap profile (BENCH_ALLOC_PROF) is a tree of allocation sites with sizes: read it
// as a CPU profile whose "time" is bytes allocated, so that every view below works for both.
const profile: Profile = 'head' in loaded ? fromHeapProfile(loaded) : loaded;
const unit = 'head' in loaded ? 'bytes allocated' : 'time';

interface HeapNode {
  id: number;
  callFrame: ProfileNode['callFrame'];
  selfSize: number;
  children: HeapNode[];
}
interface HeapProfile {
  head: HeapNode;
}
function fromHeapProfile(heap: HeapProfile): Profile {
  const nodes: ProfileNode[] = [];
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  const walk = (node: HeapNode) => {
    nodes.push({ id: node.id, callFrame: node.callFrame, children: node.children.map((c) => c.id) });
    if (node.selfSize > 0) {
      samples.push(node.id);
      timeDeltas.push(node.selfSize);
    }
    for (const child of node.children) walk(child);
  };
  walk(heap.head);
  return { nodes, samples, timeDeltas };
}
const byId = new Map(profile.nodes.map((node) => [node.id, node]));

/** Which package (or Node internal, or our workspace package) a script URL belongs to. */
function owner(url: string): string {
  if (!url) return '(native/vm)';
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/')[0] as string;
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pnpm) return pnpm[1] as string;
  const workspace = /\/(packages|apps|services|bench)\/([^/]+)\//.exec(url);
  if (workspace) return `${workspace[1]}/${workspace[2]}`;
  return url;
}

// PROFILE_SKIP_S=<seconds>: leave out a CPU profile's first seconds (start-up, module loading and
// the warm-up), to see the steady state the measured run is made of.
const skipUs = unit === 'time' ? Number(process.env.PROFILE_SKIP_S ?? 0) * 1e6 : 0;
const self = new Map<number, number>();
let total = 0;
let elapsed = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  elapsed += dt;
  if (elapsed < skipUs) return;
  self.set(id, (self.get(id) ?? 0) + dt);
  total += dt;
});

const byFunction = new Map<string, number>();
const byOwner = new Map<string, number>();
for (const [id, time] of self) {
  const node = byId.get(id);
  if (!node) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${owner(url)} ${url.split('/').at(-1)}:${lineNumber + 1}` : '';
  const name = `${functionName || '(anonymous)'} ${where}`.trim();
  byFunction.set(name, (byFunction.get(name) ?? 0) + time);
  const pkg = ['(idle)', '(garbage collector)', '(program)'].includes(functionName)
    ? functionName
    : owner(url);
  byOwner.set(pkg, (byOwner.get(pkg) ?? 0) + time);
}

// The same time, with what Node's internals and native code did charged to the nearest
// package up the stack that asked for it (JSON.parse to the client that parsed, writev to the
// server that wrote): a view of which part of the system the time was spent for.
const parentOf = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
const charged = new Map<string, number>();
for (const [id, time] of self) {
  let at: number | undefined = id;
  let pkg = '(unattributed)';
  while (at !== undefined) {
    const node = byId.get(at);
    if (!node) break;
    const { functionName, url } = node.callFrame;
    if (['(idle)', '(garbage collector)', '(program)'].includes(functionName)) {
      pkg = functionName;
      break;
    }
    const name = owner(url);
    if (url && !name.startsWith('node:') && name !== '(native/vm)') {
      pkg = name;
      break;
    }
    at = parentOf.get(at);
  }
  charged.set(pkg, (charged.get(pkg) ?? 0) + time);
}

const pct = (time: number) => `${((time / total) * 100).toFixed(1).padStart(5)}%`;
const print = (title: string, entries: Map<string, number>, limit: number) => {
  console.log(`\n${title}`);
  for (const [name, time] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, limit))
    console.log(`${pct(time)}  ${name}`);
};
console.log(
  unit === 'time'
    ? `${file}: ${(total / 1e6).toFixed(1)} s sampled`
    : `${file}: ${(total / 2 ** 20).toFixed(0)} MiB allocated (sampled)`,
);
print('self time by package', byOwner, 30);
print('time by package, Node internals charged to the package that called them', charged, 30);
print('self time by function', byFunction, top);

if (pattern) {
  const matcher = new RegExp(pattern);
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (node: ProfileNode) =>
    `${node.callFrame.functionName || '(anonymous)'} (${owner(node.callFrame.url)})`;
  const paths = new Map<string, number>();
  for (const [id, time] of self) {
    const node = byId.get(id);
    if (!node || !matcher.test(node.callFrame.functionName)) continue;
    const chain: string[] = [];
    for (let at: number | undefined = id; at !== undefined && chain.length < 8; at = parent.get(at)) {
      const frame = byId.get(at);
      if (frame) chain.push(label(frame));
    }
    const key = chain.join(' < ');
    paths.set(key, (paths.get(key) ?? 0) + time);
  }
  print(`call paths to /${pattern}/`, paths, 15);
}
