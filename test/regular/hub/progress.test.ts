// Download progress lines: a live bar (bytes, percent, speed, ETA) on a terminal, one plain line per file otherwise.
import { afterEach, expect, test } from 'bun:test';
import { formatBytes, StderrProgress } from '../../../src/load/progress.ts';
import { log } from '../../../src/util/log.ts';

const before = log.level;
afterEach(() => log.setLevel(before));

function fake(tty: boolean) {
  let t = 0;
  const out = { text: '', columns: 200, write(s: string) { this.text += s; } };
  return { out, p: new StderrProgress(out, tty, () => t), tick: (ms: number) => { t += ms; } };
}

test('terminal: a bar redrawn in place with percent, bytes, speed and ETA, ended by a newline', () => {
  log.setLevel('info');
  const { out, p, tick } = fake(true);
  p.start('org/name/model.safetensors', 10_000_000, 0);
  tick(1000);
  p.update(2_500_000);
  expect(p.line()).toBe('org/name/model.safetensors [######..................]  25%  2.50 MB/10.0 MB  2.50 MB/s  ETA 0:03');
  expect(p.line(90)).toBe('…/model.safetensors [######..................]  25%  2.50 MB/10.0 MB  2.50 MB/s  ETA 0:03');
  expect(p.line(90).length).toBe(89);
  tick(3000);
  p.update(10_000_000);
  p.done();
  expect(out.text.startsWith('\r\x1b[K')).toBe(true);
  expect(out.text).toContain(' 100%  10.0 MB/10.0 MB  2.50 MB/s  in 0:04\n');
  expect(out.text.endsWith('\n')).toBe(true);
  expect(out.text.split('\n')).toHaveLength(2);
});

test('not a terminal: exactly one line per file, with size, resume point and speed', () => {
  log.setLevel('info');
  const { out, p, tick } = fake(false);
  p.start('org/name/model.safetensors', 4_000_000, 1_000_000);
  for (let i = 2; i <= 4; i++) { tick(500); p.update(i * 1_000_000); }
  p.done();
  expect(out.text).toBe('downloaded org/name/model.safetensors (4.00 MB, resumed at 1.00 MB) in 1.5 s at 2.00 MB/s\n');
});

test('quiet below info; sizes in SI units', () => {
  log.setLevel('warn');
  const { out, p } = fake(true);
  p.start('x', 10, 0); p.update(10); p.done();
  expect(out.text).toBe('');
  expect([formatBytes(999), formatBytes(1500), formatBytes(1_631_080), formatBytes(7.3e9)]).toEqual(['999 B', '1.50 kB', '1.63 MB', '7.30 GB']);
});

test('rates and sizes are rounded: no long fractions of bytes per second', () => {
  log.setLevel('info');
  const { out, p, tick } = fake(false);
  p.start('org/name/config.json', 700, 0);
  tick(3000); p.update(700);
  p.done();
  expect(out.text).toBe('downloaded org/name/config.json (700 B) in 3.0 s at 233 B/s\n');
  expect([formatBytes(233.33333), formatBytes(0.5), formatBytes(999.6)]).toEqual(['233 B', '1 B', '1.00 kB']);
  const bar = fake(true);
  bar.p.start('x', 1000, 0); bar.tick(3000); bar.p.update(100);
  expect(bar.p.line(200)).toContain(' 33 B/s');
});
