// The Grafana dashboard and Prometheus rules in deploy/observability/ name metrics in PromQL
// strings nothing type-checks. This suite parses both files, checks their shape, and checks that
// every metric they query is one the code exports, so renaming a metric in
// packages/observability/src/metrics.ts without updating them fails here.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const root = fileURLToPath(new URL('..', import.meta.url));
const assets = join(root, 'deploy/observability');
const dashboardPath = join(assets, 'grafana-dashboard.json');
const rulesPath = join(assets, 'prometheus-rules.yaml');
const metricsSourcePath = join(root, 'packages/observability/src/metrics.ts');
/** Grafana's reference to the dashboard's `datasource` variable. */
const DATASOURCE_VAR = `\${datasource}`;

// ---------------------------------------------------------------------------------------------
// What the code exports
// ---------------------------------------------------------------------------------------------

interface Exported {
  /** Every metric name a scrape can return, histograms by their base name. */
  names: Set<string>;
  /** Histograms, whose series are `<name>_bucket`, `<name>_count` and `<name>_sum`. */
  histograms: Set<string>;
  /** Label names the metrics carry. */
  labels: Set<string>;
}

/** The metrics declared in metrics.ts: `new Histogram|Counter|Gauge({ name: '...', labelNames: [...] })`. */
function metricsFromSource(source: string): Exported {
  const names = new Set<string>();
  const histograms = new Set<string>();
  const labels = new Set<string>();
  for (const match of source.matchAll(/new (Histogram|Counter|Gauge|Summary)\(\{\s*name: '([^']+)'/g)) {
    const [, kind, name] = match as unknown as [string, string, string];
    names.add(name);
    if (kind === 'Histogram') histograms.add(name);
  }
  for (const match of source.matchAll(/labelNames: \[([^\]]*)\]/g)) {
    for (const label of (match[1] ?? '').matchAll(/'([^']+)'/g)) labels.add(label[1] as string);
  }
  return { names, histograms, labels };
}

/**
 * The default metrics prom-client collects (createMetricsRegistry calls collectDefaultMetrics), read
 * from the installed prom-client's own sources: `const PROCESS_CPU_SECONDS = 'process_cpu_seconds_total'`.
 */
function promClientDefaultMetrics(): Set<string> {
  const require = createRequire(join(root, 'packages/observability/package.json'));
  const dir = join(dirname(require.resolve('prom-client/package.json')), 'lib/metrics');
  const names = new Set<string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.js'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const match of source.matchAll(/'((?:process|nodejs)_[a-z0-9_]+)'/g)) names.add(match[1] as string);
    // heapSpacesSizeAndUsed.js builds `nodejs_heap_space_size_${type}_bytes` from a list.
    if (source.includes('nodejs_heap_space_size_'))
      for (const type of ['total', 'used', 'available']) names.add(`nodejs_heap_space_size_${type}_bytes`);
  }
  return names;
}

const metricsSource = readFileSync(metricsSourcePath, 'utf8');
const fromCode = metricsFromSource(metricsSource);
const defaults = promClientDefaultMetrics();
/** prom-client's histogram among the defaults. */
const defaultHistograms = new Set(['nodejs_gc_duration_seconds']);

// ---------------------------------------------------------------------------------------------
// PromQL: metric names and label names of an expression
// ---------------------------------------------------------------------------------------------

const PROMQL_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'atan2',
  'inf',
  'nan',
]);

/** Clauses whose parentheses hold label names, not expressions. */
const LABEL_LIST = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/**
 * The metric names an expression selects, and the label names it matches or groups by. String
 * literals, `{...}` matchers and `[...]` ranges are taken out first; what remains as an identifier
 * not followed by `(` (a function call) and not a keyword is a metric name.
 */
