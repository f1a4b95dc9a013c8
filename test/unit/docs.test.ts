/**
 * What users read describes the product: no development-process words (issue numbers, work-log
 * history) in the docs, code comments, bench output or deployment files, and no reference to a
 * file the repository does not have.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';

/** What users read: files, and folders searched whole (bench/results holds saved bench output). */
const USER_FACING = ['README.md', 'SECURITY.md', 'Dockerfile', 'docs', 'src', 'bench', 'deploy', 'scripts', 'examples'];
const TEXT = /\.(md|ts|js|json|ya?ml|sh|txt)$|^Dockerfile$/;
const PROCESS_WORDS = /issue #\d+|\bthis stop\b|\b(previous|last|next) stop\b|\bstop's\b|\bDESIGN\.md\b|\breview pass\b|\b(previous|this|last) session\b|\bstart of (this )?session\b/i;

function filesOf(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, encoding: 'utf8' })
    .map((p) => join(path, p))
    .filter((p) => statSync(p).isFile() && TEXT.test(p.split('/').at(-1)!));
}

describe('user-facing text', () => {
  const files = USER_FACING.flatMap(filesOf);

  it('has no development-process words', () => {
    assert.ok(files.length > 100, `searched ${files.length} files`);
    const hits = files.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .flatMap((line, i) => (PROCESS_WORDS.test(line) ? [`${f}:${i + 1}: ${line.trim().slice(0, 120)}`] : [])),
    );
    assert.deepEqual(hits, []);
  });

  it('links only to files the repository has', () => {
    const missing: string[] = [];
    for (const f of files.filter((p) => p.endsWith('.md'))) {
      for (const [, target] of readFileSync(f, 'utf8').matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!) || target!.startsWith('#')) continue;
        const path = join(dirname(f), target!.split('#')[0]!);
        if (!existsSync(path)) missing.push(`${f}: ${target}`);
      }
    }
    assert.deepEqual(missing, []);
  });
});
