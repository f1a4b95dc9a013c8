/**
 * StreamTranslator turns an OpenAI chat completions SSE stream into the Anthropic Messages event
 * stream, incrementally: every upstream event is translated as soon as it is complete, and only
 * a partial event (text after the last blank line) is held until the next chunk.
 *
 *   upstream (OpenAI)                          client (Anthropic)
 *   first chunk                          ->    message_start, ping
 *   delta.content                        ->    [content_block_stop] content_block_start(text) once, text_delta
 *   delta.tool_calls[i] (new index)      ->    [content_block_stop] content_block_start(tool_use {id, name, input: {}})
 *   delta.tool_calls[i].function.arguments ->  input_json_delta (partial_json, as the engine streamed it)
 *   finish_reason                        ->    content_block_stop (stop reason kept)
 *   usage chunk (include_usage)          ->    (kept for message_delta)
 *   [DONE], or the end of the body       ->    message_delta {stop_reason, stop_sequence, usage}, message_stop
 *   {"error": …} event                   ->    error (and nothing after it)
 *
 * Anthropic sends input_tokens in message_start; an OpenAI stream only reports usage at its end,
 * so message_start carries 0 and message_delta carries the real input and output counts (the
 * Anthropic SDK's accumulated message takes both from message_delta).
 * It works on strings (the caller decodes UTF-8 across chunk boundaries) and never throws on
 * upstream content: malformed events are skipped.
 */
import { toAnthropicErrorType } from '../errors/index.js';
import { toMessageId, toStopReason, type AnswerContext } from './translate-response.js';

/** MAX_EVENT_CHARS bounds one upstream event; a stream that never ends its event is cut with an error. */
const MAX_EVENT_CHARS = 4 * 1024 * 1024;

/** StreamTranslator translates one stream. */
export class StreamTranslator {
  readonly #ctx: AnswerContext;
  readonly #requestId: string;
  #carry = '';
  #isStarted = false;
  #isDone = false;
  /** #index is the index of the last content block opened (-1: none yet). */
  #index = -1;
  #open: 'text' | 'tool' | null = null;
  /** #tools maps an OpenAI tool call index to its content block index. */
  readonly #tools = new Map<number, number>();
  #finish: unknown = null;
  #matched: unknown = null;
  #inputTokens = -1;
  #outputTokens = -1;

  constructor(ctx: AnswerContext, requestId: string) {
    this.#ctx = ctx;
    this.#requestId = requestId;
  }

  /** isDone tells whether the stream was ended (message_stop or error sent). */
  get isDone(): boolean {
    return this.#isDone;
  }

