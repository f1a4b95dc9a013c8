import type { GatewayResponse } from './gateway-response.js';

/** sendJson answers with a JSON body and its length. */
export function sendJson(res: GatewayResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
