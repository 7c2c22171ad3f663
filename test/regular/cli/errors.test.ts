// Bad input and faults as a user meets them: one clear line on stderr, exit 2 for usage and 1 for runtime
// failures, no stack trace without --verbose, nothing on stdout.
import { describe, expect, test } from 'bun:test';
import { copyFileSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTensorFile, writeSafetensors } from '../../../src/load/safetensors.ts';
import { fixture } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';

const ROOT = join(import.meta.dir, '../../..');
const tiny = fixture('rwkv7-tiny');

function fla(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

function expectOneLine(r: { code: number | null; out: string; err: string }, code: number, re: RegExp) {
  expect(r.out).toBe('');
  // the Vulkan loader's own warnings (when the test points it at no driver) are not ours
  const lines = r.err.trim().split('\n').filter(l => !/loader_|^Warning:/.test(l));
  expect(lines, r.err).toHaveLength(1);
  expect(r.err).toMatch(re);
  expect(r.err).not.toMatch(/^\s+at /m);
  expect(r.code).toBe(code);
}

/** A copy of rwkv7-tiny whose model.safetensors is rewritten by `edit`. */
function brokenCheckpoint(edit: (t: Record<string, { dtype: any; shape: number[]; data: ArrayBufferView }>) => void): string {
  const d = mkdtempSync(join(tmpdir(), 'fla-bad-ckpt-'));
  copyFileSync(join(tiny!, 'config.json'), join(d, 'config.json'));
  const t: Record<string, { dtype: any; shape: number[]; data: ArrayBufferView }> = {};
  const bytes = readFileSync(join(tiny!, 'model.safetensors'));
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  for (const [k, v] of Object.entries<any>(header)) {
    if (k === '__metadata__') continue;
    t[k] = { dtype: v.dtype, shape: v.shape, data: bytes.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]) };
  }
  edit(t);
  writeSafetensors(join(d, 'model.safetensors'), t);
  return d;
}

describe.skipIf(!tiny)('checkpoint errors', () => {
  const run = (dir: string) => fla(['run', dir, '--ids', '1,2', '-n', '1', '--device', 'cpu']);
  test('missing tensor', () => {
    expectOneLine(run(brokenCheckpoint(t => delete t['model.layers.1.attn.k_proj.weight'])), 1, /missing tensor model\.layers\.1\.attn\.k_proj\.weight/);
  });
  test('extra tensor', () => {
    expectOneLine(run(brokenCheckpoint(t => { t['model.layers.9.surprise'] = { dtype: 'F32', shape: [2], data: new Float32Array(2) }; })), 1, /unexpected tensors .*model\.layers\.9\.surprise/);
  });
  test('wrong shape', () => {
    expectOneLine(run(brokenCheckpoint(t => { t['model.norm.weight']!.shape = [64, 2]; })), 1, /model\.norm\.weight has shape \[64,2\], expected \[128\]/);
  });
  test('wrong dtype', () => {
    expectOneLine(run(brokenCheckpoint(t => { const x = t['model.norm.weight']!; t['model.norm.weight'] = { dtype: 'I16', shape: x.shape, data: x.data }; })), 1, /model\.norm\.weight has dtype I16/);
  });
  test('truncated safetensors', () => {
    const d = brokenCheckpoint(() => {});
    const b = readFileSync(join(d, 'model.safetensors'));
    writeFileSync(join(d, 'model.safetensors'), b.subarray(0, b.length - 1000));
    expectOneLine(run(d), 1, /model\.safetensors: .*(beyond|exceeds|past|outside)/);
  });
  test('header length beyond the file', () => {
    const d = brokenCheckpoint(() => {});
    const b = new Uint8Array(readFileSync(join(d, 'model.safetensors')));
    new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
    writeFileSync(join(d, 'model.safetensors'), b);
    expectOneLine(run(d), 1, /model\.safetensors: header length/);
  });
  test('no safetensors file at all', () => {
    const d = mkdtempSync(join(tmpdir(), 'fla-bad-ckpt-'));
    copyFileSync(join(tiny!, 'config.json'), join(d, 'config.json'));
    expectOneLine(run(d), 1, /safetensors/);
  });
  test('missing config.json', () => {
    expectOneLine(run(mkdtempSync(join(tmpdir(), 'fla-empty-'))), 1, /config\.json: file not found/);
  });
  test('a config field of the wrong type', () => {
    const d = mkdtempSync(join(tmpdir(), 'fla-bad-cfg-'));
    const cfg = JSON.parse(readFileSync(join(tiny!, 'config.json'), 'utf8'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, hidden_size: 'big' }));
    symlinkSync(join(tiny!, 'model.safetensors'), join(d, 'model.safetensors'));
    expectOneLine(run(d), 1, /config field hidden_size must be an integer/);
  });
  test('missing tokenizer for a text prompt', () => {
    expectOneLine(fla(['run', tiny!, 'hello', '--device', 'cpu']), 1, /no tokenizer \(tokenizer\.json or an RWKV World rwkv_vocab_\*\.txt\)/);
  });
  test('token id beyond the vocabulary', () => {
    expectOneLine(fla(['run', tiny!, '--ids', '1,99999', '--device', 'cpu']), 1, /token id 99999 is out of range for a vocabulary of 512/);
  });
  test('--verbose adds the stack', () => {
    const r = fla(['run', tiny!, '--ids', '1,99999', '--device', 'cpu', '--verbose']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^\s+at /m);
  });
});

