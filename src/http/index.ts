export { sendJson } from './send-json.js';
export { listen, close, type ListenAddress } from './listen.js';
export { createHttpsServer, createTlsServer, generateDevCertificate, readTlsFiles, reloadTls, type TlsFiles, type TlsServerOptions } from './tls.js';
export { isResponseComplete } from './is-complete.js';
export { HeadEnd } from './head-end.js';
export { closeAfterResponses } from './close-after-responses.js';
export type { GatewayRequest } from './gateway-request.js';
export type { GatewayResponse } from './gateway-response.js';
