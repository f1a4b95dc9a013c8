export type { ResponseHeaders, ResponseTransformer } from './response-transformer.js';
export { UsageChunkHider } from './usage-chunk-hider.js';
