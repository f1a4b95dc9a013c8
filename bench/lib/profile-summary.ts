/**
 * Where a V8 CPU profile (`node --cpu-prof`, *.cpuprofile) spent its time: self time per function
 * and per code area (src/<dir>/<file>, node_modules/<pkg>, node:<internal area>, V8 pseudo-frames),
 * optionally only for samples inside given windows of the monotonic clock (which V8 stamps samples
 * with, in µs: record windows with monotonicMicros() around the measured runs).
 */
import { readFileSync } from 'node:fs';

interface Frame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: Frame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** monotonicMicros is now on the clock V8 profiles use, in µs. */
export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);

/** Window is a [start, end) interval in monotonic µs. */
export type Window = readonly [number, number];

/** Summary: sampled (non-idle) µs, and self time by function label and by area, descending. */
export interface Summary {
  sampledUs: number;
  bySelf: Array<[string, number]>;
  byArea: Array<[string, number]>;
  byInclusive: Array<[string, number]>;
  isWindowed: boolean;
}

/** areaOf buckets a frame by where its code lives. */
export function areaOf(f: Frame): string {
  const u = f.url;
  if (u === '') return f.functionName.startsWith('(') ? f.functionName : '(native/builtin)';
  const nm = u.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const p = u.slice(nm + 14).split('/');
    return `node_modules/${p[0]!.startsWith('@') ? `${p[0]}/${p[1]}` : p[0]}`;
  }
  const src = u.indexOf('/src/');
  if (src !== -1) return u.slice(src + 1);
  if (u.startsWith('node:')) return `node:${u.slice(5).split('/').slice(0, 2).join('/')}`;
  return u;
}

function labelOf(f: Frame): string {
  const name = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (f.url === '') return name;
  const nm = f.url.lastIndexOf('/node_modules/');
  const src = f.url.indexOf('/src/');
  const file = nm !== -1 ? f.url.slice(nm + 1) : src !== -1 ? f.url.slice(src + 1) : f.url;
  return `${name} ${file}:${f.lineNumber + 1}`;
}

/** summarize reads a .cpuprofile; with windows that match samples, only those samples count. */
export function summarize(path: string, windows: readonly Window[] = []): Summary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const times: number[] = [];
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) times.push((t += p.timeDeltas[i] ?? 0));
  const inWindow = (ts: number): boolean => windows.some(([a, b]) => ts >= a && ts < b);
  const isWindowed = windows.length > 0 && times.some(inWindow);
  const self = new Map<string, number>();
  const area = new Map<string, number>();
  const incl = new Map<string, number>();
  let sampledUs = 0;
  for (let i = 0; i + 1 < p.samples.length; i++) {
    if (isWindowed && !inWindow(times[i]!)) continue;
    const dt = times[i + 1]! - times[i]!;
    const node = byId.get(p.samples[i]!);
    if (dt <= 0 || node === undefined || node.callFrame.functionName === '(idle)') continue;
    sampledUs += dt;
    const l = labelOf(node.callFrame);
    self.set(l, (self.get(l) ?? 0) + dt);
    const a = areaOf(node.callFrame);
    area.set(a, (area.get(a) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (f.functionName === '(root)') break;
      const fl = labelOf(f);
      if (!seen.has(fl)) {
        seen.add(fl);
        incl.set(fl, (incl.get(fl) ?? 0) + dt);
      }
    }
  }
  const desc = (m: Map<string, number>): Array<[string, number]> => [...m].sort((x, y) => y[1] - x[1]);
  return { sampledUs, bySelf: desc(self), byArea: desc(area), byInclusive: desc(incl), isWindowed };
}
