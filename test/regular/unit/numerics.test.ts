// Broken numerics fail with one line instead of looking like success: NaN/Inf weights and a negative norm eps or
// rope_theta ≤ 0 are refused at load; non-finite logits (an overflow) stop fla run / ppl / serve at run time.
import { describe, expect, test } from 'bun:test';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectModel, loadWeights } from '../../../src/runtime/model.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import { Engine } from '../../../src/runtime/engine.ts';
import { checkLogits, firstNonFinite, firstNonFinite16, NonFiniteError } from '../../../src/util/finite.ts';
import { sharedModel } from '../../helpers/fixtures.ts';

const ROOT = join(import.meta.dir, '../../..');
const llama = sharedModel('kjv-llama');
const rwkv = sharedModel('kjv-rwkv7');

function fla(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, FLA_LOG: 'info' } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

/** A writable copy of a model folder. */
function copy(dir: string): string {
  const to = mkdtempSync(join(tmpdir(), 'fla-numerics-'));
  cpSync(dir, to, { recursive: true });
  Bun.spawnSync(['chmod', '-R', 'u+w', to]);
  return to;
}

/** Overwrite the 16-bit elements of tensor `name` in dir/model.safetensors with `fill(i)`. */
function patch16(dir: string, name: string, fill: (i: number) => number, count = Infinity) {
  const path = join(dir, 'model.safetensors');
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  const t = header[name];
  if (!t || (t.dtype !== 'BF16' && t.dtype !== 'F16')) throw new Error(`${name}: not a 16-bit tensor (${t?.dtype})`);
  const [begin, end] = t.data_offsets as [number, number];
  for (let i = 0; i < Math.min((end - begin) / 2, count); i++) b.writeUInt16LE(fill(i), 8 + n + begin + 2 * i);
  writeFileSync(path, b);
}

function editConfig(dir: string, f: (c: any) => void) {
  const p = join(dir, 'config.json');
  const c = JSON.parse(readFileSync(p, 'utf8'));
  f(c);
  writeFileSync(p, JSON.stringify(c));
}

test('scans find the first NaN / ±Inf in f32, bf16 and f16, aligned or not', () => {
  expect(firstNonFinite(new Float32Array([1, -2, 3.4e38, -0]))).toBe(-1);
  expect(firstNonFinite(new Float32Array([1, 2, NaN, Infinity]))).toBe(2);
  const big = new Float32Array(10_001); big[10_000] = -Infinity;
  expect(firstNonFinite(big)).toBe(10_000);
  const bf = new Uint16Array(9000).fill(0x7f7f);          // bf16 max finite
  expect(firstNonFinite16(bf, 'bf16')).toBe(-1);
  bf[8191] = 0xff80;                                      // -Inf
  expect(firstNonFinite16(bf, 'bf16')).toBe(8191);
  expect(firstNonFinite16(bf.subarray(1), 'bf16')).toBe(8190);
  bf[4] = 0x7fc1;                                         // NaN
  expect(firstNonFinite16(bf, 'bf16')).toBe(4);
  const h = new Uint16Array(7).fill(0x7bff);              // f16 max finite
  expect(firstNonFinite16(h, 'f16')).toBe(-1);
  h[6] = 0x7c00;
  expect(firstNonFinite16(h, 'f16')).toBe(6);
  expect(() => checkLogits(new Float32Array([0, 1, 2, 3, NaN, 5]), 3)).toThrow(/non-finite logit \(NaN for token 1 in row 1 of the step\)/);
  expect(() => checkLogits(new Float32Array([0, 1, 2]), 3)).not.toThrow();
});

describe.skipIf(!llama || !rwkv)('damaged checkpoints', () => {
  test('a NaN or Inf weight: one line naming the tensor, exit 1, nothing on stdout', () => {
    for (const [model, tensor, value] of [[llama!, 'model.layers.3.mlp.down_proj.weight', 0x7fc0], [rwkv!, 'model.layers.1.attn.r_proj.weight', 0xff80]] as const) {
      const dir = copy(model);
      patch16(dir, tensor, i => (i === 1234 ? value : 0x3f80), 1235);
      const r = fla('run', dir, 'In the beginning', '-n', '4', '--device', 'cpu');
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err.trim()).toBe(`error: ${dir}: tensor ${tensor} holds a non-finite value (NaN or ±Inf) at element 1234; the checkpoint is broken`);
    }
  });

  test('a negative norm eps or rope_theta ≤ 0 is refused at load', () => {
    const cases: [string, (c: any) => void, RegExp][] = [
      [llama!, c => { c.rms_norm_eps = -1e-6; }, /config field rms_norm_eps must be ≥ 0 \(a norm epsilon\), got -0\.000001/],
      [llama!, c => { c.rope_parameters.rope_theta = 0; }, /config field rope_theta must be > 0 \(the RoPE base\), got 0/],
      [llama!, c => { delete c.rope_parameters; c.rope_theta = -10000; }, /config field rope_theta must be > 0 \(the RoPE base\), got -10000/],
      [rwkv!, c => { c.norm_eps = -1e-5; }, /config field norm_eps must be ≥ 0/],
    ];
    for (const [model, edit, re] of cases) {
      const dir = copy(model);
      editConfig(dir, edit);
      expect(() => inspectModel(dir)).toThrow(re);
      const r = fla('run', dir, 'In the beginning', '-n', '2', '--device', 'cpu');
      expect(r.code).toBe(1);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(re);
    }
  });

  test('finite weights that overflow to Inf/NaN logits: run, ppl and the engine fail with one line', async () => {
    const dir = copy(llama!);
    patch16(dir, 'model.norm.weight', () => 0x7f7f);        // the largest finite bf16 value everywhere: logits overflow
    const engine = new Engine(loadWeights(inspectModel(dir), new CpuBackend()), 1, 64);
    await expect(engine.run([{ slot: engine.acquire(), tokens: [1, 2, 3] }])).rejects.toThrow(NonFiniteError);
    const r = fla('run', dir, 'In the beginning', '-n', '4', '-t', '0', '--device', 'cpu');
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n').at(-1)).toMatch(/^error: the model produced a non-finite logit \(((NaN|-?Infinity) for token \d+ in row 0|sequence 0) of the step\)/);   // greedy: the argmax op's flag (no token index)
    const text = join(dir, 'text.txt');
    writeFileSync(text, 'In the beginning God created the heaven and the earth. '.repeat(20));
    const p = fla('ppl', dir, '--text', text, '--window', '64', '--device', 'cpu', '--json');
    expect(p.code).toBe(1);
    expect(p.out).toBe('');
    expect(p.err).toMatch(/error: the model produced a non-finite logit/);
  });
});
