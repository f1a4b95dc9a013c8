/**
 * parseVllmMetrics reads the load of a vLLM server from its Prometheus text exposition
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). It runs every poll interval
 * for every target, over a page of a few hundred lines mostly made of histogram buckets, so it
 * makes one pass with indexOf and startsWith: no split, no regex, and a substring only for the
 * value of a line it keeps. It never throws: a line it cannot read is skipped.
 */
import type { LoadSample, LoraSample } from './target-state.js';

const WAITING = 'vllm:num_requests_waiting';
const RUNNING = 'vllm:num_requests_running';
const KV_USAGE = 'vllm:kv_cache_usage_perc';
/** The older name of KV_USAGE, deprecated in vllm-project/vllm#18354; older servers send only this one. */
const GPU_KV_USAGE = 'vllm:gpu_cache_usage_perc';
// vLLM's V1 engine counts prefix-cache lookups and hits in prompt tokens; the Python client adds
// _total to a counter's name on the wire. The gpu_ names are their deprecated forms (older servers).
const PREFIX_QUERIES = 'vllm:prefix_cache_queries_total';
const PREFIX_HITS = 'vllm:prefix_cache_hits_total';
const GPU_PREFIX_QUERIES = 'vllm:gpu_prefix_cache_queries_total';
const GPU_PREFIX_HITS = 'vllm:gpu_prefix_cache_hits_total';
/** SUCCESS counts finished requests, one line per finished_reason; summed. */
const SUCCESS = 'vllm:request_success_total';
/** LORA_INFO's labels name the adapters of running and waiting requests; its value is the sample's time (the newest line wins). */
const LORA_INFO = 'vllm:lora_requests_info';

const NONE = 0;
const IS_WAITING = 1;
const IS_RUNNING = 2;
const IS_KV = 3;
const IS_GPU_KV = 4;
const IS_QUERIES = 5;
const IS_HITS = 6;
const IS_GPU_QUERIES = 7;
const IS_GPU_HITS = 8;
const IS_LORA = 9;
const IS_SUCCESS = 10;

const CHAR_V = 0x76;
const CHAR_SPACE = 0x20;
const CHAR_TAB = 0x09;
const CHAR_CR = 0x0d;
const CHAR_LBRACE = 0x7b;
const CHAR_RBRACE = 0x7d;
const CHAR_QUOTE = 0x22;
const CHAR_BACKSLASH = 0x5c;

/**
 * parseVllmMetrics sums waiting and running requests over every label set (models, engines), takes the highest
 * KV-cache usage, sums the finished-request counter and the prefix-cache counters and, given the previous sample of the same target, turns their
 * deltas into the hit rate of the last completed window. It returns null when the text has neither request gauge.
 */
