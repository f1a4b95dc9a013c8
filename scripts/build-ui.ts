/**
 * Builds the dashboard into dist/ui: src/dashboard/app.ts bundled (uPlot included) and minified
 * by esbuild, the page, and one stylesheet. Nothing is fetched at run time; the admin listener
 * serves these files at /ui/.
 */
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src/dashboard');
const out = join(root, 'dist/ui');
mkdirSync(out, { recursive: true });
await build({ entryPoints: [join(src, 'app.ts')], bundle: true, minify: true, format: 'esm', target: 'es2022', outfile: join(out, 'app.js'), legalComments: 'none', logLevel: 'warning' });
writeFileSync(join(out, 'app.css'), readFileSync(join(root, 'node_modules/uplot/dist/uPlot.min.css'), 'utf8') + '\n' + readFileSync(join(src, 'style.css'), 'utf8'));
copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
const gz = ['app.js', 'app.css', 'index.html'].reduce((n, f) => n + gzipSync(readFileSync(join(out, f))).length, 0);
process.stdout.write(`dashboard: dist/ui (${(gz / 1024).toFixed(1)} KB gzipped)\n`);
