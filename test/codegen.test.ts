import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from '@graphql-codegen/cli';
import { describe, expect, it } from 'vitest';
import { codegenConfig, finishGeneratedFile, generatedFiles } from '../codegen.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('generated resolver types', () => {
  it('match the SDL: run `pnpm codegen` after changing a .graphql file', async () => {
    // Generated in memory, finished as `pnpm codegen` finishes them, compared with the files on disk.
    const outputs: { filename: string; content: string }[] = await generate(codegenConfig, false);
    expect(outputs.map((output) => output.filename).sort()).toEqual(Object.keys(generatedFiles).sort());
    for (const output of outputs) {
      const path = join(root, output.filename);
      const fresh = finishGeneratedFile(path, output.content);
      expect(readFileSync(path, 'utf8'), `${output.filename} is stale: run \`pnpm codegen\``).toBe(fresh);
    }
  });
});
