// The house rule "imports flow one way", checked on every relative import of src/, kernels/ and cli/.
// The layers, highest first; a file may import from its own package or from a layer below its own, never from a
// layer above it nor from another package of its own layer (serve and bench do not import each other):
//
//    0  cli/
//    1  src/serve/, src/bench/
//    2  src/runtime/      engine, generation, and model assembly (runtime/model.ts: model_type → arch → weights)
//    3  src/models/       one file per model_type, the registry
//    4  src/load/         files: safetensors, config.json fields, weight reader, hub download and cache
//    5  src/tokenizer/
//    6  kernels/          the ops
//    7  src/backend/
//    8  src/gpu/
//    9  src/util/
//   10  data, not code: models/ (the embedded model's files), package.json, node_modules/…/package.json, src/*.d.ts
//
// load sits below models (models read their weights through load/weights.ts and config.json through load/config.ts)
// and above the backend (the weight reader hands the backend host weights); picking the architecture for a
// model_type is assembly and lives in src/runtime/model.ts. A new folder must be given a layer here.
import { expect, test } from 'bun:test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = join(import.meta.dir, '../../..');

const LAYERS: string[][] = [
  ['cli'],
  ['src/serve', 'src/bench'],
  ['src/runtime'],
  ['src/models'],
  ['src/load'],
  ['src/tokenizer'],
  ['kernels'],
  ['src/backend'],
  ['src/gpu'],
  ['src/util'],
  ['models', 'package.json', 'node_modules', 'src/*.d.ts'],
];

/** The package of a repo-relative path: the longest entry of LAYERS it lies in. */
function packageOf(rel: string): string | null {
  let best: string | null = null;
  for (const p of LAYERS.flat()) {
    const hit = p === 'src/*.d.ts' ? /^src\/[^/]+\.d\.ts$/.test(rel) : rel === p || rel.startsWith(p + '/');
    if (hit && (best === null || p.length > best.length)) best = p;
  }
  return best;
}

const layerOf = (pkg: string) => LAYERS.findIndex(l => l.includes(pkg));

/** Every module specifier a TypeScript source imports or re-exports (static, side-effect, dynamic, require). */
export function importsOf(src: string): string[] {
  const out: string[] = [];
  const patterns = [
    /^[ \t]*(?:import|export)\s+(?:type\s+)?[\w\s{},*$]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^[ \t]*import\s*['"]([^'"]+)['"]/gm,
    /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of src.matchAll(re)) out.push(m[1]!);
  return out;
}

interface Edge { from: string; spec: string; to: string }

/** The imports that break the order (or that the order does not cover), one readable line each. */
export function violations(edges: Edge[]): string[] {
  const bad: string[] = [];
  for (const e of edges) {
    const a = packageOf(e.from), b = packageOf(e.to);
    if (a === null) { bad.push(`${e.from}: its folder has no layer in layering.test.ts`); continue; }
    if (b === null) { bad.push(`${e.from}: imports '${e.spec}' (${e.to}), which has no layer in layering.test.ts`); continue; }
    if (a === b) continue;
    const la = layerOf(a), lb = layerOf(b);
    if (lb <= la) bad.push(`${e.from}: imports '${e.spec}' — ${a} (layer ${la}) may not import ${b} (layer ${lb})`);
  }
  return bad;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|tsx|js|mjs)$/.test(f)) out.push(p);
  }
  return out;
}

function repoEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const top of ['src', 'kernels', 'cli']) for (const file of walk(join(ROOT, top))) {
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;            // node:, bun:, npm packages
      edges.push({ from: relative(ROOT, file), spec, to: relative(ROOT, resolve(dirname(file), spec)) });
    }
  }
  return edges;
}

test('the import parser sees every form of import', () => {
  const src = [
    "import { a, type B } from './a.ts';",
    'import type {\n  C,\n  D,\n} from "../c.ts";',
    "import * as e from './e.ts';",
    "import f from './f.json' with { type: 'json' };",
    "export { g } from './g.ts';",
    "export * from './h.ts';",
    "import './i.ts';",
    "const j = await import('./j.ts');",
    "const k = require('./k.node');",
    "const notAnImport = 'from \"./nope.ts\"';",
  ].join('\n');
  expect(importsOf(src)).toEqual(['./a.ts', '../c.ts', './e.ts', './f.json', './g.ts', './h.ts', './i.ts', './j.ts', './k.node']);
});

test('the check flags an upward import, a sibling import and an unplaced folder, and passes a downward one', () => {
  const v = violations([
    { from: 'src/load/hub.ts', spec: '../models/registry.ts', to: 'src/models/registry.ts' },
    { from: 'src/serve/http.ts', spec: '../bench/harness.ts', to: 'src/bench/harness.ts' },
    { from: 'src/newpkg/x.ts', spec: '../util/log.ts', to: 'src/util/log.ts' },
    { from: 'src/runtime/model.ts', spec: '../models/registry.ts', to: 'src/models/registry.ts' },
    { from: 'src/load/default_model.ts', spec: '../../models/kjv-rwkv7/config.json', to: 'models/kjv-rwkv7/config.json' },
    { from: 'kernels/lib.ts', spec: '../src/backend/op.ts', to: 'src/backend/op.ts' },
  ]);
  expect(v).toHaveLength(3);
  expect(v[0]).toContain('src/load (layer 4) may not import src/models (layer 3)');
  expect(v[1]).toContain('src/serve (layer 1) may not import src/bench (layer 1)');
  expect(v[2]).toContain('src/newpkg/x.ts: its folder has no layer');
});

test('imports in src/, kernels/ and cli/ flow one way', () => {
  const edges = repoEdges();
  // The walk found the code: a broken parser or path would pass vacuously.
  expect(edges.length).toBeGreaterThan(300);
  expect(edges.some(e => e.from === 'cli/main.ts')).toBe(true);
  expect(edges.some(e => e.from.startsWith('kernels/') && e.to.startsWith('src/backend/'))).toBe(true);
  expect(violations(edges)).toEqual([]);
});
