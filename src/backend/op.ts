// The op contract. An op (kernels/<family>/<op>.ts) is a declaration: its named variants (each a list of WGSL
// launches with named bindings, defines and a grid, plus the scratch it needs), `select` (which variant for this
// adapter and step), `ref` (the CPU reference) and `check` (argument validation). A backend runs ops
// (`Backend.run(op, args)`): the GPU backend selects, compiles, binds by name and records the launches; the CPU
// backend calls `ref` on host arrays. Nothing here knows any particular op, and ops know no particular backend.
import type { SubgroupMatrixConfig } from '../util/f16.ts';
import type { Cursor, StepLayout } from '../util/step.ts';
import type { Tensor, Weight } from './backend.ts';

export type { Cursor, StepLayout };

export type Defines = Record<string, number | boolean>;
export interface Cost { flops: number; bytes: number }

/**
 * One WGSL file. `name` is its entry point (and its label in errors and profiles); `bindings` lists its
 * `@binding(i) var … <name>` names in binding order (tests check them against the file). Bindings named `step`
 * and `stepmeta` are the step uniform and the per-step u32 metadata buffer: the backend binds those itself.
 */
export interface Kernel { readonly name: string; readonly source: string; readonly bindings: readonly string[] }

export function kernel(name: string, source: string, bindings: readonly string[]): Kernel {
  return { name, source, bindings };
}

/** A small uniform of constants (dims); `u32(…)` / `f32(…)` build one. Shared by launches with equal values. */
export interface Uniform { readonly uniform: Uint32Array | Float32Array }
export const u32 = (...v: number[]): Uniform => ({ uniform: Uint32Array.from(v) });
export const f32 = (...v: number[]): Uniform => ({ uniform: Float32Array.from(v) });
export const uniformOf = (data: Uint32Array | Float32Array): Uniform => ({ uniform: data });

/** Per-step scratch declared by the variant (`Variant.scratch`), referenced from a launch's bindings by key. */
export interface ScratchRef { readonly scratch: string }
export const scratch = (key: string): ScratchRef => ({ scratch: key });

/** What a binding is bound to; null: an absent optional input (a 16-byte placeholder). */
export type Resource = Tensor | Weight | Uniform | ScratchRef | null;

/** One dispatch of a variant. `bind` names every binding of the kernel except `step` and `stepmeta`. */
export interface Launch {
  kernel: Kernel;
  defines?: Defines;
  bind: Record<string, Resource>;
  grid: [number, number, number];
  /** FLOPs and bytes moved (fla bench's per-kernel roofline) */
  cost?: Cost;
}

/** What a variant may depend on about the device (the GPU backend's adapter; the CPU backend describes itself). */
export interface Adapter {
  kind: 'gpu' | 'cpu';
  /** 'discrete' | 'integrated' | 'cpu' (lavapipe, SwiftShader: a CPU running the shaders) | … */
  type: string;
  f16: boolean;
  subgroups: boolean;
  subgroupSize: number;
  maxInvocations: number;
  maxWorkgroupStorage: number;
  maxBinding: number;
  features: ReadonlySet<string>;
  /** subgroup-matrix shapes the device runs (absent or empty: none) */
  subgroupMatrix?: readonly SubgroupMatrixConfig[];
}

/** The current step's shape: tokens n, kept rows k, sequences b, and each sequence's token count. */
export interface StepShape {
  n: number; k: number; b: number;
  lens: readonly number[];
  /** longest sequence of the step (a decode step of 65 sequences has maxLen 1) */
  maxLen: number;
  cursors: readonly Cursor[];
}

export interface Ctx { adapter: Adapter; step: StepShape }

export function stepShape(l: StepLayout): StepShape {
  const lens = l.cursors.map(c => c.len);
  return { n: l.ids.length, k: l.keep.length, b: l.cursors.length, lens, maxLen: lens.reduce((a, b) => Math.max(a, b), 0), cursors: l.cursors };
}

/**
 * The rule of the chunked recurrent ops (delta_rule, gla): chunk when some sequence of the step is longer than
 * one chunk, on GPU adapters. A CPU adapter (lavapipe) runs each sequence's recurrence at full speed already:
 * GLA's chunked prefill measured 1.4–2× slower there, 1.38× faster on an H200 (BENCHMARKS.md).
 */
export function chunked(c: Ctx, chunk: number): boolean {
  return c.step.maxLen > chunk && c.adapter.type !== 'cpu';
}

/** Rows of the step a tensor with rows 'n' or 'k' has live. */
export function rowsOf(t: Tensor, c: Ctx): number { return t.rows === 'k' ? c.step.k : c.step.n; }

/** A per-step scratch tensor: `planes` × (step rows) × `cols` f32. */
export interface ScratchSpec { cols: number; planes?: number; rows?: 'n' | 'k' }

export interface Variant<A> {
  /** false: cannot run these arguments on this adapter (a forced choice then falls back to `select`). */
  supports?(a: A, c: Ctx): boolean;
  /** Scratch the launches bind (`scratch('key')`); the backend allocates it per step. */
  scratch?(a: A, c: Ctx): Record<string, ScratchSpec>;
  launches(a: A, c: Ctx): Launch[];
}

/** What a reference sees on the CPU backend: every tensor and weight as f32 host arrays. */
export interface Host {
  data(t: Tensor | Weight): Float32Array;
  /** capacity rows of a tensor (its plane stride is capacity × cols) */
  cap(t: Tensor): number;
  step: StepLayout;
}

export interface Op<A> {
  /** snake_case; `FLA_KERNEL_<NAME>` forces a variant */
  name: string;
  variants: Record<string, Variant<A>>;
  /** The variant for this adapter and step (called with args already checked). */
  select(c: Ctx, a: A): string;
  /** Validate the arguments (shapes); throws ShapeError. Both backends call it first. */
  check?(a: A): void;
  /** The CPU reference (kernels/…/<op>.ref.ts) on host arrays. */
  ref(a: A, h: Host): void;
  /** `#include "name"` files the kernels may use. */
  includes?: Readonly<Record<string, string>>;
}

export function defineOp<A>(op: Op<A>): Op<A> { return op; }

/** The single variant of an op without choices. */
export const ONLY = 'default';
export function only<A>(): (c: Ctx, a: A) => string { return () => ONLY; }