  /** feed translates the complete events in `text` (plus what was held); returns the events to send. */
  feed(text: string): string {
    if (this.#isDone) return '';
    const buf = this.#carry === '' ? text : this.#carry + text;
    let out = '';
    let start = 0;
    for (;;) {
      const lf = buf.indexOf('\n\n', start);
      const crlf = buf.indexOf('\r\n\r\n', start);
      let end: number;
      let next: number;
      if (crlf !== -1 && (lf === -1 || crlf < lf)) {
        end = crlf;
        next = crlf + 4;
      } else if (lf !== -1) {
        end = lf;
        next = lf + 2;
      } else break;
      out += this.#onEvent(buf.slice(start, end));
      start = next;
      if (this.#isDone) {
        this.#carry = '';
        return out;
      }
    }
    this.#carry = start === 0 ? buf : buf.slice(start);
    if (this.#carry.length > MAX_EVENT_CHARS) out += this.fail('api_error', 'The upstream sent an event larger than this gateway accepts.');
    return out;
  }

  /** end finishes the message when the upstream body ended (engines that send no [DONE]). */
  end(): string {
    if (this.#isDone) return '';
    const rest = this.#carry;
    this.#carry = '';
    const out = rest.trim() === '' ? '' : this.#onEvent(rest);
    return out + this.#finishMessage();
  }

  /** fail ends the stream with an error event (after whatever was already sent). */
  fail(type: string, message: string): string {
    if (this.#isDone) return '';
    this.#isDone = true;
    return event('error', { type: 'error', error: { type, message }, request_id: this.#requestId });
  }

  #onEvent(raw: string): string {
    let data = '';
    let hasData = false;
    for (const line of raw.split('\n')) {
      const l = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (!l.startsWith('data:')) continue;
      const v = l.charCodeAt(5) === 32 ? l.slice(6) : l.slice(5);
      data = hasData ? `${data}\n${v}` : v;
      hasData = true;
    }
    if (!hasData) return '';
    if (data === '[DONE]') return this.#finishMessage();
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      return '';
    }
    return isObject(chunk) ? this.#onChunk(chunk) : '';
  }

  #onChunk(chunk: Record<string, unknown>): string {
    if (isObject(chunk.error) || chunk.object === 'error') {
      const e = isObject(chunk.error) ? chunk.error : chunk;
      const status = typeof e.code === 'number' ? e.code : 500;
      return this.fail(toAnthropicErrorType(status), typeof e.message === 'string' ? e.message : 'The upstream failed.');
    }
    let out = this.#isStarted ? '' : this.#messageStart(chunk.id, chunk.model);
    const choice: unknown = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (isObject(choice)) {
      const delta = isObject(choice.delta) ? choice.delta : {};
      if (typeof delta.content === 'string' && delta.content !== '') {
        if (this.#open !== 'text') {
          out += this.#closeBlock();
          this.#index++;
          this.#open = 'text';
          out += event('content_block_start', { type: 'content_block_start', index: this.#index, content_block: { type: 'text', text: '' } });
        }
        out += event('content_block_delta', { type: 'content_block_delta', index: this.#index, delta: { type: 'text_delta', text: delta.content } });
      }
      if (Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls as unknown[]) if (isObject(call)) out += this.#onToolCall(call);
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
        this.#finish = choice.finish_reason;
        this.#matched = choice.stop_reason;
        out += this.#closeBlock();
      }
    }
    if (isObject(chunk.usage)) {
      const u = chunk.usage;
      if (typeof u.prompt_tokens === 'number') this.#inputTokens = u.prompt_tokens;
      if (typeof u.completion_tokens === 'number') this.#outputTokens = u.completion_tokens;
    }
    return out;
  }

  #onToolCall(call: Record<string, unknown>): string {
    const key = typeof call.index === 'number' ? call.index : 0;
    const fn = isObject(call.function) ? call.function : {};
    let out = '';
    let index = this.#tools.get(key);
    if (index === undefined) {
      out += this.#closeBlock();
      index = ++this.#index;
      this.#tools.set(key, index);
      this.#open = 'tool';
      const id = typeof call.id === 'string' && call.id !== '' ? call.id : `toolu_${index}`;
      const name = typeof fn.name === 'string' ? fn.name : '';
      out += event('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id, name, input: {} } });
    }
    // Engines stream each call's arguments in order; a late piece of an earlier call keeps its own index.
    if (typeof fn.arguments === 'string' && fn.arguments !== '') {
      out += event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: fn.arguments } });
    }
    return out;
  }

  #messageStart(id: unknown, model: unknown): string {
    this.#isStarted = true;
    const message = {
      id: toMessageId(id),
      type: 'message',
      role: 'assistant',
      model: typeof model === 'string' ? model : this.#ctx.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    return event('message_start', { type: 'message_start', message }) + event('ping', { type: 'ping' });
  }

  #closeBlock(): string {
    if (this.#open === null) return '';
    this.#open = null;
    return event('content_block_stop', { type: 'content_block_stop', index: this.#index });
  }

  #finishMessage(): string {
    if (this.#isDone) return '';
    let out = this.#isStarted ? '' : this.#messageStart(undefined, undefined);
    out += this.#closeBlock();
    this.#isDone = true;
    const [stopReason, stopSequence] = toStopReason(this.#finish, this.#matched, this.#tools.size > 0, this.#ctx.stopSequences);
    const usage = this.#inputTokens >= 0 ? { input_tokens: this.#inputTokens, output_tokens: Math.max(0, this.#outputTokens) } : { output_tokens: Math.max(0, this.#outputTokens) };
    out += event('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: stopSequence }, usage });
    return out + event('message_stop', { type: 'message_stop' });
  }
}

function event(name: string, payload: object): string {
  return `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
