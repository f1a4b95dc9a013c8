/**
 * HeadEnd finds the blank line (CRLF CRLF) that ends an HTTP head arriving in any number of
 * reads. A partial match at the end of one read (`\r`, `\r\n`, `\r\n\r`) is carried into the
 * next as a number, so each byte is looked at once: a head sent one byte at a time costs linear
 * work, never a re-join and re-scan of everything read so far per byte.
 */

const CR = 0x0d;
const LF = 0x0a;
const BLANK_LINE = Buffer.from('\r\n\r\n', 'latin1');

/** step advances a match of CRLF CRLF by one byte (matched: how many of its bytes end the input so far). */
function step(matched: number, c: number): number {
  if (c === CR) return matched === 2 ? 3 : 1;
  if (c === LF) return matched === 1 ? 2 : matched === 3 ? 4 : 0;
  return 0;
}

/** HeadEnd is the scan state of one head. */
export class HeadEnd {
  /** #matched is how many bytes of CRLF CRLF the bytes scanned so far end with (0-3). */
  #matched = 0;

  /** reset forgets a partial match (a new head starts). */
  reset(): void {
    this.#matched = 0;
  }

  /** find returns the offset in `chunk` just past the blank line, scanning from `from`, or -1. */
  find(chunk: Buffer, from: number): number {
    let i = from;
    let matched = this.#matched;
    // Finish a match begun in an earlier read.
    while (matched !== 0 && i < chunk.length) {
      matched = step(matched, chunk[i++]!);
      if (matched === 4) {
        this.#matched = 0;
        return i;
      }
    }
    if (i < chunk.length) {
      const at = chunk.indexOf(BLANK_LINE, i);
      if (at !== -1) {
        this.#matched = 0;
        return at + 4;
      }
      // Only the last 3 bytes can begin a match that the next read completes.
      matched = 0;
      for (let k = Math.max(i, chunk.length - 3); k < chunk.length; k++) matched = step(matched, chunk[k]!);
    }
    this.#matched = matched;
    return -1;
  }
}
