/** PassivePolicy is how real request outcomes eject a target. */
export interface PassivePolicy {
  readonly isEnabled: boolean;
  readonly failures: number;
  readonly ejectionMs: number;
  readonly maxEjectionMs: number;
  readonly statusCodes: ReadonlySet<number>;
}

/** HealthPolicy is a model's compiled health_check block. */
export interface HealthPolicy {
  readonly path: string;
  readonly isActive: boolean;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly passive: PassivePolicy;
}

/** HEALTH_DEFAULTS (README, health_check fields): active every 5 s, healthy after 2, unhealthy after 3; eject after 3 failures for 10 s doubling to 5 min. */
export const HEALTH_DEFAULTS = Object.freeze({
  path: '/health',
  intervalMs: 5_000,
  timeoutMs: 2_000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  failures: 3,
  ejectionMs: 10_000,
  maxEjectionMs: 300_000,
  statusCodes: [502, 503, 504],
});
