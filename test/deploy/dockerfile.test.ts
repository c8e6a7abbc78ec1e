// deploy/Dockerfile linted without a Docker engine. hadolint is not packaged by Debian (nor on
// npm), so the rules checked here are implemented on dockerfile-ast's parse, each under
// hadolint's code where it has one (https://github.com/hadolint/hadolint#rules) and under a BFF
// code for ours. A bad Dockerfile below proves each rule fires.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DockerfileParser, type From, type Instruction } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';

const dockerfilePath = fileURLToPath(new URL('../../deploy/Dockerfile', import.meta.url));

interface Finding {
  rule: string;
  line: number;
  message: string;
}

function line(instruction: Instruction): number {
  return instruction.getRange().start.line + 1;
}

/** Every rule broken by `text`, with the line. */
function lintDockerfile(text: string): Finding[] {
  const dockerfile = DockerfileParser.parse(text);
  const findings: Finding[] = [];
  const report = (rule: string, at: Instruction | number, message: string) =>
    findings.push({ rule, line: typeof at === 'number' ? at : line(at), message });
  const lines = text.split('\n');
  // The instruction as written, flags included (getArgumentsContent leaves flags out).
  const written = (i: Instruction) => {
    const { start, end } = i.getRange();
    return lines.slice(start.line, end.line + 1).join('\n');
  };
  const instructions = dockerfile.getInstructions();
  const froms = instructions.filter((i): i is From => i.getKeyword() === 'FROM') as From[];
  const stages = froms.map((f) => f.getBuildStage()).filter((s): s is string => s !== null);

  for (const from of froms) {
    const image = from.getImageName() ?? '';
    if (stages.includes(image)) continue; // FROM an earlier stage
    const tag = from.getImageTag();
    const digest = from.getImageDigest();
    if (!tag && !digest) report('DL3006', from, `Always tag the version of an image explicitly (${image})`);
    if (tag === 'latest')
      report('DL3007', from, 'Using latest is prone to errors if the image will ever update');
  }
  const finalFrom = froms.at(-1);
  const finalStart = finalFrom ? line(finalFrom) : 0;
  const inFinal = (i: Instruction) => line(i) >= finalStart;

  const users = instructions.filter((i) => i.getKeyword() === 'USER' && inFinal(i));
  const lastUser = users.at(-1)?.getArgumentsContent()?.trim() ?? '';
  if (!lastUser || /^(root|0)(:|$)/.test(lastUser))
    report('DL3002', users.at(-1) ?? finalStart, 'Last USER should not be root');
  if (lastUser && !/^[1-9]\d*(:[1-9]\d*)?$/.test(lastUser))
    report(
      'BFF002',
      users.at(-1) ?? finalStart,
      'USER by number (uid:gid) so that Kubernetes can verify runAsNonRoot',
    );

  for (const instruction of instructions) {
    const keyword = instruction.getKeyword();
    const args = written(instruction).replace(/^\s*\S+\s*/, '');
    if (keyword === 'ADD') {
      if (/(^|\s)(https?|git):\/\//.test(args))
        report('DL3020', instruction, 'ADD of a URL: download in a RUN with a checksum');
      else report('DL3020', instruction, 'Use COPY instead of ADD for files and folders');
    }
    if ((keyword === 'CMD' || keyword === 'ENTRYPOINT') && !args.trim().startsWith('['))
      report('DL3025', instruction, 'Use arguments JSON notation for CMD and ENTRYPOINT arguments');
    if (keyword === 'WORKDIR' && !/^(\/|\$)/.test(args.trim()))
      report('DL3000', instruction, 'Use absolute WORKDIR');
    if (keyword === 'MAINTAINER') report('DL4000', instruction, 'MAINTAINER is deprecated');
    if (keyword === 'RUN') {
      if (/(^|[;&|]\s*)sudo\s/.test(args)) report('DL3004', instruction, 'Do not use sudo');
      if (/\bcd\s+\//.test(args)) report('DL3003', instruction, 'Use WORKDIR to switch to a directory');
      if (/apt-get\s+(-\S+\s+)*install/.test(args)) {
        if (!/--no-install-recommends/.test(args))
          report('DL3015', instruction, 'Avoid additional packages by specifying --no-install-recommends');
        if (!/\s-y\b|--yes|--assume-yes/.test(args)) report('DL3014', instruction, 'Use the -y switch');
        if (!/rm -rf \/var\/lib\/apt\/lists/.test(args))
          report('DL3009', instruction, 'Delete the apt-get lists after installing something');
      }
      for (const match of args.matchAll(/npm (?:install|i) (?:-g|--global)((?:\s+[^\s&;|]+)+)/g))
        for (const pkg of (match[1] ?? '')
          .trim()
          .split(/\s+/)
          .filter((p) => !p.startsWith('-')))
          if (!/.@\d/.test(pkg)) report('DL3016', instruction, `Pin versions in npm (${pkg})`);
    }
    if (keyword === 'COPY') {
      const from = /--from=(\S+)/.exec(args)?.[1];
      if (from && !stages.includes(from) && !/[:/]/.test(from))
        report(
          'DL3022',
          instruction,
          `COPY --from should reference a previously defined FROM alias (${from})`,
        );
      if (inFinal(instruction) && froms.length > 1) {
        const chown = /--chown=(\S+)/.exec(args)?.[1];
        if (chown === undefined) report('BFF003', instruction, 'COPY into the runtime stage states --chown');
        else if (!/^(root|0)(:(root|0))?$/.test(chown))
          report('BFF003', instruction, 'Code owned by root: the process must not be able to change it');
      }
    }
    if (keyword === 'VOLUME' && inFinal(instruction))
      report(
        'BFF004',
        instruction,
        'No VOLUME: the root filesystem is read-only, writes go to the /tmp emptyDir',
      );
  }
  if (!instructions.some((i) => i.getKeyword() === 'HEALTHCHECK' && inFinal(i)))
    report(
      'DL3057',
      finalStart,
      'HEALTHCHECK instruction missing (HEALTHCHECK NONE when probes are elsewhere)',
    );

  if (finalFrom) {
    const image = `${finalFrom.getImageName()}:${finalFrom.getImageTag() ?? ''}`;
    if (!/^node:24(\.\d+){0,2}-bookworm-slim$/.test(image))
      report('BFF001', finalFrom, `Runtime base is Node 24 LTS on Debian bookworm slim (was ${image})`);
  }
  const cmd = instructions.filter((i) => i.getKeyword() === 'CMD' && inFinal(i)).at(-1);
  if (cmd?.getArgumentsContent()?.replace(/\s/g, '') !== '["node","main.mjs"]')
    report(
      'BFF005',
      cmd ?? finalStart,
      'The image runs the compiled bundle: CMD ["node", "main.mjs"], no tsx',
    );
  return findings;
}

describe('deploy/Dockerfile', () => {
  const text = readFileSync(dockerfilePath, 'utf8');

  it('passes every rule', () => {
    expect(lintDockerfile(text)).toEqual([]);
  });

  it('builds the compiled process in one stage and ships only its dist folder, production-configured', () => {
    const dockerfile = DockerfileParser.parse(text);
    const froms = dockerfile.getFROMs();
    expect(froms).toHaveLength(2);
    const runs = dockerfile
      .getInstructions()
      .filter((i) => i.getKeyword() === 'RUN')
      .map((i) => i.getArgumentsContent());
    expect(runs.join('\n')).toMatch(/pnpm install --frozen-lockfile && pnpm build "\$\{PROCESS\}"/);
    const finalCopies = dockerfile
      .getInstructions()
      .filter(
        (i) => i.getKeyword() === 'COPY' && i.getRange().start.line > (froms[1]?.getRange().start.line ?? 0),
      )
      .map((i) => {
        const { start, end } = i.getRange();
        return text
          .split('\n')
          .slice(start.line, end.line + 1)
          .join(' ');
      });
    expect(finalCopies).toEqual([`COPY --from=build --chown=root:root /repo/dist/\${PROCESS}/ /app/`]);
    expect(text).toMatch(/NODE_ENV=production/);
    // Listening beyond loopback inside the pod (the processes default to 127.0.0.1).
    expect(text).toMatch(/HOST=0\.0\.0\.0/);
  });

  it('catches what each rule is about (a Dockerfile breaking them all)', () => {
    const bad = [
      'FROM node AS build',
      'MAINTAINER someone',
      'RUN apt-get install curl && sudo npm install -g pnpm',
      'ADD https://example.com/tool.tgz /tmp/',
      'FROM node:latest',
      'WORKDIR app',
      'COPY --from=elsewhere dist/ /app/',
      'VOLUME /data',
      'USER node',
      'CMD node --import tsx src/main.ts',
    ].join('\n');
    const rules = new Set(lintDockerfile(bad).map((f) => f.rule));
    expect([...rules].sort()).toEqual(
      [
        'BFF001',
        'BFF002',
        'BFF003',
        'BFF004',
        'BFF005',
        'DL3000',
        'DL3004',
        'DL3006',
        'DL3007',
        'DL3009',
        'DL3014',
        'DL3015',
        'DL3016',
        'DL3020',
        'DL3022',
        'DL3025',
        'DL3057',
        'DL4000',
      ].sort(),
    );
    expect(lintDockerfile(bad.replace('USER node', 'USER root')).map((f) => f.rule)).toContain('DL3002');
  });
});
