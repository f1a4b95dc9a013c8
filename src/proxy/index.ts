export { forward, toUpstreamErrorCode } from './forward.js';
export { toUpstreamHeaders, toClientHeaders, type UpstreamHeaderInput } from './headers.js';