function parsePromQL(expr: string): { metrics: Set<string>; labels: Set<string> } {
  const labels = new Set<string>();
  const metrics = new Set<string>();
  let rest = expr.replace(/#[^\n]*/g, ' ').replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  rest = rest.replace(/\{([^}]*)\}/g, (_, matchers: string) => {
    for (const m of matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) labels.add(m[1] as string);
    return ' ';
  });
  rest = rest.replace(LABEL_LIST, (_, _clause: string, list: string) => {
    for (const l of list.split(',')) if (l.trim()) labels.add(l.trim());
    return ' ';
  });
  rest = rest.replace(/\[[^\]]*\]/g, ' ');
  for (const m of rest.matchAll(/(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()/g)) {
    const name = m[1] as string;
    if (PROMQL_KEYWORDS.has(name.toLowerCase())) continue;
    metrics.add(name);
  }
  return { metrics, labels };
}

/** The metric names of `known` that `used` does not resolve to: none when all are exported. */
function unknownMetrics(used: Iterable<string>, known: Exported): string[] {
  return [...used].filter((name) => {
    if (known.names.has(name)) return false;
    const base = name.replace(/_(bucket|count|sum)$/, '');
    return !(base !== name && known.histograms.has(base));
  });
}

// ---------------------------------------------------------------------------------------------
// The assets
// ---------------------------------------------------------------------------------------------

interface Target {
  expr?: string;
  datasource?: unknown;
}
interface Panel {
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface TemplateVar {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string };
}
interface Rule {
  record?: string;
  alert?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; interval?: string; rules: Rule[] }[];
}

const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as {
  schemaVersion: number;
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: TemplateVar[] };
};
const ruleFile = parseYaml(readFileSync(rulesPath, 'utf8')) as RuleFile;

/** Every non-row panel, rows' nested panels included. */
const panels: Panel[] = dashboard.panels.flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
const rules: Rule[] = ruleFile.groups.flatMap((g) => g.rules);
const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));

/** Every PromQL expression in both files, with where it comes from. */
function expressions(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const panel of panels)
    for (const target of panel.targets ?? [])
      if (target.expr) out.push({ where: `panel "${panel.title}"`, expr: target.expr });
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
    // label_values(<series selector>, <label>): the selector is PromQL, the label is not.
    const selector = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/s.exec(query.trim());
    out.push({ where: `variable $${variable.name}`, expr: selector ? (selector[1] as string) : query });
  }
  for (const rule of rules) out.push({ where: `rule ${rule.alert ?? rule.record}`, expr: rule.expr ?? '' });
  return out;
}

/** What the assets may query: the code's metrics, prom-client's defaults, `up`, and recorded series. */
function knownMetrics(code: Exported): Exported {
  return {
    names: new Set([...code.names, ...defaults, 'up', ...recorded]),
    histograms: new Set([...code.histograms, ...defaultHistograms]),
    labels: code.labels,
  };
}

/** Every (where, metric) pair the assets use that `code` does not export. */
function unexported(code: Exported): string[] {
  const known = knownMetrics(code);
  return expressions().flatMap(({ where, expr }) =>
    unknownMetrics(parsePromQL(expr).metrics, known).map((name) => `${where}: ${name}`),
  );
}

// ---------------------------------------------------------------------------------------------

describe('what the code exports', () => {
  it('finds every metric metrics.ts declares', () => {
    // As many declarations as `name: '...'` occurrences: the parser misses none.
    expect(fromCode.names.size).toBe([...metricsSource.matchAll(/\bname: '[^']+'/g)].length);
    expect([...fromCode.names].sort()).toEqual(
      expect.arrayContaining([
        'bff_circuit_breaker_state',
        'bff_upstream_request_duration_seconds',
        'graphql_operation_duration_seconds',
        'outbox_oldest_age_seconds',
        'service_request_duration_seconds',
      ]),
    );
    expect(fromCode.histograms).toContain('graphql_operation_duration_seconds');
    expect(fromCode.labels).toContain('operation_name');
  });

  it("reads prom-client's default metric names from the installed package", () => {
    expect(metricsSource).toContain('collectDefaultMetrics(');
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds',
    ])
      expect(defaults).toContain(name);
  });
});

