/**
 * Errors on the Anthropic route. The gateway's own errors get Anthropic's shape from the error
 * table (errors/to-response.ts); this file translates the upstream's error bodies, which on this
 * route are OpenAI-shaped and would confuse an Anthropic SDK.
 */
import { toAnthropicErrorType, type AnthropicErrorBody } from '../errors/index.js';

/**
 * toAnthropicError translates an upstream error body (vLLM's `{"error": {"message"…}}`, the older
 * `{"object": "error", "message"…}`, FastAPI's `{"detail"…}`, or anything else) keeping the status.
 */
export function toAnthropicError(status: number, text: string, requestId: string): AnthropicErrorBody {
  let message = '';
  try {
    const body: unknown = JSON.parse(text);
    if (isObject(body)) {
      const inner = isObject(body.error) ? body.error : body;
      if (typeof inner.message === 'string') message = inner.message;
      else if (typeof body.detail === 'string') message = body.detail;
      else if (body.detail !== undefined) message = JSON.stringify(body.detail);
    }
  } catch {
    message = text.trim();
  }
  if (message === '') message = `The upstream answered with status ${status}.`;
  if (message.length > 4096) message = `${message.slice(0, 4096)}…`;
  return { type: 'error', error: { type: toAnthropicErrorType(status), message }, request_id: requestId };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