export function parseVllmMetrics(text: string, nowMs: number, previous: LoadSample | null = null): LoadSample | null {
  if (typeof text !== 'string') return null;
  let waiting = 0;
  let running = 0;
  let hasWaiting = false;
  let hasRunning = false;
  let kv = -1;
  let gpuKv = -1;
  // Sums of the prefix-cache counters; -1 = the page has none.
  let queries = -1;
  let hits = -1;
  let gpuQueries = -1;
  let gpuHits = -1;
  let done = -1;
  let loraAt = -1;
  let loraLine = '';
  const len = text.length;
  let pos = 0;
  while (pos < len) {
    let end = text.indexOf('\n', pos);
    if (end === -1) end = len;
    let s = pos;
    pos = end + 1;
    while (s < end && isBlank(text.charCodeAt(s))) s++;
    // Comments (# HELP, # TYPE, # EOF) and every non-vllm metric are rejected on one character.
    if (text.charCodeAt(s) !== CHAR_V) continue;
    let kind = NONE;
    let nameEnd = s;
    if (isName(text, s, end, WAITING)) (kind = IS_WAITING), (nameEnd = s + WAITING.length);
    else if (isName(text, s, end, RUNNING)) (kind = IS_RUNNING), (nameEnd = s + RUNNING.length);
    else if (isName(text, s, end, KV_USAGE)) (kind = IS_KV), (nameEnd = s + KV_USAGE.length);
    else if (isName(text, s, end, GPU_KV_USAGE)) (kind = IS_GPU_KV), (nameEnd = s + GPU_KV_USAGE.length);
    else if (isName(text, s, end, PREFIX_QUERIES)) (kind = IS_QUERIES), (nameEnd = s + PREFIX_QUERIES.length);
    else if (isName(text, s, end, PREFIX_HITS)) (kind = IS_HITS), (nameEnd = s + PREFIX_HITS.length);
    else if (isName(text, s, end, GPU_PREFIX_QUERIES)) (kind = IS_GPU_QUERIES), (nameEnd = s + GPU_PREFIX_QUERIES.length);
    else if (isName(text, s, end, GPU_PREFIX_HITS)) (kind = IS_GPU_HITS), (nameEnd = s + GPU_PREFIX_HITS.length);
    else if (isName(text, s, end, LORA_INFO)) (kind = IS_LORA), (nameEnd = s + LORA_INFO.length);
    else if (isName(text, s, end, SUCCESS)) (kind = IS_SUCCESS), (nameEnd = s + SUCCESS.length);
    if (kind === NONE) continue;
    const v = valueAfterName(text, nameEnd, end);
    // NaN, ±Inf and negative gauges say nothing usable about load.
    if (!(v >= 0) || v === Infinity) continue;
    switch (kind) {
      case IS_WAITING:
        waiting += v;
        hasWaiting = true;
        break;
      case IS_RUNNING:
        running += v;
        hasRunning = true;
        break;
      case IS_KV:
        if (v > kv) kv = v;
        break;
      case IS_SUCCESS:
        done = done < 0 ? v : done + v;
        break;
      case IS_LORA:
        if (v > loraAt) (loraAt = v), (loraLine = text.slice(nameEnd, end));
        break;
      case IS_GPU_KV:
        if (v > gpuKv) gpuKv = v;
        break;
      case IS_QUERIES:
        queries = queries < 0 ? v : queries + v;
        break;
      case IS_HITS:
        hits = hits < 0 ? v : hits + v;
        break;
      case IS_GPU_QUERIES:
        gpuQueries = gpuQueries < 0 ? v : gpuQueries + v;
        break;
      default:
        gpuHits = gpuHits < 0 ? v : gpuHits + v;
    }
  }
  if (!hasWaiting && !hasRunning) return null;
  const usage = kv >= 0 ? kv : gpuKv >= 0 ? gpuKv : 0;
  // A pair is used only whole: the current names when the page has them, else the deprecated ones.
  const isCurrent = queries >= 0 && hits >= 0;
  const q = isCurrent ? queries : gpuQueries >= 0 && gpuHits >= 0 ? gpuQueries : -1;
  const h = isCurrent ? hits : q >= 0 ? gpuHits : -1;
  const sample: LoadSample = {
    waiting,
    running,
    kvCacheUsage: usage < 1 ? usage : 1,
    prefixCacheQueries: q,
    prefixCacheHits: h,
    prefixCacheHitRate: null,
    prefixWindowQueries: -1,
    prefixWindowHits: -1,
    prefixWindowAtMs: 0,
    requestsDone: done,
    atMs: nowMs,
  };
  if (q >= 0) windowHitRate(sample, previous);
  if (loraAt >= 0) sample.loras = parseLoraInfo(loraLine);
  return sample;
}

/**
 * PREFIX_WINDOW_MS is the shortest span a hit rate covers. Polls come every few hundred
 * milliseconds, when a replica has seen a handful of prompts: a rate over one poll would jump
 * between 0 and 100%. Like vLLM's own logged rate (over its last requests), it is taken over a
 * window instead: the counters' deltas since the window opened, once it is this old.
 */
export const PREFIX_WINDOW_MS = 5000;

