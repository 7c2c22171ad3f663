// Download progress on stderr: a live bar per file on a terminal, one plain line per finished file otherwise.
import { log } from '../util/log.ts';

export interface Progress {
  start(label: string, total: number | null, from: number): void;
  update(bytes: number): void;
  done(): void;
  fail(): void;
}

/** SI units, rounded: whole bytes below 1 kB (999.6 B shows as 1.00 kB), else 3 significant digits. */
export function formatBytes(n: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  n = Math.round(n);
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${u[i]}`;
}

const clock = (s: number) => !Number.isFinite(s) ? '--:--' : `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

/** Writes to `out` (stderr); `tty` chooses the live bar. Silent when the log level is above info. */
export class StderrProgress implements Progress {
  private label = '';
  private total: number | null = null;
  private from = 0;
  private bytes = 0;
  private t0 = 0;
  private last = 0;
  private drawn = false;

  constructor(private readonly out: { write(s: string): unknown; columns?: number } = process.stderr,
    private readonly tty = !!process.stderr.isTTY, private readonly now = () => performance.now()) {}

  private get quiet() { return log.level === 'warn' || log.level === 'error' || log.level === 'silent'; }

  start(label: string, total: number | null, from: number) {
    Object.assign(this, { label, total, from, bytes: from, t0: this.now(), last: 0 });
    if (this.tty && !this.quiet) this.draw();
  }

  update(bytes: number) {
    this.bytes = bytes;
    const t = this.now();
    if (this.tty && !this.quiet && t - this.last > 100) { this.last = t; this.draw(); }
  }

  done() {
    if (this.quiet) return;
    const secs = (this.now() - this.t0) / 1000;
    if (this.tty) { this.draw(true); this.out.write('\n'); this.drawn = false; return; }
    const rate = secs > 0 ? ` at ${formatBytes((this.bytes - this.from) / secs)}/s` : '';
    this.out.write(`downloaded ${this.label} (${formatBytes(this.bytes)}${this.from ? `, resumed at ${formatBytes(this.from)}` : ''}) in ${secs.toFixed(1)} s${rate}\n`);
  }

  fail() { if (this.drawn) this.out.write('\n'); this.drawn = false; }

  /** The bar line, fitted into `cols` by shortening the label; `final` shows the elapsed time instead of the ETA. */
  line(cols = 200, final = false): string {
    const secs = Math.max((this.now() - this.t0) / 1000, 1e-3);
    const speed = (this.bytes - this.from) / secs;
    const size = this.total ? `${formatBytes(this.bytes)}/${formatBytes(this.total)}` : formatBytes(this.bytes);
    let tail = `  ${size}  ${formatBytes(speed)}/s`;
    if (this.total) {
      const frac = Math.min(this.bytes / this.total, 1);
      const width = 24, full = Math.round(frac * width);
      const eta = speed > 0 ? (this.total - this.bytes) / speed : Infinity;
      tail = ` [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}%${tail}  ${final ? `in ${clock(secs)}` : `ETA ${clock(eta)}`}`;
    }
    const room = cols - 1 - tail.length;
    const label = this.label.length <= room ? this.label : room > 1 ? `…${this.label.slice(this.label.length - room + 1)}` : '';
    return (label + tail).slice(0, cols - 1);
  }

  private draw(final = false) {
    this.out.write(`\r\x1b[K${this.line(this.out.columns ?? 100, final)}`);
    this.drawn = true;
  }
}
