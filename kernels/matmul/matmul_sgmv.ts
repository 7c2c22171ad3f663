// The decode GEMV on subgroup matrices (tensor cores) for f16 weights and a few rows: the matmul op's 'sgmv' variant
// and matmul_multi's (the RMSNorm in the prologue, SwiGLU in the epilogue, up to 3 parts in one dispatch). At 8 rows a
// 16-bit weight takes 16 FLOPs per 2 bytes, which holds the f32-FMA GEMVs (gemv_vec, matmul_multi fused) to the FMA
// peak, well under the bandwidth; the tensor cores multiply the f32-grade split (x = hi + lo, two f16 halves) at the
// speed the weights stream in. matmul_sgmv.wgsl has the arithmetic and the work split.
import type { SubgroupMatrixConfig } from '../../src/util/f16.ts';
import { sgmatByDefault } from '../../src/util/f16.ts';
import { grid } from '../../src/util/grid.ts';
import { knob } from '../../src/util/knobs.ts';
import { kernel, rowsOf, scratch, u32, type Ctx, type Kernel, type Launch, type ScratchSpec } from '../lib.ts';
import { ACT, type Act } from './matmul.ref.ts';
import type { MatmulArgs } from './matmul.ts';
import { F16_KERNELS } from './matmul_sgmat.ts';
import source from './matmul_sgmv.wgsl' with { type: 'text' };

/** Rows sgmv takes by default (rows past 16: sgmat's thin tiles). */
export const SGMV_MIN_ROWS = 5;
export const SGMV_MAX_ROWS = 16;

/**
 * Geometry: the config m (W the left matrix: m.M output rows × m.K; the rows the right one, m.N columns), RP rows a
 * block (8 or 16), NSG subgroups a workgroup splitting K in slices of KSG, OT output tiles a workgroup (MT matrices:
 * SwiGLU 2·OT, gate and up). WS (FLA_SGMV_WSTAGE=1): W through workgroup memory (16-byte loads into registers, then
 * a stage per subgroup, as x) instead of matrix loads straight from the storage buffer. PD: chunks of W loaded ahead
 * (FLA_SGMV_DEPTH; default 1; 2 holds a third set of W matrices in registers).
 */
export interface SgmvPlan { m: SubgroupMatrixConfig; RP: number; NSG: number; KSG: number; OT: number; MT: number; WS: boolean; PD: number }

/** Workgroup bytes: the stage (2·RP rows of KSG + 8 f16 a subgroup; WS: + MT·16 W rows), the result matrices, 1/s (twice) and Σx². */
export function sgmvBytes(m: SubgroupMatrixConfig, RP: number, NSG: number, KSG: number, MT: number, WS = false): number {
  return NSG * ((2 * RP + (WS ? MT * m.M : 0)) * (KSG / 8 + 1) * 16 + MT * (2 * RP / m.N) * m.M * m.N * 4 + 3 * RP * 4);
}

/**
 * The config sgmv multiplies with for RP rows: f16 × f16 → f32 with M 16 (the output tile), K a multiple of 16 and N
 * dividing 2·RP: N 8 at 8 rows where offered (16×8×16: the hi and lo halves one matrix each), else N 16
 * (FLA_SGMV_N forces one).
 */
export function sgmvConfig(configs: readonly SubgroupMatrixConfig[] | undefined, RP: number): SubgroupMatrixConfig | null {
  const want = Number(knob('FLA_SGMV_N') ?? (RP <= 8 ? 8 : 16));
  const ok = (configs ?? []).filter(c => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.K % 16 === 0 && (2 * RP) % c.N === 0 && c.N % 4 === 0);
  return ok.find(c => c.N === want) ?? ok.sort((a, b) => b.N - a.N)[0] ?? null;
}

