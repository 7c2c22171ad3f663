// A dispatch whose grid is empty (an expert segment no token chose) is skipped when encoded: Dawn warns about such a
// dispatch, and dawn.node writes its warnings to stdout, which carries only results. The dispatches around it still run.
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { HAS_GPU } from '../../helpers/gpu.ts';

test.skipIf(!HAS_GPU)('an empty grid between two dispatches: skipped, nothing on stdout, the others run', () => {
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, '../../helpers/empty_grid.ts')], { stderr: 'pipe', env: process.env });
  expect({ code: p.exitCode, out: p.stdout.toString() }).toEqual({ code: 0, out: 'done\n' });
}, 60000);
