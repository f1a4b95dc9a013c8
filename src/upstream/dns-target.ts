/** DnsTarget is a compiled `{dns: host:port}` target entry: every A/AAAA record of host is a target. */
export interface DnsTarget {
  readonly host: string;
  readonly port: number;
  readonly scheme: 'http' | 'https';
  readonly weight: number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
}