/** The plan for R rows (≤ 16) of IN columns (swiglu: gate|up tile pairs); null where sgmv cannot run here. */
export function sgmvPlan(c: Ctx, R: number, IN: number, swiglu: boolean): SgmvPlan | null {
  const A = c.adapter, SG = A.subgroupSize ?? 0;
  if (!A.f16 || !SG || R < 1 || R > SGMV_MAX_ROWS || IN % 16 !== 0 || !A.features.has('chromium-experimental-subgroup-matrix')) return null;
  const RP = R <= 8 ? 8 : 16, m = sgmvConfig(A.subgroupMatrix, RP);
  if (!m || (m.M * m.N) % SG !== 0 || SG % RP !== 0) return null;
  // OT: output tiles a workgroup (FLA_SGMV_OT; default 1: a 2048-wide output is 128 workgroups)
  const OT = Number(knob('FLA_SGMV_OT') ?? 1), MT = swiglu ? 2 * OT : OT;
  const fNSG = knob('FLA_SGMV_SG'), fKSG = knob('FLA_SGMV_KSG'), WS = knob('FLA_SGMV_WSTAGE') !== '0';
  const PD = Math.min(WS ? 3 : 2, Number(knob('FLA_SGMV_DEPTH') ?? (WS ? 2 : 1)));
  if (WS && SG % m.M !== 0) return null;
  const cands: [number, number][] = [[8, 128], [8, 64], [4, 128], [4, 64], [2, 64], [1, 64]];
  for (const [NSG, KSG] of cands) {
    const nsg = Number(fNSG ?? NSG), ksg = Number(fKSG ?? KSG);
    if (ksg % m.K !== 0 || (ksg / 8) % (SG / RP) !== 0 || (WS && (ksg / 8) % (SG / m.M) !== 0)) continue;
    if (MT * (ksg / m.K) > 8) continue;   // W matrices a lane holds twice (this chunk's, the next one's): ≤ 16 of 4 registers
    if (nsg * SG > A.maxInvocations || sgmvBytes(m, RP, nsg, ksg, MT, WS) > A.maxWorkgroupStorage) continue;
    return { m, RP, NSG: nsg, KSG: ksg, OT, MT, WS, PD };
  }
  return null;
}

/**
 * Whether sgmv is the default for R rows here: only with FLA_SGMV=1 (then f16 weights at SGMV_MIN_ROWS..16 rows, unless
 * FLA_TENSOR_CORES=0). Off by default: H200 round 1 (2026-12-02, llama-1b b8, matrix loads straight from storage)
 * 1 878 / 1 886 t/s against 4 606 / 4 571 with the f32-FMA GEMVs.
 */
export function sgmvByDefault(R: number): boolean {
  return knob('FLA_SGMV') === '1' && sgmatByDefault() && R >= SGMV_MIN_ROWS && R <= SGMV_MAX_ROWS;
}

const sources = new Map<string, Kernel>();
const MULTI_BINDINGS = ['step', 'x', 'gn', 'W0', 'W1', 'W2', 'y0', 'y1', 'y2', 'dims'] as const;
const SINGLE_BINDINGS = ['step', 'x', 'W', 'bias', 'y', 'dims'] as const;