describe('parsePromQL', () => {
  it('finds metric names, not functions, keywords, label names, strings or durations', () => {
    const { metrics, labels } = parsePromQL(
      'sum by (app, le) (rate(foo_bucket{app=~"$app", outcome!="ok"}[5m] offset 1h)) / on (app) group_left bar_total > bool 0.5 and baz unless max(qux:rec:ratio)',
    );
    expect([...metrics].sort()).toEqual(['bar_total', 'baz', 'foo_bucket', 'qux:rec:ratio']);
    expect([...labels].sort()).toEqual(['app', 'le', 'outcome']);
    expect([...parsePromQL('up == 0').metrics]).toEqual(['up']);
    expect([...parsePromQL('histogram_quantile(0.99, x_bucket[$__rate_interval]) > 1e3').metrics]).toEqual([
      'x_bucket',
    ]);
    expect([...parsePromQL('rate(x[5m])>0').metrics]).toEqual(['x']);
  });
});

describe('grafana-dashboard.json', () => {
  it('is a dashboard with a Prometheus datasource variable and app / operation_name variables', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBeTruthy();
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const appQuery = vars.get('app')?.query;
    expect(typeof appQuery === 'string' ? appQuery : appQuery?.query).toBe(
      'label_values(graphql_operation_duration_seconds_count, app)',
    );
    expect(vars.get('operation_name')?.type).toBe('query');
    for (const v of dashboard.templating.list)
      if (v.type === 'query') expect(v.datasource?.uid, `variable ${v.name}`).toBe(DATASOURCE_VAR);
  });

  it('gives every panel the datasource variable and at least one target with an expression', () => {
    expect(panels.length).toBeGreaterThan(10);
    for (const panel of panels) {
      expect(panel.datasource?.uid, `panel "${panel.title}"`).toBe(DATASOURCE_VAR);
      expect(panel.targets?.length, `panel "${panel.title}"`).toBeGreaterThan(0);
      for (const target of panel.targets ?? [])
        expect(target.expr?.trim(), `panel "${panel.title}"`).toBeTruthy();
    }
  });

  it('has the RED, upstream, breaker, rate-limit, retry, process and service panels', () => {
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
    for (const needle of [
      'sum by (app, operation_name) (rate(graphql_operation_duration_seconds_count{',
      'outcome="error"',
      'histogram_quantile(0.5, sum by (app, le) (rate(graphql_operation_duration_seconds_bucket',
      'histogram_quantile(0.95, sum by (app, le) (rate(graphql_operation_duration_seconds_bucket',
      'histogram_quantile(0.99, sum by (app, le) (rate(graphql_operation_duration_seconds_bucket',
      'sum by (service, method) (rate(bff_upstream_request_duration_seconds_count',
      'histogram_quantile(0.99, sum by (service, method, le) (rate(bff_upstream_request_duration_seconds_bucket',
      'bff_circuit_breaker_state',
      'bff_rate_limit_decisions_total',
      'bff_upstream_retries_total',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'service_request_duration_seconds_count',
      'service_request_duration_seconds_bucket',
      'outbox_backlog_rows',
      'outbox_oldest_age_seconds',
    ])
      expect(exprs).toContain(needle);
  });
});

