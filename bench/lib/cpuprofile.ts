/**
 * Reading V8 CPU profiles (`node --cpu-prof`, *.cpuprofile JSON): self time per function and per
 * code area (our src/ files, a dependency, Node internals, GC), optionally only for samples inside
 * given time windows. V8 stamps samples with the monotonic clock in microseconds, the clock
 * `process.hrtime` reads on Linux, so a benchmark can record its measured windows with
 * `monotonicMicros()` and keep just those samples (start-up and tsx compilation fall outside).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** monotonicMicros is now on the clock V8 profiles use (CLOCK_MONOTONIC), in microseconds. */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Window is a [start, end) interval in monotonic microseconds. */
export type Window = readonly [start: number, end: number];

/** ProfileSummary is where the sampled CPU time went. */
export interface ProfileSummary {
  /** sampledUs is the total sampled time inside the windows (idle excluded). */
  sampledUs: number;
  idleUs: number;
  /** bySelf: function label -> self time (us), descending. */
  bySelf: Array<[label: string, us: number]>;
  /** byInclusive: function label -> time with it anywhere on the stack (us), descending. */
  byInclusive: Array<[label: string, us: number]>;
  /** byArea: code area -> self time (us), descending. */
  byArea: Array<[area: string, us: number]>;
  /** isWindowed tells whether the windows matched samples (false: the whole profile was used). */
  isWindowed: boolean;
}

/** areaOf buckets a frame: src/<dir>/<file>, node_modules/<pkg>, node:internal/<area>, or a V8 pseudo-frame. */
export function areaOf(f: CallFrame): string {
  const u = f.url;
  if (u === '') return f.functionName.startsWith('(') ? f.functionName : '(native/builtin)';
  const nm = u.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = u.slice(nm + '/node_modules/'.length).split('/');
    return `node_modules/${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const src = u.indexOf('/src/');
  if (src !== -1) return u.slice(src + 1);
  if (u.startsWith('node:')) {
    const parts = u.slice('node:'.length).split('/');
    return `node:${parts.slice(0, Math.min(parts.length, 2)).join('/')}`;
  }
  return u;
}

function labelOf(f: CallFrame): string {
  const name = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (f.url === '') return name;
  const nm = f.url.lastIndexOf('/node_modules/');
  const src = f.url.indexOf('/src/');
  const file = nm !== -1 ? f.url.slice(nm + 1) : src !== -1 ? f.url.slice(src + 1) : f.url;
  return `${name} ${file}:${f.lineNumber + 1}`;
}

const sortDesc = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]);

/** summarizeProfile reads a .cpuprofile and sums sampled time, only inside `windows` when they match any sample. */
export function summarizeProfile(path: string, windows: readonly Window[] = []): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample i was taken at startTime + sum(timeDeltas[0..i]); it stands for the time until the next one.
  const times = new Float64Array(p.samples.length);
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    times[i] = t;
  }
  const inWindow = (ts: number): boolean => windows.some(([a, b]) => ts >= a && ts < b);
  const isWindowed = windows.length > 0 && Array.from(times).some(inWindow);

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const area = new Map<string, number>();
  let sampledUs = 0;
  let idleUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    if (isWindowed && !inWindow(times[i]!)) continue;
    const dt = i + 1 < p.samples.length ? times[i + 1]! - times[i]! : 0;
    if (dt <= 0) continue;
    const node = byId.get(p.samples[i]!);
    if (node === undefined) continue;
    if (node.callFrame.functionName === '(idle)') {
      idleUs += dt;
      continue;
    }
    sampledUs += dt;
    const label = labelOf(node.callFrame);
    self.set(label, (self.get(label) ?? 0) + dt);
    const a = areaOf(node.callFrame);
    area.set(a, (area.get(a) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (f.functionName === '(root)') break;
      const l = labelOf(f);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + dt);
    }
  }
  return { sampledUs, idleUs, bySelf: sortDesc(self), byInclusive: sortDesc(inclusive), byArea: sortDesc(area), isWindowed };
}
