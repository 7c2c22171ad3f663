// scripts/apt_backports.sh on fake /etc/apt trees: it never edits an existing source, adds its own file only
// when no source names bookworm-backports, and takes the mirror and keyring of the existing bookworm source.
import { describe, expect, test } from 'bun:test';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SCRIPT = join(import.meta.dir, '../../../scripts/apt_backports.sh');
const OURS = 'sources.list.d/fla-bookworm-backports.sources';

const STOCK_DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

/** Lays out files (path relative to the apt dir → text), runs the script, returns its output and the tree after. */
function run(files: Record<string, string>) {
  const apt = mkdtempSync(join(tmpdir(), 'fla-apt-'));
  mkdirSync(join(apt, 'sources.list.d'));
  for (const [p, text] of Object.entries(files)) writeFileSync(join(apt, p), text);
  const p = Bun.spawnSync(['bash', SCRIPT, apt]);
  const after: Record<string, string> = {};
  if (readdirSync(apt).includes('sources.list')) after['sources.list'] = readFileSync(join(apt, 'sources.list'), 'utf8');
  for (const f of readdirSync(join(apt, 'sources.list.d'))) after[`sources.list.d/${f}`] = readFileSync(join(apt, 'sources.list.d', f), 'utf8');
  return { code: p.exitCode, out: p.stdout.toString().trim(), err: p.stderr.toString(), after };
}

function expectUnchanged(files: Record<string, string>, after: Record<string, string>) {
  for (const [p, text] of Object.entries(files)) expect(after[p]).toBe(text);
}

describe('scripts/apt_backports.sh', () => {
  test('stock deb822 Debian 12 (bookworm bookworm-updates): adds its own file, leaves debian.sources as it was', () => {
    const files = { 'sources.list.d/debian.sources': STOCK_DEB822 };
    const r = run(files);
    expect(r.code).toBe(0);
    expect(r.out).toStartWith('added ');
    expectUnchanged(files, r.after);
    expect(r.after[OURS]).toBe(
      'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n' +
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    );
  });

  test('deb822 that already has bookworm-backports: writes nothing', () => {
    const files = { 'sources.list.d/debian.sources': STOCK_DEB822.replace('bookworm bookworm-updates', 'bookworm bookworm-updates bookworm-backports') };
    const r = run(files);
    expect(r.out).toBe('present');
    expect(Object.keys(r.after)).toEqual(Object.keys(files));
  });

  test('a deb822 backports stanza with Enabled: no does not count', () => {
    const files = {
      'sources.list.d/debian.sources': STOCK_DEB822,
      'sources.list.d/bp.sources': 'Types: deb\nURIs: http://x/debian\nSuites: bookworm-backports\nComponents: main\nEnabled: no\n',
    };
    const r = run(files);
    expect(r.out).toStartWith('added ');
    expectUnchanged(files, r.after);
  });

  test('one-line sources.list with a local mirror: the new file uses that mirror; sources.list untouched', () => {
    const files = { 'sources.list': '# mirror\ndeb http://mirror.local/debian bookworm main contrib\ndeb http://mirror.local/debian bookworm-updates main\n' };
    const r = run(files);
    expect(r.out).toStartWith('added ');
    expectUnchanged(files, r.after);
    expect(r.after[OURS]).toContain('URIs: http://mirror.local/debian\n');
    expect(r.after[OURS]).toContain('Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n');
  });

  test('one-line entry with [signed-by=…] options: keyring and URI taken from it', () => {
    const files = { 'sources.list': 'deb [arch=amd64 signed-by=/etc/keys/deb.gpg] https://m.example/debian bookworm main\n' };
    const r = run(files);
    expect(r.after[OURS]).toContain('URIs: https://m.example/debian\n');
    expect(r.after[OURS]).toContain('Signed-By: /etc/keys/deb.gpg\n');
  });

  test('one-line backports already present (sources.list.d/*.list): writes nothing; a commented line does not count', () => {
    const present = { 'sources.list': 'deb http://deb.debian.org/debian bookworm main\n', 'sources.list.d/bp.list': 'deb http://deb.debian.org/debian bookworm-backports main\n' };
    expect(run(present).out).toBe('present');
    const commented = { 'sources.list': 'deb http://deb.debian.org/debian bookworm main\n# deb http://deb.debian.org/debian bookworm-backports main\n' };
    const r = run(commented);
    expect(r.out).toStartWith('added ');
    expectUnchanged(commented, r.after);
  });

  test('no source at all: deb.debian.org with the archive keyring; a second run finds it present', () => {
    const r = run({});
    expect(r.after[OURS]).toContain('URIs: http://deb.debian.org/debian\n');
    const apt = r.out.replace(/^added /, '').replace(`/${OURS}`, '');
    const again = Bun.spawnSync(['bash', SCRIPT, apt]);
    expect(again.stdout.toString().trim()).toBe('present');
  });
});
