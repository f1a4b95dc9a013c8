/**
 * Reading a Prometheus text exposition (a gateway's /metrics) in the benchmarks: values of one
 * metric, optionally of the series whose labels hold a given `name="value"`.
 */

/** eachValue calls visit with the value of every sample of `name` whose labels include labelPart. */
function eachValue(text: string, name: string, labelPart: string, visit: (value: number) => void): void {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (labelPart !== '' && !rest.includes(labelPart)) continue;
    visit(Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
}

/** metricSum is the sum of a metric's samples (0 when it has none). */
export function metricSum(text: string, name: string, labelPart = ''): number {
  let sum = 0;
  eachValue(text, name, labelPart, (v) => (sum += v));
  return sum;
}

/** metricValue is the value of a metric's (last) sample, NaN when it has none. */
export function metricValue(text: string, name: string, labelPart = ''): number {
  let value = Number.NaN;
  eachValue(text, name, labelPart, (v) => (value = v));
  return value;
}
