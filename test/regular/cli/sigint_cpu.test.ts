// Ctrl-C on the CPU backend (also the automatic fallback without a GPU): the steps yield to the event loop, so
// SIGINT stops the generation at once, with the text so far flushed and exit code 130, as on the GPU.
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { sharedModel } from '../../helpers/fixtures.ts';

const ROOT = join(import.meta.dir, '../../..');
const kjv = sharedModel('kjv-rwkv7');

test.skipIf(!kjv)('SIGINT during fla run --device cpu: exit 130 within a second, text flushed', async () => {
  const p = Bun.spawn([process.execPath, join(ROOT, 'cli/main.ts'), 'run', kjv!, 'In the beginning', '-n', '100000', '-t', '0', '--device', 'cpu'],
    { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
  try {
    const reader = p.stdout.getReader();
    const dec = new TextDecoder();
    let out = '';
    while (out.length < 80) { const { value, done } = await reader.read(); if (done) break; out += dec.decode(value, { stream: true }); }
    expect(out.startsWith('In the beginning')).toBe(true);
    const t0 = Date.now();
    p.kill('SIGINT');
    const code = await Promise.race([p.exited, Bun.sleep(5000).then(() => 'still running')]);
    const ms = Date.now() - t0;
    expect(code).toBe(130);
    expect(ms).toBeLessThan(1000);
    for (;;) { const { value, done } = await reader.read(); if (done) break; out += dec.decode(value, { stream: true }); }
    expect(out.endsWith('\n')).toBe(true);          // the partial text was flushed and ended
    expect(await new Response(p.stderr).text()).not.toMatch(/error/);
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL');
  }
}, 60_000);
