/** HEAD_WITH_BODY_BYTES: a body up to this size goes out copied behind its head (headWithBody), larger ones as a writev of the parts. */
export const HEAD_WITH_BODY_BYTES = 16 * 1024;

/**
 * headWithBody copies an HTTP head (latin1 text: every character is one byte) and the body bytes
 * after it into one buffer, for one socket write: cheaper for a small body than a writev of the
 * parts with their write requests. `a` and `b` are body pieces in order; either may be null.
 */
export function headWithBody(head: string, a: Buffer | null, b: Buffer | null = null): Buffer {
  const out = Buffer.allocUnsafe(head.length + (a === null ? 0 : a.length) + (b === null ? 0 : b.length));
  let at = out.write(head, 0, 'latin1');
  if (a !== null) at += a.copy(out, at);
  if (b !== null) b.copy(out, at);
  return out;
}
