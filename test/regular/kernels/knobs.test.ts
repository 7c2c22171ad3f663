// The FLA_* knob table (src/util/knobs.ts): values are validated with a one-line UsageError naming the knob and what
// it allows, unknown FLA_KERNEL_* names are refused, and README.md documents every knob of the table.
import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../../src/util/errors.ts';
import { checkKnobs, KNOBS, knob } from '../../../src/util/knobs.ts';

test('valid values pass, unset and empty read as undefined', () => {
  expect(knob('FLA_KERNEL_MATMUL', { FLA_KERNEL_MATMUL: 'gemm' })).toBe('gemm');
  expect(knob('FLA_KERNEL_MATMUL', {})).toBeUndefined();
  expect(knob('FLA_KERNEL_MATMUL', { FLA_KERNEL_MATMUL: '' })).toBeUndefined();
  expect(knob('FLA_DELTA_CHUNK_BV', { FLA_DELTA_CHUNK_BV: '16' })).toBe('16');
  expect(() => checkKnobs({ FLA_KERNEL_GLA: 'chunk', FLA_NO_REPLAY: '1', FLA_LOG: 'debug', PATH: '/bin' })).not.toThrow();
});

test('a bad value is a UsageError naming the knob and the allowed values', () => {
  const bad = (name: string, value: string, msg: string) => {
    let err: unknown = null;
    try { checkKnobs({ [name]: value }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(msg);
  };
  bad('FLA_KERNEL_MATMUL', 'fast', `FLA_KERNEL_MATMUL=fast: expected one of ${KNOBS.FLA_KERNEL_MATMUL!.values!.join(', ')}`);
  expect(KNOBS.FLA_KERNEL_MATMUL!.values).toContain('gemm');
  bad('FLA_KERNEL_DELTA_RULE', 'chunked', 'FLA_KERNEL_DELTA_RULE=chunked: expected one of fused_sg, fused, recurrent, chunk');
  bad('FLA_DELTA_CHUNK_BV', '12', 'FLA_DELTA_CHUNK_BV=12: expected a power of two in 4..64');
  bad('FLA_DELTA_CHUNK_BV', 'x', 'FLA_DELTA_CHUNK_BV=x: expected a power of two in 4..64');
  bad('FLA_NO_REPLAY', 'yes', 'FLA_NO_REPLAY=yes: expected one of 0, 1');
  const kernelKnobs = Object.keys(KNOBS).filter(k => k.startsWith('FLA_KERNEL_'));
  expect(kernelKnobs).toContain('FLA_KERNEL_DELTA_RULE');
  bad('FLA_KERNEL_DELTA', 'chunk', `FLA_KERNEL_DELTA: unknown knob (known: ${kernelKnobs.join(', ')})`);
});

test('README.md documents every knob', () => {
  const readme = readFileSync(join(import.meta.dir, '../../../README.md'), 'utf8');
  for (const [name, k] of Object.entries(KNOBS)) {
    const row = readme.split('\n').find(l => l.startsWith(`| \`${name}\``));
    expect(row, name).toBeDefined();
    for (const v of k.values ?? []) expect(row!, `${name} ${v}`).toContain(`\`${v}\``);
  }
});
