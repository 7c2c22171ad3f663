// FLA_GUARD_BUFFERS=1 (tests only): every storage and uniform buffer the Gpu makes gets a trailing canary region
// filled with a pattern, bindings that end at the buffer's end reach through the canary (range() says why), and each
// readback first checks that every live canary is intact: a kernel that writes past the end of any buffer makes the
// next read throw, naming the buffer. A read past the end returns the pattern (a NaN as f32, as either f16 half and
// as the high bf16 half; a huge u32), which spoils whatever it feeds. It works the same with robustness on or off
// and on either binding. docs/bounds.md says what it does and does not catch.
import { GpuError } from '../util/errors.ts';

/** The canary word: f32 quiet NaN 0x7fc1_7e01, its 16-bit halves f16 NaNs (0x7fc1 also a bf16 NaN). */
export const CANARY_WORD = 0x7fc17e01;
const MIN_CANARY = 256;
const MAX_CANARY = 4 << 10;

interface Guard { ref: WeakRef<GPUBuffer>; label: string; logical: number; canary: number; dead: boolean }

export class BufferGuards {
  private list: Guard[] = [];
  private byBuffer = new WeakMap<GPUBuffer, Guard>();

  /** `maxBinding`: the adapter's storage binding limit (a view already that long cannot reach into its canary) */
  constructor(private readonly device: GPUDevice, private readonly maxBinding: number) {}

  /**
   * Canary bytes for a buffer of `logical` bytes: an eighth of it, within 256 B .. 4 KiB (every readback reads them all
   * back; an overrun longer than that lands in the next buffer's memory, most likely in its canary).
   */
  static canaryBytes(logical: number): number { return Math.min(MAX_CANARY, Math.max(MIN_CANARY, Math.ceil(logical / 128) * 16)); }

  /** Create a guarded buffer: `logical` bytes (a multiple of 16) that kernels may use, then the canary. */
  create(logical: number, label: string, usage: number): GPUBuffer {
    const canary = BufferGuards.canaryBytes(logical);
    const buf = this.device.createBuffer({ size: logical + canary, usage: usage | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label });
    this.device.queue.writeBuffer(buf, logical, pattern(canary));
    const g: Guard = { ref: new WeakRef(buf), label, logical, canary, dead: false };
    const destroy = buf.destroy;
    (buf as any).destroy = function (this: GPUBuffer) { g.dead = true; return destroy.call(this); };
    this.list.push(g);
    this.byBuffer.set(buf, g);
    return buf;
  }

  /** The size kernels may use of `buf` (its logical size), or undefined for a buffer not made here. */
  logicalSize(buf: GPUBuffer): number | undefined { return this.byBuffer.get(buf)?.logical; }

  /**
   * The size to bind for a view of `buf` from `offset` (`size` undefined: to the end). A view that ends at the buffer's
   * logical end is bound through its canary, so that an access past the end stays inside the binding — no
   * robustness (Tint's clamping, the driver's robustBufferAccess, lavapipe's own bounds checks) can then hide it — and
   * lands in the canary. No kernel reads arrayLength(), so a longer binding changes nothing a correct kernel does.
   * A view ending before the logical end (a plane of a multi-plane tensor) keeps its size: its overrun would land in
   * the next plane, which no canary covers (docs/bounds.md). A view reaching into the canary is an error.
   */
  range(buf: GPUBuffer, offset: number, size: number | undefined, what: string): number | undefined {
    const g = this.byBuffer.get(buf);
    if (!g) return size;
    const end = size === undefined ? g.logical : offset + size;
    if (end > g.logical) throw new GpuError(`FLA_GUARD_BUFFERS: ${what} binds ${offset}..${end} of '${g.label}', which holds ${g.logical} bytes`);
    return end === g.logical && g.logical + g.canary - offset <= this.maxBinding ? g.logical + g.canary - offset : size;
  }

  /** Check every live canary (after the work submitted so far); a changed one throws, naming buffer and offset. */
  async check(): Promise<void> {
    this.list = this.list.filter(g => !g.dead && g.ref.deref() !== undefined);
    const live = this.list.map(g => ({ g, buf: g.ref.deref()! }));
    if (!live.length) return;
    const total = live.reduce((a, l) => a + l.g.canary, 0);
    const staging = this.device.createBuffer({ size: total, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'guard check' });
    const enc = this.device.createCommandEncoder();
    let off = 0;
    for (const { g, buf } of live) { enc.copyBufferToBuffer(buf, g.logical, staging, off, g.canary); off += g.canary; }
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const words = new Uint32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    const bad: string[] = [];
    off = 0;
    for (const { g, buf } of live) {
      const w0 = off / 4, n = g.canary / 4;
      let first = -1, last = -1, value = 0;
      for (let i = 0; i < n; i++) if (words[w0 + i] !== CANARY_WORD) { if (first < 0) { first = i; value = words[w0 + i]!; } last = i; }
      if (first >= 0) {
        bad.push(`'${g.label}' (${g.logical} bytes): written past its end at +${4 * first}..+${4 * last + 4} bytes (first word 0x${value.toString(16).padStart(8, '0')})`);
        this.device.queue.writeBuffer(buf, g.logical, pattern(g.canary));   // re-arm, so that one bug is reported once
      }
      off += g.canary;
    }
    if (bad.length) throw new GpuError(`FLA_GUARD_BUFFERS: out-of-bounds write: ${bad.slice(0, 4).join('; ')}${bad.length > 4 ? `; and ${bad.length - 4} more` : ''}`);
  }
}

function pattern(bytes: number): Uint32Array { return new Uint32Array(bytes / 4).fill(CANARY_WORD); }
