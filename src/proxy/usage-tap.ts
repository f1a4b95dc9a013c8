/**
 * UsageTap reads token counts from a response as it streams by, without holding it: JSON bodies
 * and SSE streams both carry an OpenAI `usage` object ({"prompt_tokens":…,"completion_tokens":…}),
 * at the end of a JSON body or in the last data event of a stream. Anthropic answers (passthrough)
 * carry {"input_tokens":…,"output_tokens":…}; a stream's message_delta may hold only the output
 * count, which then updates the one seen in message_start. Each chunk costs one search for
 * `"usage":` (then a look at the next byte or two: `{` is a usage object, `null` is not) and a
 * byte loop over its last bytes; only the few bytes after a match are decoded. The search is
 * ./key-search.ts (SIMD, or a JS loop for short ranges). A
 * marker or object cut by a chunk boundary is completed with the next chunk. feed() tells whether
 * the chunk holds part of a usage object, so the usage hider need not search the chunk again.
 */

import { USAGE_KEY as KEY, findUsageKey } from './key-search.js';

const MARKER_TEXTS = ['"usage":{', '"usage": {'];
// OpenAI's names, and Anthropic's (input/output_tokens) for Messages API answers passed through.
const PROMPT = /"(?:prompt|input)_tokens":\s*(\d+)/;
const COMPLETION = /"(?:completion|output)_tokens":\s*(\d+)/;
/** How far after the marker the counts can be: vLLM's usage object is well under this. */
const WINDOW = 512;
const TAIL = MARKER_TEXTS[1]!.length;

/** UsageTap accumulates the last usage object seen in a response. */
export class UsageTap {
  promptTokens = -1;
  completionTokens = -1;
  /** #pending is text cut at the end of the previous chunk: part of a marker, or of a usage object. */
  #pending = '';

  /** feed looks at one response chunk; true when the chunk holds part of a usage object (or of its marker). */
  feed(chunk: Buffer): boolean {
    let isSeen = false;
    if (this.#pending !== '') {
      const text = this.#pending + chunk.toString('latin1', 0, Math.min(chunk.length, WINDOW));
      this.#pending = '';
      const at = markerIn(text);
      if (at !== -1) {
        isSeen = true;
        // The whole chunk is in `text`: an object it leaves open continues in the next one.
        this.#scan(text.slice(at), chunk.length < WINDOW);
        if (this.#pending !== '') return true;
      } else if (MARKER_TEXTS.some((m) => m.startsWith(text))) {
        // A chunk shorter than the rest of the marker.
        this.#pending = text;
        return true;
      }
    }
    const at = markerAt(chunk, 0, chunk.length);
    if (at !== -1) {
      const end = Math.min(chunk.length, at + WINDOW);
      this.#scan(chunk.toString('latin1', at, end), end === chunk.length && end - at < WINDOW);
      return true;
    }
    // The chunk may end inside a marker: keep that tail for the next chunk. A byte loop over a
    // few bytes costs less than another native search, and compares bytes: no string is made
    // unless the tail is a marker's beginning.
    const n = chunk.length;
    for (let q = Math.max(0, n - TAIL); q < n; q++) {
      if (chunk[q] === 0x22 && isMarkerStart(chunk, q)) {
        this.#pending = chunk.toString('latin1', q);
        return true;
      }
    }
    return isSeen;
  }

  /** cleanBytes is the data length of the chunks cleanPrefix accepted last; cleanLastAt is where the last of them starts. */
  cleanBytes = 0;
  cleanLastAt = 0;

  /**
   * cleanPrefix is where the chunks of a run, read[start, end) with their chunked framing
   * (checked by the transport), stop being ones that may pass without feed(): up to the first
   * chunk that holds a usage marker, or whose data does not end an SSE event (a blank line: so no
   * marker is cut between two chunks). `start`: none may (or something is pending from an earlier
   * chunk). One search over the run instead of one per chunk; cleanBytes is set to their data
   * length, cleanLastAt to where the last of them starts.
   */
  cleanPrefix(read: Buffer, start: number, end: number): number {
    this.cleanBytes = 0;
    this.cleanLastAt = start;
    if (this.#pending !== '') return start;
    const found = markerAt(read, start, end);
    const marker = found === -1 ? end : found;
    let clean = start;
    let bytes = 0;
    let p = start;
    while (p < end) {
      const at = p;
      let size = 0;
      for (let c = read[p]!; c !== 0x0d; c = read[++p]!) size = size * 16 + (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);
      const dataEnd = p + 2 + size;
      if (dataEnd > marker || size < 2 || read[dataEnd - 1] !== 0x0a || read[dataEnd - 2] !== 0x0a) break;
      p = dataEnd + 2;
      clean = p;
      bytes += size;
      this.cleanLastAt = at;
    }
    this.cleanBytes = bytes;
    return clean;
  }

  /** hasUsage tells whether a usage object was seen. */
  get hasUsage(): boolean {
    return this.promptTokens >= 0;
  }

  /** #scan parses counts from text starting at a marker, keeping it as pending when it is cut short. */
  #scan(text: string, mayContinue: boolean): void {
    const close = text.indexOf('}');
    const p = PROMPT.exec(text);
    const c = COMPLETION.exec(text);
    if (mayContinue && close === -1 && (p === null || c === null)) {
      this.#pending = text;
      return;
    }
    if (p !== null) this.promptTokens = Number(p[1]);
    // Embeddings report no completion tokens.
    if (c !== null) this.completionTokens = Number(c[1]);
    else if (p !== null) this.completionTokens = 0;
  }
}

/** markerAt is where `"usage":` followed by `{` (or a space and `{`) starts in buf[from, to), or -1. */
function markerAt(buf: Buffer, from: number, to: number): number {
  for (let at = findUsageKey(buf, from, to); at !== -1; at = findUsageKey(buf, at + KEY.length, to)) {
    const next = buf[at + KEY.length];
    if (next === 0x7b /* { */ || (next === 0x20 && buf[at + KEY.length + 1] === 0x7b)) return at;
  }
  return -1;
}

/** MARKER_BYTES are the markers' bytes, for isMarkerStart. */
const MARKER_BYTES = MARKER_TEXTS.map((m) => Buffer.from(m, 'latin1'));

/** isMarkerStart tells whether chunk[from..] (to its end) is the beginning of a marker. */
function isMarkerStart(chunk: Buffer, from: number): boolean {
  const n = chunk.length - from;
  for (let m = 0; m < MARKER_BYTES.length; m++) {
    const marker = MARKER_BYTES[m]!;
    if (n > marker.length) continue;
    let i = 0;
    while (i < n && chunk[from + i] === marker[i]) i++;
    if (i === n) return true;
  }
  return false;
}

function markerIn(text: string): number {
  const at = text.indexOf(MARKER_TEXTS[0]!);
  return at !== -1 ? at : text.indexOf(MARKER_TEXTS[1]!);
}
