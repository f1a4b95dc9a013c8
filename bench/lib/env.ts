/** positiveEnv reads a benchmark setting from the environment: a positive number (or integer), else `fallback`. */
export function positiveEnv(name: string, fallback: number, isInteger = false): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (isInteger && !Number.isInteger(n))) throw new Error(`${name} must be a positive ${isInteger ? 'integer' : 'number'}, got "${v}"`);
  return n;
}
