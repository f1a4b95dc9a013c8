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
