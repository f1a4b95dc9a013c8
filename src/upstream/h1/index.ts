export { H1Pool, TRANSPORT_CODES, UpstreamTransportError, type H1PoolOptions } from './pool.js';
export { ResponseParser, type ResponseEvents, type ResponseHeaders } from './response-parser.js';