describe('files and context', () => {
  test('ppl --text on a folder', () => {
    expectOneLine(fla(["ppl", "--text", ROOT, "--device", "cpu"]), 2, /--text .*: not a file/);
  });
  test('ppl text shorter than one window', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'fla-short-')), 'a.txt');
    writeFileSync(f, 'In the beginning');
    expectOneLine(fla(['ppl', '--text', f, '--device', 'cpu']), 2, /need at least --window \+ 1 = 513/);
  });
  test.skipIf(!fixture('llama-tiny'))('a prompt longer than the context (attention model), before any GPU work', () => {
    const ids = Array.from({ length: 40 }, (_, i) => i % 500).join(',');
    expectOneLine(fla(['chat', fixture('llama-tiny')!, '--device', 'cpu']), 1, /no tokenizer|no chat template/);
    const r = fla(['run', fixture('llama-tiny')!, '--ids', ids, '-n', '5000', '--device', 'cpu']);
    expectOneLine(r, 2, /exceeds the model's context of 4096 tokens/);
  });
});

describe('GPU faults', () => {
  test('no adapter: falls back to the CPU with a warning; --device gpu is an error', () => {
    const env = { VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json' };
    const auto = fla(['run', '--ids', '1,2', '-n', '2', '-t', '0', '--json'], env);
    expect(auto.code).toBe(0);
    expect(JSON.parse(auto.out).device).toBe('cpu');
    expect(auto.err).toMatch(/warning: no WebGPU adapter found; running on the CPU/);
    expectOneLine(fla(['run', '--ids', '1,2', '-n', '2', '--device', 'gpu'], env), 1, /no WebGPU adapter found/);
  });
  test.skipIf(!HAS_GPU)('a tensor over the adapter binding limit names the sizes (lavapipe: 128 MiB); under it, runs', () => {
    const limit = JSON.parse(fla(['devices', '--json']).out).adapters[0].maxStorageBufferBindingSize as number;
    const r = fla(['bench', '--synthetic', 'rwkv7-1.5b', '-p', '8', '-n', '2', '-r', '1', '--device', 'gpu']);
    if (limit >= 256 * 2 ** 20) {   // the 65536 × 2048 bf16 embedding (256 MiB) fits one binding: the bench must run
      expect(r.code, r.err).toBe(0);
      return;
    }
    expect(r.code).toBe(1);
    const mib = (limit / 2 ** 20).toFixed(1).replace(/\./, '\\.');
    expect(r.err).toMatch(new RegExp(`model\\.embeddings\\.weight: 256\\.0 MiB exceeds the adapter's largest storage binding \\(${mib} MiB\\)`));
  });
});

describe('signals', () => {
  test('Ctrl-C during generation: what was generated is flushed, exit 130', async () => {
    const p = Bun.spawn([process.execPath, join(ROOT, 'cli/main.ts'), 'run', 'In the beginning', '-n', '100000', '-t', '0', '--device', HAS_GPU ? 'gpu' : 'cpu'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
    const reader = p.stdout.getReader();
    let out = '';
    const deadline = Date.now() + 60_000;
    while (out.length < 40 && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    p.kill('SIGINT');
    for (;;) { const { value, done } = await reader.read(); if (done) break; out += new TextDecoder().decode(value); }
    expect(await p.exited).toBe(130);
    expect(out.startsWith('In the beginning')).toBe(true);
    expect(out.length).toBeGreaterThan(40);
  }, 120_000);
});
