// The tiny WGSL preprocessor: a prelude of `const` defines, `#if NAME` / `#else` / `#endif`, `#include "x"` (the
// files a kernel may include are passed in: kernels/ registers its own, see kernels/lib.ts), and `#unroll I N` …
// `#endunroll`: the lines between repeated N times (N a define's value or a number), `{I}` in them replaced by
// 0 … N−1 (a fully unrolled loop whose array indices are constants: registers, not local memory).

export interface Features { f16: boolean; subgroups: boolean }

/**
 * Defines become `const NAME = value;` lines (numbers: u32 if integer, else f32; booleans: bool)
 * and are visible to `#if`. SUBGROUPS / F16 are set from the adapter unless given; HAS_STEPMETA is true when the
 * source declares a `stepmeta` binding.
 */
export function preprocess(source: string, defines: Record<string, number | boolean | string>, feat: Features,
  includes: Readonly<Record<string, string>> = {}): string {
  // HAS_STEPMETA: the kernel binds the step metadata, so common.wgsl's cursor() and friends may read it
  const env: Record<string, number | boolean | string> = {
    SUBGROUPS: feat.subgroups, F16: feat.f16, HAS_STEPMETA: /var<storage[^>]*>\s*stepmeta\b/.test(source), ...defines,
  };
  const lines = expandUnroll(expandIncludes(source, includes).split('\n'), env);
  const out: string[] = [];
  const stack: { active: boolean; taken: boolean }[] = [];
  const active = () => stack.every(s => s.active);
  for (const line of lines) {
    const t = line.trim();
    let m: RegExpMatchArray | null;
    if ((m = t.match(/^#if\s+(!?)(\w+)\s*$/))) {
      const v = truthy(env[m[2]!]);
      const on = m[1] ? !v : v;
      stack.push({ active: on, taken: on });
    } else if (t === '#else') {
      const top = stack.at(-1);
      if (!top) throw new Error('#else without #if');
      top.active = !top.taken;
    } else if (t === '#endif') {
      if (!stack.pop()) throw new Error('#endif without #if');
    } else if (active()) out.push(line);
  }
  if (stack.length) throw new Error('#if without #endif');
  const prelude: string[] = [];
  if (truthy(env.SUBGROUPS) && /subgroup\w*\(/.test(out.join('\n'))) prelude.push('enable subgroups;');
  if (truthy(env.F16) && /\bf16\b/.test(out.join('\n'))) prelude.push('enable f16;');
  if (/\bsubgroupMatrix\w*[(<]/.test(out.join('\n'))) prelude.push('enable chromium_experimental_subgroup_matrix;');
  for (const [k, v] of Object.entries(defines)) {
    if (typeof v === 'boolean') prelude.push(`const ${k}: bool = ${v};`);
    else if (typeof v === 'number') prelude.push(Number.isInteger(v) && v >= 0 ? `const ${k}: u32 = ${v}u;` : `const ${k}: f32 = ${v};`);
  }
  return [...prelude, ...out].join('\n');
}

function expandUnroll(lines: string[], env: Record<string, number | boolean | string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = lines[i]!.trim().match(/^#unroll\s+(\w+)\s+(\w+)\s*$/);
    if (!m) { out.push(lines[i]!); continue; }
    const end = lines.findIndex((l, j) => j > i && l.trim() === '#endunroll');
    if (end < 0) throw new Error('#unroll without #endunroll');
    const n = /^\d+$/.test(m[2]!) ? Number(m[2]) : env[m[2]!];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 256) throw new Error(`#unroll ${m[1]} ${m[2]}: the count must be a define or number in 0..256 (got ${String(n)})`);
    const body = lines.slice(i + 1, end), key = `{${m[1]}}`;
    for (let v = 0; v < n; v++) for (const l of body) out.push(l.split(key).join(String(v)));
    i = end;
  }
  return out;
}

function truthy(v: unknown): boolean {
  return v !== undefined && v !== false && v !== 0 && v !== '' && v !== '0';
}

function expandIncludes(src: string, includes: Readonly<Record<string, string>>, depth = 0): string {
  if (depth > 4) throw new Error('#include nested too deep');
  return src.replace(/^\s*#include\s+"([^"]+)"\s*$/gm, (_, name: string) => {
    const inc = includes[name];
    if (inc === undefined) throw new Error(`#include "${name}": unknown file (known: ${Object.keys(includes).join(', ') || 'none'})`);
    return expandIncludes(inc, includes, depth + 1);
  });
}

/** The `@binding(i) var… name` declarations of (preprocessed) WGSL, as names in binding order; gaps are errors. */
export function bindingNames(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/@binding\((\d+)\)\s*var(?:<[^>]*>)?\s+(\w+)/g)) {
    const i = Number(m[1]);
    if (out[i] !== undefined) throw new Error(`@binding(${i}) declared twice (${out[i]}, ${m[2]})`);
    out[i] = m[2]!;
  }
  for (let i = 0; i < out.length; i++) if (out[i] === undefined) throw new Error(`@binding(${i}) missing (bindings ${out.join(', ')})`);
  return out;
}
