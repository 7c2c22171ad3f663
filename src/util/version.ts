// fla's version and the commit it was built from (injected by `npm run build`, else read from git).
import pkg from '../../package.json' with { type: 'json' };

declare const FLA_COMMIT: string | undefined;

export function commit(): string {
  if (typeof FLA_COMMIT === 'string' && FLA_COMMIT) return FLA_COMMIT;
  if (process.env.FLA_COMMIT) return process.env.FLA_COMMIT;   // a checkout copied without .git (GPU runs)
  try {
    const p = Bun.spawnSync(['git', 'rev-parse', '--short=12', 'HEAD'], { cwd: import.meta.dir, stderr: 'ignore' });
    const s = p.stdout.toString().trim();
    if (p.exitCode === 0 && s) return s;
  } catch { /* no git */ }
  return 'unknown';
}

export const VERSION: string = pkg.version;
export const versionLine = () => `fla ${VERSION} (commit ${commit()}, bun ${Bun.version}, ${process.platform}-${process.arch})`;
