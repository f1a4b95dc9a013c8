/**
 * A private, fresh JavaScript build for benchmark children: `tsc` of the working tree's src/ (and
 * of the bench helpers that run as children) into a temp folder, so children run as plain
 * `node main.js`, as in production. tsx would add its loader and compile cache to every child's
 * memory (tens of MiB of RSS) and the repository's dist/ may be stale or rebuilt by someone else
 * while a benchmark runs. The temp folder gets a package.json (`"type": "module"`) and a
 * node_modules symlink to the checkout's, and is removed when this process exits.
 * Type errors (e.g. an unfinished edit in src/) do not stop the emit; they are counted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CliEntry } from './layout.js';

/** Build is a compiled copy of the gateway and of the given bench helpers. */
export interface Build {
  dir: string;
  cli: CliEntry;
  /** helper returns the node arguments that run a compiled bench helper, e.g. helper('node-floor'). */
  helper: (name: string) => string[];
  /** typeErrors is how many tsc errors the build reported (0 = clean). */
  typeErrors: number;
}

function countErrors(out: string): number {
  return (out.match(/error TS\d+/g) ?? []).length;
}

/** freshBuild compiles src/ and bench/<helpers>.ts into a temp folder (a few seconds). */
export function freshBuild(root: string, helpers: readonly string[] = []): Build {
  const dir = mkdtempSync(join(tmpdir(), 'igw-build-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  // The checkout's name and version too: `main.js --version` reads them from here.
  const { name, version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name, version, type: 'module' })}\n`);
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const a = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(dir, 'src'), '--sourceMap', 'false'], { encoding: 'utf8' });
  let typeErrors = countErrors(`${a.stdout}${a.stderr}`);
  const main = join(dir, 'src', 'main.js');
  if (!existsSync(main)) throw new Error(`tsc produced no main.js:\n${a.stdout}${a.stderr}`);
  if (helpers.length > 0) {
    const b = spawnSync(
      process.execPath,
      [
        tsc,
        '--outDir', join(dir, 'bench'),
        '--rootDir', join(root, 'bench'),
        '--module', 'nodenext',
        '--moduleResolution', 'nodenext',
        '--target', 'es2023',
        '--types', 'node',
        '--skipLibCheck',
        '--strict',
        ...helpers.map((h) => join(root, 'bench', `${h}.ts`)),
      ],
      { encoding: 'utf8' },
    );
    typeErrors += countErrors(`${b.stdout}${b.stderr}`);
  }
  let rev = '';
  const g = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (g.status === 0) rev = g.stdout.trim();
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).stdout?.trim() !== '';
  const label = `node <tmp>/src/main.js (fresh tsc build of src/ at ${rev}${dirty ? ' + uncommitted changes' : ''}${typeErrors > 0 ? `, ${typeErrors} type errors` : ''})`;
  return {
    dir,
    cli: { args: [main], label },
    helper: (name) => [join(dir, 'bench', `${name}.js`)],
    typeErrors,
  };
}

/** benchEntry picks how children run: BENCH_ENTRY=tsx uses tsx, anything else (default) a fresh build. */
export function benchEntry(root: string, helpers: readonly string[] = []): Build {
  if (process.env.BENCH_ENTRY === 'tsx') {
    return {
      dir: root,
      cli: { args: ['--import', 'tsx', join(root, 'src', 'main.ts')], label: 'node --import tsx src/main.ts' },
      helper: (name) => ['--import', 'tsx', join(root, 'bench', `${name}.ts`)],
      typeErrors: 0,
    };
  }
  return freshBuild(root, helpers);
}
