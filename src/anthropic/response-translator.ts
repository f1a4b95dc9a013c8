/**
 * ResponseTranslator is the response transformer of a translated Anthropic request: forward()
 * hands it the engine's OpenAI answer and sends the client what it returns.
 *  - 2xx text/event-stream: the stream is translated event by event (StreamTranslator), the
 *    head goes out at once as an Anthropic event stream.
 *  - anything else is one JSON body: it is collected (up to MAX_BODY_BYTES) and translated
 *    whole at the end, a chat completion into a message, an error body into an Anthropic error
 *    with the upstream's status. An answer that cannot be translated becomes a 502 api_error.
 */
import { StringDecoder } from 'node:string_decoder';
import { toAnthropicErrorBody, type GatewayError } from '../errors/index.js';
import type { ResponseHeaders, ResponseTransformer } from '../transform/index.js';
import { toAnthropicError } from './errors.js';
import { StreamTranslator } from './stream-translator.js';
import { TranslationError, toAnthropicMessage, type AnswerContext } from './translate-response.js';

/** MAX_BODY_BYTES bounds a non-streamed answer held for translation (chat completions are far smaller). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** ResponseTranslator translates one answer. */
export class ResponseTranslator implements ResponseTransformer {
  status = 0;
  isBuffered = false;
  readonly #ctx: AnswerContext;
  readonly #requestId: string;
  #stream: StreamTranslator | null = null;
  #decoder: StringDecoder | null = null;
  #chunks: Buffer[] = [];
  #size = 0;
  #isCompressed = false;

  constructor(ctx: AnswerContext, requestId: string) {
    this.#ctx = ctx;
    this.#requestId = requestId;
  }

  start(status: number, headers: ResponseHeaders): void {
    this.status = status;
    const type = headers['content-type'];
    const encoding = headers['content-encoding'];
    // The gateway asked for identity; an engine that compresses anyway cannot be read.
    this.#isCompressed = encoding !== undefined && encoding !== 'identity';
    delete headers['content-length'];
    if (status >= 200 && status < 300 && !this.#isCompressed && typeof type === 'string' && type.startsWith('text/event-stream')) {
      this.#stream = new StreamTranslator(this.#ctx, this.#requestId);
      this.#decoder = new StringDecoder('utf8');
      headers['content-type'] = 'text/event-stream; charset=utf-8';
      return;
    }
    this.isBuffered = true;
    delete headers['content-encoding'];
    headers['content-type'] = 'application/json';
  }

  data(chunk: Buffer): Buffer | null {
    const stream = this.#stream;
    if (stream !== null) return toBuffer(this.#guard(stream, () => stream.feed(this.#decoder!.write(chunk))));
    this.#size += chunk.length;
    if (this.#size <= MAX_BODY_BYTES) this.#chunks.push(chunk);
    else this.#chunks = [];
    return null;
  }

  end(): Buffer | null {
    const stream = this.#stream;
    if (stream !== null) return toBuffer(this.#guard(stream, () => stream.feed(this.#decoder!.end()) + stream.end()));
    return Buffer.from(JSON.stringify(this.#translateBody()));
  }

  error(err: GatewayError, requestId: string): Buffer | null {
    const body = toAnthropicErrorBody(err, requestId);
    // Before start() (or for a body) there is no event stream to end: let forward() answer.
    if (this.#stream === null) return null;
    // A stream that already ended (message_stop sent) gets nothing after it.
    return Buffer.from(this.#stream.fail(body.error.type, body.error.message));
  }

  #translateBody(): object {
    const text = Buffer.concat(this.#chunks).toString('utf8');
    this.#chunks = [];
    if (this.#size > MAX_BODY_BYTES) return this.#badGateway('The upstream answer is larger than this gateway translates.');
    if (this.#isCompressed) return this.#badGateway('The upstream answered compressed although the gateway asked for identity encoding.');
    if (this.status >= 300) return toAnthropicError(this.status, text, this.#requestId);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return this.#badGateway('The upstream answer is not JSON.');
    }
    try {
      return toAnthropicMessage(parsed, this.#ctx);
    } catch (err) {
      return this.#badGateway(err instanceof TranslationError ? err.message : 'The upstream answer could not be translated.');
    }
  }

  #badGateway(message: string): object {
    this.status = 502;
    return { type: 'error', error: { type: 'api_error', message }, request_id: this.#requestId };
  }

  /** #guard keeps a translator bug from escaping into the upstream connection: the stream ends with an error event. */
  #guard(stream: StreamTranslator, fn: () => string): string {
    try {
      return fn();
    } catch {
      return stream.fail('api_error', 'The gateway could not translate the upstream stream.');
    }
  }
}

function toBuffer(s: string): Buffer | null {
  return s === '' ? null : Buffer.from(s);
}