/** matmul_sgmv.wgsl with its `//@ NAME` lines filled for plan p (straight-line code: every matrix a named value). */
export function sgmvKernel(p: SgmvPlan, SG: number, multi: boolean, swiglu: boolean): Kernel {
  const key = `${p.m.M}x${p.m.N}x${p.m.K},${p.RP},${p.NSG},${p.KSG},${p.OT},${p.MT},${p.WS},${p.PD},${SG},${multi},${swiglu}`;
  let k = sources.get(key);
  if (k) return k;
  const { m, RP, KSG, OT, MT, WS, PD } = p, LPW = SG / m.M, WQ = KSG / 8 / LPW, LPR = SG / RP, KS = KSG / 8, XQ = KS / LPR, NF = 2 * RP / m.N, MN = m.M * m.N, MQ = MN / SG, NKK = KSG / m.K;
  const I = (n: number) => Array.from({ length: n }, (_, i) => i);
  const LEFT = 'subgroup_matrix_left<f16, SM_K, SM_M>', RIGHT = 'subgroup_matrix_right<f16, SM_N, SM_K>', RESULT = 'subgroup_matrix_result<f32, SM_N, SM_M>';
  const part = (mt: number) => swiglu ? `${mt < OT ? 0 : 1}u` : 'p';
  const tile = (mt: number) => swiglu ? mt % OT : mt;
  const woff = (mt: number, kk: number, kb: string) => `wo${mt} + min(${kb} + ${kk * m.K}u, IN - SM_K) / 8u`;
  const mats = I(MT).flatMap(mt => I(NF).map(f => [mt, f] as const));
  const bindings = multi ? [
    '@group(0) @binding(0) var<uniform> step: Step;',
    '@group(0) @binding(1) var<storage, read> x: array<vec4f>;          // [R, IN]',
    '@group(0) @binding(2) var<storage, read> gn: array<vec4f>;         // [IN] (dummy without NORM)',
    ...I(3).map(i => `@group(0) @binding(${3 + i}) var<storage, read> W${i}: array<vec4<u32>>;   // [OUT_${i}, IN] f16 (dummy past NP)`),
    ...I(3).map(i => `@group(0) @binding(${6 + i}) var<storage, read_write> y${i}: array<f32>;   // [R, OUT_${i}]`),
    '@group(0) @binding(9) var<uniform> dims: array<vec4u, 3>;',
  ] : [
    '@group(0) @binding(0) var<uniform> step: Step;',
    '@group(0) @binding(1) var<storage, read> x: array<vec4f>;          // [R, IN]',
    '@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;      // [OUT, IN] f16',
    '@group(0) @binding(3) var<storage, read> bias: array<f32>;         // [OUT] (dummy without HAS_BIAS)',
    '@group(0) @binding(4) var<storage, read_write> y: array<f32>;      // [R, OUT]',
    '@group(0) @binding(5) var<uniform> dims: array<vec4u, 3>;',
  ];
  const load = (W: string) => `subgroupMatrixLoad<${LEFT}, row_major>(&${W}, off, S)`;
  const helpers = multi ? [
    `fn wfrag(p: u32, off: u32, S: u32) -> ${LEFT} {`,
    `  if (p == 1u) { return ${load('W1')}; }`,
    `  if (p == 2u) { return ${load('W2')}; }`,
    `  return ${load('W0')};`,
    '}',
    'fn gnSlot(k: u32, IN: u32) -> mat2x4<f32> {',
    '  var v = mat2x4<f32>();',
    '  if (k < IN) { v[0] = gn[k / 4u]; v[1] = gn[k / 4u + 1u]; }',
    '  return v;',
    '}',
    'fn act_code(code: u32, v: f32) -> f32 {',
    '  if (code == 1u) { return tanh_stable(v); }',
    '  if (code == 2u) { return sigmoid(v); }',
    '  if (code == 3u) { let r = max(v, 0.0); return r * r; }',
    '  if (code == 4u) { return -0.6065306597126334 * sigmoid(v); }',
    '  return v;',
    '}',
    'fn part_act(p: u32, v: f32) -> f32 {',
    '  if (p == 0u) { return act_code(ACT0, v); }',
    '  if (p == 1u) { return act_code(ACT1, v); }',
    '  return act_code(ACT2, v);',
    '}',
    'fn yload(p: u32, i: u32) -> f32 {',
    '  if (p == 0u) { return y0[i]; }',
    '  if (p == 1u) { return y1[i]; }',
    '  return y2[i];',
    '}',
    'fn ystore(p: u32, i: u32, v: f32) {',
    '  if (p == 0u) { y0[i] = v; } else if (p == 1u) { y1[i] = v; } else { y2[i] = v; }',
    '}',
  ] : [`fn wfrag(p: u32, off: u32, S: u32) -> ${LEFT} { return ${load('W')}; }`];
  // WS: W[row, k .. k + 8) of part p (b = row·U), zero from IN on, and each subgroup's W stage (MT·SM_M rows of KP slots)
  if (WS) helpers.push(
    'fn wget(p: u32, b: u32, k: u32, IN: u32) -> vec4<u32> {',
    '  if (k >= IN) { return vec4<u32>(0u); }',
    ...(multi ? ['  if (p == 1u) { return W1[b + k / 8u]; }', '  if (p == 2u) { return W2[b + k / 8u]; }', '  return W0[b + k / 8u];'] : ['  return W[b + k / 8u];']),
    '}',
    `var<workgroup> wsm: array<vec4<u32>, NSG * ${MT * m.M}u * KP>;`,
  );
  const decl = [
    ...I(OT).map(t => `let ot${t} = min(o0 + ${t * m.M}u, OUT - SM_M);`),
    ...I(MT).map(mt => `let wo${mt} = ot${tile(mt)} * U;`),
    ...mats.flatMap(([mt, f]) => [`var acc${mt}_${f}: ${RESULT};`, `var s${mt}_${f}: array<f32, MQ>;`]),
    ...(WS ? [`let wr = lane / ${LPW}u;`, `let wj = lane % ${LPW}u;`, `let wsb = sg * ${MT * m.M}u * KP;`]
      : I(MT).flatMap(mt => I(NKK).flatMap(kk => [`var n${mt}_${kk}: ${LEFT};`, ...(PD > 1 ? [`var m${mt}_${kk}: ${LEFT};`] : [])]))),
    ...(multi ? ['var ss = 0.0;'] : []),
  ];
  // chunk 0's W matrices and x slots; in each chunk the next one's, loaded while this one is staged and multiplied
  const xload = (q: number, kb: string) => `xSlot(xb, ${kb} + ${q * LPR * 8}u + 8u * j, IN)`;
  // WS: lane wr·LPW + wj stages slots wj, wj + LPW, … of W row wr of each tile
  const wsload = (mt: number, q: number, kb: string) => `wget(${part(mt)}, wo${mt} + wr * U, ${kb} + ${q * LPW * 8}u + 8u * wj, IN)`;
  // WS: PD chunks of W slots and x slots in registers (set d: chunk c + d; a chunk past the slice loads nothing, kof)
  const kd = (d: number, c: string) => `kof(${c} + ${d}u, NCH, sg, IN)`;
  const wfirst = WS ? [
    ...I(PD).flatMap(d => [...I(MT).flatMap(mt => I(WQ).map(q => `var pw${d}_${mt}_${q} = ${wsload(mt, q, kd(d, 'clo'))};`)),
      ...I(XQ).map(q => `var x${d}_${q} = ${xload(q, kd(d, 'clo'))};`)]),
  ] : [
    ...I(MT).flatMap(mt => I(NKK).map(kk => `var w${mt}_${kk} = wfrag(${part(mt)}, ${woff(mt, kk, 'k0')}, U);`)),
    ...I(XQ).map(q => `var x0_${q} = ${xload(q, 'k0')};`),
    // PD 2: chunk 1's W too
    ...(PD > 1 ? ['if (clo + 1u < NCH) {', ...I(MT).flatMap(mt => I(NKK).map(kk => `  n${mt}_${kk} = wfrag(${part(mt)}, ${woff(mt, kk, 'k0 + KC')}, U);`)), '}'] : []),
  ];
  const wnext = WS ? [
    ...I(XQ).map(q => `var v${q} = x0_${q};`),
    ...I(MT).flatMap(mt => I(WQ).map(q => `let cw${mt}_${q} = pw0_${mt}_${q};`)),
    ...I(PD - 1).flatMap(d => [...I(MT).flatMap(mt => I(WQ).map(q => `pw${d}_${mt}_${q} = pw${d + 1}_${mt}_${q};`)), ...I(XQ).map(q => `x${d}_${q} = x${d + 1}_${q};`)]),
    ...I(MT).flatMap(mt => I(WQ).map(q => `pw${PD - 1}_${mt}_${q} = ${wsload(mt, q, kd(PD, 'c'))};`)),
    ...I(XQ).map(q => `x${PD - 1}_${q} = ${xload(q, kd(PD, 'c'))};`),
  ] : [
    ...I(XQ).map(q => `var v${q} = x0_${q};`),
    'if (c + 1u < NCH) {',
    ...(PD > 1 ? [] : I(MT).flatMap(mt => I(NKK).map(kk => `  n${mt}_${kk} = wfrag(${part(mt)}, ${woff(mt, kk, 'kn')}, U);`))),
    ...I(XQ).map(q => `  x0_${q} = ${xload(q, 'kn')};`),
    '}',
    ...(PD > 1 ? ['if (c + 2u < NCH) {', ...I(MT).flatMap(mt => I(NKK).map(kk => `  m${mt}_${kk} = wfrag(${part(mt)}, ${woff(mt, kk, 'kn + KC')}, U);`)), '}'] : []),
  ];
  const stage = [
    ...(multi ? ['if (NORM) {', ...I(XQ).flatMap(q => [
      `  let g${q} = gnSlot(k0 + ${q * LPR * 8}u + 8u * j, IN);`,
      `  ss += dot(v${q}[0], v${q}[0]) + dot(v${q}[1], v${q}[1]);`,
      `  v${q} = mat2x4<f32>(v${q}[0] * g${q}[0], v${q}[1] * g${q}[1]);`]), '}'] : []),
    `var mx = ${I(XQ).map(q => `absMax(v${q})`).reduce((a, b) => `max(${a}, ${b})`)};`,
    ...I(Math.log2(LPR)).map(l => `mx = max(mx, subgroupShuffleXor(mx, ${1 << l}u));`),
    'let sc = rowScale(mx);',
    'if (j == 0u) { isc[ib + r] = 1.0 / sc; }',
    ...I(XQ).flatMap(q => ['{', `  let hl = splitX(v${q}, sc);`, `  xs[sb + r * KP + ${q * LPR}u + j] = hl[0];`, `  xs[sb + (RP + r) * KP + ${q * LPR}u + j] = hl[1];`, '}']),
    ...(WS ? I(MT).flatMap(mt => I(WQ).map(q => `wsm[wsb + (${mt * m.M}u + wr) * KP + ${q * LPW}u + wj] = cw${mt}_${q};`)) : []),
  ];
  const mma = I(NKK).flatMap(kk => ['{',
    ...I(NF).map(f => `  let b${f} = subgroupMatrixLoad<${RIGHT}, col_major>(&xs, sb + ${f * m.N}u * KP + ${kk * m.K / 8}u, KP);`),
    ...(WS ? I(MT).map(mt => `  let a${mt} = subgroupMatrixLoad<${LEFT}, row_major>(&wsm, wsb + ${mt * m.M}u * KP + ${kk * m.K / 8}u, KP);`) : []),
    ...mats.map(([mt, f]) => `  acc${mt}_${f} = subgroupMatrixMultiplyAccumulate(${WS ? `a${mt}` : `w${mt}_${kk}`}, b${f}, acc${mt}_${f});`),
    '}']);
  const roff = (mt: number, f: number) => `sg * RSG + ${(mt * NF + f) * MN}u`;
  const flush = mats.map(([mt, f]) => `subgroupMatrixStore<row_major>(&res, ${roff(mt, f)}, acc${mt}_${f}, SM_N);`);
  // element e = lane + q·SG of a result matrix: its column e % SM_N, virtual column f·SM_N + that, row of the block (… % RP)
  const sums = [
    ...mats.flatMap(([mt, f]) => I(MQ).map(q => `s${mt}_${f}[${q}] += res[${roff(mt, f)} + lane + ${q * SG}u] * isc[ib + (${f * m.N}u + (lane + ${q * SG}u) % SM_N) % RP];`)),
    ...mats.map(([mt, f]) => `acc${mt}_${f} = ${RESULT}();`),
  ];
  const wshift = WS ? [] : I(MT).flatMap(mt => I(NKK).flatMap(kk => [`w${mt}_${kk} = n${mt}_${kk};`, ...(PD > 1 ? [`n${mt}_${kk} = m${mt}_${kk};`] : [])]));
  const final = [
    ...mats.flatMap(([mt, f]) => I(MQ).map(q => `res[${roff(mt, f)} + lane + ${q * SG}u] = s${mt}_${f}[${q}];`)),
    ...(multi ? [...I(Math.log2(LPR)).map(l => `ss += subgroupShuffleXor(ss, ${1 << l}u);`), 'if (j == 0u) { ssw[sg * RP + r] = ss; }'] : []),
  ];
  // one item a (tile, row of the block, tile row): consecutive threads along the output (16 consecutive columns of y)
  const NI = (swiglu ? OT : MT) * m.M * RP;
  const epilogue = [
    `for (var i = tid; i < ${NI}u; i += NT) {`,
    '  let tm = i % SM_M;',
    '  let rr = (i / SM_M) % RP;',
    '  let t = i / (SM_M * RP);',
    '  let row = row0 + rr;',
    '  let ou = o0 + t * SM_M;',
    '  let o = min(ou, OUT - SM_M) + tm;',
    '  if (row < rows && o >= ou) {',
    '    var v = total(t, rr, tm);',
    ...(multi ? [
      '    var kn = 1.0;',
      '    if (NORM) { kn = inverseSqrt(ssum(rr) / f32(IN) + bitcast<f32>(dims[0].y)); }',
      '    v *= kn;',
      '    if (SWIGLU) {',
      `      let u = total(${OT}u + t, rr, tm) * kn;`,
      '      y0[row * OUT + o] = v * sigmoid(v) * u;',
      '    } else {',
      '      v = part_act(p, v);',
      '      if (ACCUM) { v += yload(p, row * OUT + o); }',
      '      ystore(p, row * OUT + o, v);',
      '    }',
    ] : [
      '    if (SPLITK) {',
      '      y[g3.z * step.cap * OUT + row * OUT + o] = v;',
      '    } else {',
      '      if (HAS_BIAS) { v += bias[o]; }',
      '      v = act(v);',
      '      if (ACCUM) { v += y[row * OUT + o]; }',
      '      y[row * OUT + o] = v;',
      '    }',
    ]),
    '  }',
    '}',
  ];
  const gen: Record<string, string[]> = { bindings, helpers, decl, wfirst, wnext, stage, mma, flush, sums, wshift, final, epilogue };
  const src = source.replace(/^(\s*)\/\/@ (\w+)\s*$/gm, (_, ind: string, name: string) => {
    const g = gen[name];
    if (!g) throw new Error(`matmul_sgmv.wgsl: no generator for //@ ${name}`);
    return g.map(l => ind + l).join('\n');
  });
  k = kernel('matmul_sgmv', src, multi ? MULTI_BINDINGS : SINGLE_BINDINGS);
  sources.set(key, k);
  return k;
}

