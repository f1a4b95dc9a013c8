/**
 * translate: the Anthropic Messages API in front of OpenAI-compatible engines. route() marks
 * requests for `<path>/v1/messages…` (ctx.isMessagesApi); every other request leaves here at
 * the first line. Per model (`protocols.anthropic`): `translate` rewrites the request into
 * `/v1/chat/completions` and sets a ResponseTranslator that turns the answer back; `passthrough`
 * forwards it untouched to an engine that serves the API itself; `off` answers 404.
 * It runs after authenticate (no translation work for callers without a key) and before admit,
 * so token limits reserve on the translated request's max_tokens.
 */
import { ResponseTranslator, toChatRequest } from '../anthropic/index.js';
import { GatewayError } from '../errors/index.js';
import { parsedBody, rewriteBody } from './body.js';
import type { RequestContext } from './context.js';

/** translate rewrites an Anthropic Messages request for an OpenAI-compatible engine. */
export function translate(ctx: RequestContext): void {
  if (!ctx.isMessagesApi) return;
  const model = ctx.model!;
  const mode = model.anthropicMode;
  if (mode === 'passthrough') return;
  if (mode === 'off') throw new GatewayError('endpoint_not_found', { message: `The Anthropic Messages API is turned off for model "${model.name}".` });
  if (ctx.upstreamPath !== '/v1/messages' || ctx.req.method !== 'POST') {
    throw new GatewayError('endpoint_not_found', { message: 'Only POST /v1/messages of the Anthropic API is translated for this model.' });
  }
  if (ctx.body === null || ctx.body.length === 0) throw new GatewayError('invalid_request', { message: 'The request has no body.' });
  const body = parsedBody(ctx);
  if (body === null) throw new GatewayError('invalid_request_body');
  const chat = toChatRequest(body, { servedModel: model.servedModel });
  ctx.parsedBody = chat.body;
  rewriteBody(ctx);
  ctx.upstreamPath = '/v1/chat/completions';
  ctx.transformer = new ResponseTranslator({ model: chat.model, stopSequences: chat.stopSequences }, ctx.requestId);
}
