export { forward, type ForwardDeps } from './forward.js';
export { UsageTap } from './usage-tap.js';
export { toTraceContext, type TraceContext } from './trace-context.js';
export { toUpstreamHeaders, toClientHeaders, type UpstreamHeaderInput } from './headers.js';
export { tunnel, type TunnelDeps } from './tunnel.js';
export { sendMirror, type MirrorCounters, type MirrorDeps } from './mirror.js';
export { toUpstreamErrorCode } from './upstream-error.js';
export type { Reselect, TailContext } from './tail-context.js';