/** Workgroups a part of OUT outputs takes: OT tiles of 16 each. */
const wgsOf = (OUT: number, p: SgmvPlan) => Math.ceil(Math.ceil(OUT / p.m.M) / p.OT);

/** The defines of a plan (every generation parameter: pipelines are cached by label and defines). */
function planDefines(p: SgmvPlan, SG: number, rowsK: boolean, accumulate: boolean): Record<string, number | boolean> {
  return { SM_M: p.m.M, SM_N: p.m.N, SM_K: p.m.K, SG, NSG: p.NSG, KSG: p.KSG, RP: p.RP, MT: p.MT, OT: p.OT, WS: p.WS, PD: p.PD, ROWS_K: rowsK, ACCUM: accumulate };
}

/** Whether the matmul op's sgmv runs a's shape here: f16 weights, IN % 16 == 0, OUT ≥ 16, ≤ 16 rows, a plan. */
export function sgmvSupports(a: MatmulArgs, c: Ctx): boolean {
  if (a.w?.dtype !== 'f16') return false;   // (select is also asked about args without a weight)
  const [OUT, IN] = a.w.shape as [number, number];
  return OUT >= 16 && sgmvPlan(c, rowsOf(a.x, c), IN, false) !== null;
}

/** Workgroups that fill the H200's 132 multiprocessors twice: the target of the K slices (SPLITK) of narrow outputs. */
export const SGMV_SPLITK_TARGET = 264;