describe('prometheus-rules.yaml', () => {
  it('is a rule file whose rules all have an expression; alerts a duration, severity and summary', () => {
    expect(ruleFile.groups.length).toBeGreaterThan(0);
    for (const group of ruleFile.groups) {
      expect(group.name).toBeTruthy();
      expect(group.rules.length, group.name).toBeGreaterThan(0);
    }
    for (const rule of rules) {
      const where = rule.alert ?? rule.record ?? JSON.stringify(rule);
      expect(Boolean(rule.alert) !== Boolean(rule.record), `${where}: exactly one of alert, record`).toBe(
        true,
      );
      expect(rule.expr?.trim(), where).toBeTruthy();
      if (rule.record) expect(rule.record, where).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
      if (rule.alert) {
        expect(rule.for, where).toMatch(/^\d+[smhd]$/);
        expect(['critical', 'warning', 'info'], where).toContain(rule.labels?.severity);
        expect(rule.annotations?.summary, where).toBeTruthy();
        expect(rule.annotations?.description, where).toBeTruthy();
      }
    }
  });

  it('alerts on what issue 12 asks for', () => {
    const alerts = new Map(rules.flatMap((r) => (r.alert ? [[r.alert, r] as const] : [])));
    const recordedExpr = (name: string) => rules.find((r) => r.record === name)?.expr ?? '';
    const expand = (rule: Rule | undefined) =>
      (rule?.expr ?? '').replace(/[a-z_]+:[a-z0-9_]+:[a-z0-9_]+/g, (name) => `(${recordedExpr(name)})`);
    const errorRatio = alerts.get('BffHighErrorRatio');
    expect(expand(errorRatio)).toMatch(/outcome="error"[\s\S]*> 0\.05/);
    expect(errorRatio?.for).toBe('5m');
    const latency = alerts.get('BffHighLatencyP99');
    expect(expand(latency)).toMatch(/histogram_quantile\(0\.99, sum by \(app, le\)[\s\S]*> 1$/);
    expect(latency?.for).toBe('10m');
    expect(alerts.get('UpstreamCircuitOpen')).toMatchObject({
      expr: 'bff_circuit_breaker_state == 2',
      for: '1m',
    });
    expect(expand(alerts.get('UpstreamHighErrorRatio'))).toMatch(/sum by \(service\)[\s\S]*> 0\.1$/);
    expect(alerts.get('OutboxStalled')).toMatchObject({ for: '5m' });
    expect(alerts.get('OutboxStalled')?.expr).toMatch(/outbox_oldest_age_seconds\) > 60$/);
    expect(alerts.get('TargetDown')?.expr).toBe('up == 0');
  });
});

describe('metric names in the assets', () => {
  it('are all exported by the code (metrics.ts, prom-client defaults, up, recording rules)', () => {
    const used = new Set(expressions().flatMap(({ expr }) => [...parsePromQL(expr).metrics]));
    // Sanity: the tokenizer sees the metrics the assets are about.
    expect(used).toContain('graphql_operation_duration_seconds_bucket');
    expect(used).toContain('bff_circuit_breaker_state');
    expect(used).toContain('up');
    expect(unexported(fromCode)).toEqual([]);
  });

  it('would fail if a metric were renamed in metrics.ts', () => {
    // The same check against a copy of the exported names with one renamed, as if metrics.ts changed.
    for (const name of [
      'graphql_operation_duration_seconds',
      'bff_circuit_breaker_state',
      'outbox_backlog_rows',
    ]) {
      const renamed: Exported = {
        names: new Set([...fromCode.names].map((n) => (n === name ? `${n}_renamed` : n))),
        histograms: new Set([...fromCode.histograms].map((n) => (n === name ? `${n}_renamed` : n))),
        labels: fromCode.labels,
      };
      expect(unexported(renamed).length, name).toBeGreaterThan(0);
      expect(
        unexported(renamed).every((entry) => entry.includes(name)),
        name,
      ).toBe(true);
    }
  });

  it('match and group by labels the metrics carry', () => {
    const known = new Set([
      ...fromCode.labels,
      // Registry default labels: `app` on BFFs, `service` on services.
      'app',
      'service',
      // Added by Prometheus or the histogram format.
      'job',
      'instance',
      'le',
    ]);
    const unknown = expressions().flatMap(({ where, expr }) =>
      [...parsePromQL(expr).labels].filter((l) => !known.has(l)).map((l) => `${where}: ${l}`),
    );
    expect(unknown).toEqual([]);
  });
});

const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();

describe('promtool', () => {
  if (!promtool)
    console.info('observability-assets: promtool is not installed; skipping `promtool check rules`.');
  it.skipIf(!promtool)('accepts the rule file (promtool check rules)', () => {
    const result = spawnSync(promtool, ['check', 'rules', rulesPath], { encoding: 'utf8' });
    expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
  });
});
