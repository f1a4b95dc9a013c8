/** StatusFacts are what the status document reports, gathered by the gateway. */
export interface StatusFacts {
  readonly requestsTotal: number;
  readonly connectionsActive: number;
  readonly connectionsAccepted: number;
  readonly requestsInflight: number;
  readonly startedAtMs: number;
  readonly isReady: boolean;
  readonly configurationHash: string;
  readonly configurationLoadedAt: Date;
}

/** toStatusDocument is the body of GET /status (status and admin listeners), in nginx stub_status terms plus memory and configuration. */
export function toStatusDocument(f: StatusFacts): object {
  const mem = process.memoryUsage();
  return {
    server: {
      total_requests: f.requestsTotal,
      connections_active: f.connectionsActive,
      connections_accepted: f.connectionsAccepted,
      connections_handled: f.connectionsAccepted,
      requests_inflight: f.requestsInflight,
    },
    memory: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed, heap_total_bytes: mem.heapTotal },
    uptime_seconds: Math.round((Date.now() - f.startedAtMs) / 1000),
    ready: f.isReady,
    configuration_hash: f.configurationHash,
    configuration_loaded_at: f.configurationLoadedAt.toISOString(),
  };
}