/**
 * K slices of the matmul op's sgmv (rows n only): FLA_SGMV_SPLITK, else 1 where the outputs give ≥ 132 workgroups,
 * else enough for SGMV_SPLITK_TARGET (a 2048-wide output is 128), at most the chunks, evened so none is empty.
 */
export function sgmvSplitK(p: SgmvPlan, OUT: number, IN: number, rowsN: boolean): number {
  if (!rowsN) return 1;
  const NCH = Math.ceil(IN / (p.NSG * p.KSG)), wgs = wgsOf(OUT, p), forced = knob('FLA_SGMV_SPLITK');
  const want = Math.min(NCH, forced ? Number(forced) : wgs >= 132 ? 1 : Math.ceil(SGMV_SPLITK_TARGET / wgs));
  const per = Math.ceil(NCH / Math.max(1, want));
  return Math.ceil(NCH / per);
}

const partName = (OUT: number, sk: number) => `sgmvpart${sk}x${OUT}`;

/** The matmul op's sgmv scratch: the K slices' partial sums where it splits K. */
export function sgmvScratch(a: MatmulArgs, c: Ctx): Record<string, ScratchSpec> {
  if (!sgmvSupports(a, c)) return {};
  const [OUT, IN] = a.w.shape as [number, number], p = sgmvPlan(c, rowsOf(a.x, c), IN, false)!, sk = sgmvSplitK(p, OUT, IN, a.x.rows === 'n');
  return sk > 1 ? { [partName(OUT, sk)]: { cols: OUT, planes: sk, rows: 'n' } } : {};
}

