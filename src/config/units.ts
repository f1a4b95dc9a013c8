import type { ListenAddress } from '../http/index.js';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_BYTES: Record<string, number> = { B: 1, KB: 1e3, KiB: 1024, MB: 1e6, MiB: 1024 ** 2, GB: 1e9, GiB: 1024 ** 3 };

/** toMs turns a schema-checked duration (ms number or "5s") into milliseconds. */
export function toMs(v: number | string | undefined, fallbackMs: number): number {
  if (v === undefined) return fallbackMs;
  if (typeof v === 'number') return v;
  const m = DURATION.exec(v);
  return m ? Math.round(Number(m[1]) * DURATION_MS[m[2]!]!) : fallbackMs;
}

/** toBytes turns a schema-checked size (bytes or "32MiB") into bytes. */
export function toBytes(v: number | string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  const m = SIZE.exec(v);
  return m ? Math.floor(Number(m[1]) * SIZE_BYTES[m[2]!]!) : fallback;
}

/** parseListen parses a schema-checked "host:port" (IPv6 in brackets). */
export function parseListen(v: string): ListenAddress {
  const i = v.lastIndexOf(':');
  let host = v.slice(0, i);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host, port: Number(v.slice(i + 1)) };
}
