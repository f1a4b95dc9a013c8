/** The flow-control metrics: queue depth, wait time, shed requests and saturation per model. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** QUEUE_WAIT_BUCKETS span a short hold to a long max_wait (seconds). */
const QUEUE_WAIT_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** FlowMetrics is what the flow-control scheduler reports; it implements the scheduler's observer. */
export class FlowMetrics {
  readonly queueDepth: Gauge<string>;
  readonly queueWait: Histogram<string>;
  readonly shedTotal: Counter<string>;
  readonly modelSaturated: Gauge<string>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.queueDepth = new Gauge({ name: 'igw_queue_depth', help: 'Requests waiting in the gateway for a model, by priority (flow control).', labelNames: ['model', 'priority'], registers });
    this.queueWait = new Histogram({ name: 'igw_queue_wait_seconds', help: 'Time requests waited in the flow-control queue (dispatched or timed out).', labelNames: ['model'], buckets: QUEUE_WAIT_BUCKETS, registers });
    this.shedTotal = new Counter({ name: 'igw_shed_total', help: 'Requests flow control did not forward, by reason (overloaded, queue_full, queue_timeout, client_gone).', labelNames: ['model', 'reason'], registers });
    this.modelSaturated = new Gauge({ name: 'igw_model_saturated', help: 'Whether every healthy target of a flow-controlled model is saturated (1) or not (0).', labelNames: ['model'], registers });
  }

  depth(model: string, priority: number, count: number): void {
    this.queueDepth.labels(model, String(priority)).set(count);
  }

  waited(model: string, seconds: number): void {
    this.queueWait.labels(model).observe(seconds);
  }

  shed(model: string, reason: string): void {
    this.shedTotal.labels(model, reason).inc();
  }

  saturated(model: string, isSaturated: boolean): void {
    this.modelSaturated.labels(model).set(isSaturated ? 1 : 0);
  }

  /** forget removes the gauges of a model whose queue closed (it left the configuration or lost flow control). */
  forget(model: string, priorities: readonly number[]): void {
    this.modelSaturated.remove(model);
    for (const p of priorities) this.queueDepth.remove(model, String(p));
  }
}