/** The matmul op's launches: y (+)= act(x·Wᵀ + bias); with K slices, their sums into a scratch, then matmul_sgmat_reduce. */
export function sgmvLaunches(a: MatmulArgs, c: Ctx): Launch[] {
  const [OUT, IN] = a.w.shape as [number, number], R = rowsOf(a.x, c), SG = c.adapter.subgroupSize!;
  const p = sgmvPlan(c, R, IN, false)!, sk = sgmvSplitK(p, OUT, IN, a.x.rows === 'n'), part = scratch(partName(OUT, sk));
  const gemv: Launch = {
    kernel: sgmvKernel(p, SG, false, false), grid: [...grid(wgsOf(OUT, p)).slice(0, 2), sk] as [number, number, number],
    defines: { ...planDefines(p, SG, a.x.rows === 'k', a.accumulate), MULTI: false, NP: 1, NORM: false, SWIGLU: false, ACT: ACT[a.act], HAS_BIAS: a.bias !== null,
      ACT0: 0, ACT1: 0, ACT2: 0, SPLITK: sk > 1 },
    bind: { x: a.x, W: a.w, bias: a.bias, y: sk > 1 ? part : a.y, dims: u32(IN, 0, 0, 0, OUT, 0, 0, 0, 0, 0, 0, 0) },
    cost: { flops: 2 * R * IN * OUT, bytes: 2 * OUT * IN + 4 * R * (IN + OUT * sk) },
  };
  if (sk === 1) return [gemv];
  const reduce: Launch = {
    kernel: F16_KERNELS.reduce, grid: [Math.ceil(OUT / 256), R, 1],
    defines: { ACT: ACT[a.act], HAS_BIAS: a.bias !== null, ACCUM: a.accumulate, ROWS_K: false, SCALED: true },
    bind: { part, xq: a.x, bias: a.bias, y: a.y, dims: u32(OUT, 0, sk) }, cost: { flops: 0, bytes: 4 * R * OUT * (sk + 1) },
  };
  return [gemv, reduce];
}

