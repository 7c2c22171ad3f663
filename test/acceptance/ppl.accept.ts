// Acceptance (scripts/acceptance.sh; not part of npm test): `fla ppl` over the whole of val.ids (99 windows of 512
// tokens) for both trained models, against the reference val_loss. npm test checks the first windows instead
// (test/regular/cli/cli.test.ts against test/fixtures/kjv-ppl-windows.json).
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTensorFile } from '../../src/load/safetensors.ts';
import { sharedModel } from '../helpers/fixtures.ts';
import { HAS_GPU } from '../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../..');
const DEVICE = HAS_GPU ? 'gpu' : 'cpu';

describe('fla ppl, whole corpus', () => {
  for (const name of ['kjv-rwkv7', 'kjv-llama']) {
    const dir = sharedModel(name);
    test.skipIf(!dir)(`${DEVICE}: val.ids perplexity of ${name} within 1e-4 of val_loss`, () => {
      const want = JSON.parse(readFileSync(join(dir!, 'reference.json'), 'utf8')).val_loss as number;
      const ids = readTensorFile(join(dir!, 'reference.safetensors')).get('val.ids')!.data as Int32Array;
      const f = join(mkdtempSync(join(tmpdir(), 'fla-ppl-')), 'val.json');
      writeFileSync(f, JSON.stringify(Array.from(ids)));
      const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), 'ppl', dir!, '--ids', f, '--json', '--device', DEVICE], { cwd: ROOT });
      expect(p.stderr.toString()).toBe('');
      expect(p.exitCode).toBe(0);
      const j = JSON.parse(p.stdout.toString());
      expect(j.windows).toBe(99);
      expect(Math.abs(j.mean_nll - want) / want).toBeLessThan(1e-4);
    }, 3_600_000);   // 50 k tokens: 5–15 minutes each on lavapipe's 2 cores
  }
});