/** windowHitRate carries the previous sample's window into this one, closing it into a rate once it is PREFIX_WINDOW_MS old. */
function windowHitRate(s: LoadSample, previous: LoadSample | null): void {
  const q = s.prefixCacheQueries!;
  const h = s.prefixCacheHits!;
  const wq = previous?.prefixWindowQueries ?? -1;
  const wh = previous?.prefixWindowHits ?? -1;
  const wAt = previous?.prefixWindowAtMs ?? 0;
  // No window yet, or counters that went backwards (the engine restarted): open one now.
  if (wq < 0 || wh < 0 || q < wq || h < wh) {
    s.prefixWindowQueries = q;
    s.prefixWindowHits = h;
    s.prefixWindowAtMs = s.atMs;
    return;
  }
  if (s.atMs - wAt < PREFIX_WINDOW_MS) {
    s.prefixWindowQueries = wq;
    s.prefixWindowHits = wh;
    s.prefixWindowAtMs = wAt;
    s.prefixCacheHitRate = previous?.prefixCacheHitRate ?? null;
    return;
  }
  const dq = q - wq;
  const dh = h - wh;
  // No queries in the window (an idle replica) has no rate, rather than a stale one.
  s.prefixCacheHitRate = dq > 0 && dh <= dq ? dh / dq : null;
  s.prefixWindowQueries = q;
  s.prefixWindowHits = h;
  s.prefixWindowAtMs = s.atMs;
}

/** parseLoraInfo reads the labels of one vllm:lora_requests_info line (from its "{"); null when max_lora is missing. */
function parseLoraInfo(line: string): LoraSample | null {
  const maxLora = Number(labelValue(line, 'max_lora'));
  if (!(Number.isInteger(maxLora) && maxLora > 0)) return null;
  const adapters = new Set<string>();
  for (const label of ['running_lora_adapters', 'waiting_lora_adapters']) {
    for (const name of (labelValue(line, label) ?? '').split(',')) if (name !== '') adapters.add(name);
  }
  return { adapters, maxLora };
}

/** labelValue finds `name="value"` in a label set and unescapes the value; null when absent. */
function labelValue(line: string, name: string): string | null {
  let at = line.indexOf(`${name}="`);
  // A label whose name ends with this one (e.g. x_max_lora) is not it.
  while (at > 0 && line.charCodeAt(at - 1) !== CHAR_LBRACE && line.charCodeAt(at - 1) !== 0x2c /* , */ && !isBlank(line.charCodeAt(at - 1))) at = line.indexOf(`${name}="`, at + 1);
  if (at === -1) return null;
  let out = '';
  for (let i = at + name.length + 2; i < line.length; i++) {
    const ch = line.charCodeAt(i);
    if (ch === CHAR_QUOTE) return out;
    if (ch === CHAR_BACKSLASH && i + 1 < line.length) {
      const next = line[++i]!;
      out += next === 'n' ? '\n' : next;
    } else out += line[i];
  }
  return null;
}

function isBlank(ch: number): boolean {
  return ch === CHAR_SPACE || ch === CHAR_TAB || ch === CHAR_CR;
}

/** isName tells whether the line at s starts with exactly this metric name (not a longer one such as name_bucket). */
function isName(text: string, s: number, end: number, name: string): boolean {
  const after = s + name.length;
  if (after >= end || !text.startsWith(name, s)) return false;
  const ch = text.charCodeAt(after);
  return ch === CHAR_LBRACE || ch === CHAR_SPACE || ch === CHAR_TAB;
}

/** valueAfterName skips the {labels} (quotes and escapes aware) and reads the sample value; NaN when the line is malformed. */
function valueAfterName(text: string, i: number, end: number): number {
  if (text.charCodeAt(i) === CHAR_LBRACE) {
    let isQuoted = false;
    for (i++; i < end; i++) {
      const ch = text.charCodeAt(i);
      if (isQuoted) {
        if (ch === CHAR_BACKSLASH) i++;
        else if (ch === CHAR_QUOTE) isQuoted = false;
      } else if (ch === CHAR_QUOTE) isQuoted = true;
      else if (ch === CHAR_RBRACE) break;
    }
    if (i >= end) return Number.NaN;
    i++;
  }
  const valueStart = i;
  while (i < end && isBlank(text.charCodeAt(i))) i++;
  // The value must be separated from the name or labels by blanks.
  if (i === valueStart || i >= end) return Number.NaN;
  const start = i;
  while (i < end && !isBlank(text.charCodeAt(i))) i++;
  // Number('') is 0, but start < i here, so an empty token cannot sneak through.
  return Number(text.slice(start, i));
}