/** matmul_multi's launch: parts' outputs (SwiGLU: y0 = silu(gate)·up), the RMSNorm (weight gn, eps) in the prologue. */
export function sgmvMultiLaunch(c: Ctx, R: number, IN: number, outs: number[], acts: Act[], bind: Launch['bind'], norm: { eps: number } | null,
  swiglu: boolean, accumulate: boolean, rowsK: boolean): Launch {
  const SG = c.adapter.subgroupSize!, p = sgmvPlan(c, R, IN, swiglu)!;
  const wgs = swiglu ? [wgsOf(outs[0]!, p)] : outs.map(o => wgsOf(o, p));
  const starts = [wgs[0]!, wgs[0]! + (wgs[1] ?? 0)];
  const eps = new Uint32Array(new Float32Array([norm?.eps ?? 0]).buffer)[0]!;
  const total = swiglu ? 2 * outs[0]! : outs.reduce((s, o) => s + o, 0);
  return {
    kernel: sgmvKernel(p, SG, true, swiglu), grid: [...grid(wgs.reduce((s, v) => s + v, 0)).slice(0, 2), 1] as [number, number, number],
    defines: { ...planDefines(p, SG, rowsK, accumulate), MULTI: true, NP: outs.length, NORM: norm !== null, SWIGLU: swiglu, ACT: 0, HAS_BIAS: false, SPLITK: false,
      ACT0: ACT[acts[0] ?? 'none'], ACT1: ACT[acts[1] ?? 'none'], ACT2: ACT[acts[2] ?? 'none'] },
    bind: { ...bind, dims: u32(IN, eps, 0, 0, outs[0]!, outs[1] ?? 0, outs[2] ?? 0, 0, starts[0]!, starts[1]!, 0, 0) },
    cost: { flops: 2 * R * IN * total, bytes: 2 * total * IN + 4 * R * (IN + total) },
  };
}
