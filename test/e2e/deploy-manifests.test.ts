// No Docker engine or cluster runs here: the Dockerfile and the Kubernetes manifests are
// checked statically against what the processes actually do.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
const manifests = readdirSync(`${root}deploy/k8s`)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(`${root}deploy/k8s/${file}`, 'utf8')).map((d) => ({
      file,
      doc: d.toJS(),
    })),
  );

describe('deployment files', () => {
  it('parse, and every Deployment probes /readyz and /healthz on a declared port with a grace period above the drain', () => {
    const deployments = manifests.filter((m) => m.doc.kind === 'Deployment');
    expect(deployments.length).toBeGreaterThanOrEqual(2);
    for (const { file, doc } of deployments) {
      const spec = doc.spec.template.spec;
      expect(spec.terminationGracePeriodSeconds, file).toBeGreaterThan(15); // the BFF drains for 10 s, plus preStop
      for (const container of spec.containers) {
        const ports = container.ports.map((p: { name: string }) => p.name);
        expect(container.readinessProbe.httpGet.path, file).toBe('/readyz');
        expect(container.livenessProbe.httpGet.path, file).toBe('/healthz');
        expect(ports, file).toContain(container.readinessProbe.httpGet.port);
        const env = Object.fromEntries(
          container.env.map((e: { name: string; value?: string }) => [e.name, e.value]),
        );
        expect(String(container.ports[0].containerPort), file).toBe(env.PORT);
      }
    }
  });

  it('run each process as one node process listening beyond loopback', () => {
    const dockerfile = readFileSync(`${root}deploy/Dockerfile`, 'utf8');
    expect(dockerfile).toMatch(/CMD \["node", "--import", "tsx", "src\/main.ts"\]/);
    expect(dockerfile).toMatch(/HOST=0\.0\.0\.0/);
    expect(dockerfile).toMatch(/pnpm install --frozen-lockfile/);
    expect(dockerfile).toMatch(/^USER node$/m);
  });

  it('give the web BFF the Node flags the benchmark measured it with', async () => {
    const { SHIPPED_BFF_NODE_FLAGS } = await import('../../bench/harness.ts');
    const bff = manifests.find((m) => m.doc.kind === 'Deployment' && m.file === 'web-bff.yaml');
    const env = bff?.doc.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(env.find((e) => e.name === 'NODE_OPTIONS')?.value).toBe(SHIPPED_BFF_NODE_FLAGS.join(' '));
  });
});
