// sdpa's tensor-core variant `flash_sgmat` (sdpa_sgmat.wgsl): its plan from the adapter's subgroup-matrix configs and
// workgroup memory, and the kernel with its `//@` lines filled (straight-line subgroup-matrix code for head dim D).
import { sgmatConfig } from '../../src/util/f16.ts';
import { kernel, type Adapter, type Kernel } from '../lib.ts';
import src from './sdpa_sgmat.wgsl' with { type: 'text' };

export const SGMAT_BINDINGS = ['step', 'stepmeta', 'q', 'kc', 'vc', 'out', 'dims'] as const;

/** NS subgroups (16 query rows each) a workgroup, BC keys a tile. */
export interface SgmatFlashPlan { NS: number; BC: number; BR: number }

/** Workgroup bytes of sdpa_sgmat.wgsl: th / tl (BR rows of D/8 + 1 slots), the staging block, P hi / lo. */
export function sgmatFlashBytes(D: number, NS: number, BC: number): number {
  const BR = 16 * NS;
  return 16 * (2 * BR * (D / 8 + 1) + BR * Math.max(BC, D) / 4 + 2 * BR * (BC / 8 + 1));
}

/**
 * The plan where the adapter runs f16 16×16×16 → f32 subgroup matrices on 32-lane subgroups (shader-f16 and
 * subgroups too), for head dims that are multiples of 16 up to 128: 4 subgroups (64 rows) where their tiles fit the
 * workgroup memory, else 2; key tiles of 32. null: not here (then `flash`).
 */
export function sgmatFlashPlan(ad: Adapter, D: number): SgmatFlashPlan | null {
  const m = sgmatConfig(ad.subgroupMatrix);
  if (!ad.f16 || !ad.subgroups || ad.subgroupSize !== 32 || !m || m.M !== 16 || m.N !== 16 || m.K !== 16) return null;
  if (D % 16 || D > 128) return null;
  const BC = 32;
  for (const NS of [4, 2]) if (sgmatFlashBytes(D, NS, BC) <= ad.maxWorkgroupStorage && 32 * NS <= ad.maxInvocations) return { NS, BC, BR: 16 * NS };
  return null;
}

const cache = new Map<string, Kernel>();

/** sdpa_sgmat.wgsl for head dim D and BC keys a tile. */
export function sgmatFlashKernel(D: number, BC: number): Kernel {
  const key = `${D},${BC}`;
  let k = cache.get(key);
  if (k) return k;
  const I = (n: number) => Array.from({ length: n }, (_, i) => i);
  const L = (type: string, arr: string, off: string, layout: string, stride: string) =>
    `subgroupMatrixLoad<subgroup_matrix_${type}<f16, 16, 16>, ${layout}>(&${arr}, ${off}, ${stride})`;
  const ZERO = 'subgroup_matrix_result<f32, 16, 16>()';
  const qload = I(D / 16).flatMap(kk => [
    `let q${kk}h = ${L('left', 'th', `16u * sg * RSL + ${2 * kk}u`, 'row_major', 'RSL')};`,
    `let q${kk}l = ${L('left', 'tl', `16u * sg * RSL + ${2 * kk}u`, 'row_major', 'RSL')};`,
  ]);
  // S = Q·Kᵀ: K tile rows are keys (n), slots dims (k): read column-major as the right matrix
  const scores = I(BC / 16).flatMap(nf => ['{', `  var acc = ${ZERO};`, ...I(D / 16).flatMap(kk => [
    `  let k${kk}h = ${L('right', 'th', `${16 * nf}u * RSL + ${2 * kk}u`, 'col_major', 'RSL')};`,
    `  let k${kk}l = ${L('right', 'tl', `${16 * nf}u * RSL + ${2 * kk}u`, 'col_major', 'RSL')};`,
    `  acc = subgroupMatrixMultiplyAccumulate(q${kk}h, k${kk}l, acc);`,
    `  acc = subgroupMatrixMultiplyAccumulate(q${kk}l, k${kk}h, acc);`,
    `  acc = subgroupMatrixMultiplyAccumulate(q${kk}h, k${kk}h, acc);`,
  ]), `  subgroupMatrixStore<row_major>(&st, sb + ${4 * nf}u, acc, SWS);`, '}']);
  // O part = P·V: P rows of this subgroup (left), V tile rows are keys (k), slots dims (n): row-major right
  const pv = [...I(BC / 16).flatMap(kf => [
    `let p${kf}h = ${L('left', 'ph', `pb + ${2 * kf}u`, 'row_major', 'PSL')};`,
    `let p${kf}l = ${L('left', 'pl', `pb + ${2 * kf}u`, 'row_major', 'PSL')};`,
  ]), ...I(D / 16).flatMap(nf => ['{', `  var acc = ${ZERO};`, ...I(BC / 16).flatMap(kf => [
    `  let v${kf}h = ${L('right', 'th', `${16 * kf}u * RSL + ${2 * nf}u`, 'row_major', 'RSL')};`,
    `  let v${kf}l = ${L('right', 'tl', `${16 * kf}u * RSL + ${2 * nf}u`, 'row_major', 'RSL')};`,
    `  acc = subgroupMatrixMultiplyAccumulate(p${kf}h, v${kf}l, acc);`,
    `  acc = subgroupMatrixMultiplyAccumulate(p${kf}l, v${kf}h, acc);`,
    `  acc = subgroupMatrixMultiplyAccumulate(p${kf}h, v${kf}h, acc);`,
  ]), `  subgroupMatrixStore<row_major>(&st, sb + ${4 * nf}u, acc, SWS);`, '}'])];
  const gen: Record<string, string[]> = { qload, scores, pv };
  const code = src.replace(/^(\s*)\/\/@ (\w+)\s*$/gm, (_, ind: string, name: string) => {
    const g = gen[name];
    if (!g) throw new Error(`sdpa_sgmat.wgsl: no generator for //@ ${name}`);
    return g.map(l => ind + l).join('\n');
  });
  k = kernel('sdpa_sgmat', code, SGMAT_BINDINGS);
  cache.set(key, k);
  return k;
}
