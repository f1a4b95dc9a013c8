/**
 * The answer side of the translation, for whole bodies: an OpenAI chat completion becomes an
 * Anthropic message. Pure functions, pinned by golden files (test/fixtures/anthropic/response-*.json).
 */

/** AnthropicContentBlock is one block of an answer. */
export type AnthropicContentBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

/** StopReason is Anthropic's reason a message ended. */
export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

/** AnthropicMessage is a non-streamed Messages API answer. */
export interface AnthropicMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: AnthropicContentBlock[];
  stop_reason: StopReason;
  stop_sequence: string | null;
  usage: { input_tokens: number; output_tokens: number };
}

/** AnswerContext is what the response translation knows of the request. */
export interface AnswerContext {
  /** model is the client's `model`, used when the engine's answer names none. */
  model: string;
  stopSequences: readonly string[];
}

/** TranslationError is an upstream answer that cannot be expressed in the Anthropic API (the client gets a 502). */
export class TranslationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TranslationError';
  }
}

/**
 * toStopReason maps OpenAI's finish_reason. A matched stop sequence is told from a natural end by
 * vLLM's `stop_reason` (the matched string, or a token id, or null) when it is one of the request's
 * stop sequences; engines that do not report it give end_turn, as they cannot be told apart.
 * vLLM reports "stop" for a forced (named or required) tool call, so any tool call means tool_use.
 */
export function toStopReason(finish: unknown, matched: unknown, hasToolCalls: boolean, stopSequences: readonly string[]): [StopReason, string | null] {
  if (finish === 'length') return ['max_tokens', null];
  if (hasToolCalls || finish === 'tool_calls' || finish === 'function_call') return ['tool_use', null];
  if (finish === 'content_filter') return ['refusal', null];
  if (typeof matched === 'string' && stopSequences.includes(matched)) return ['stop_sequence', matched];
  return ['end_turn', null];
}

/** toMessageId derives the message id from the engine's completion id, so logs on both sides match. */
export function toMessageId(upstreamId: unknown): string {
  if (typeof upstreamId === 'string' && upstreamId !== '') return `msg_${upstreamId.startsWith('chatcmpl-') ? upstreamId.slice(9) : upstreamId}`;
  return `msg_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

/** toToolInput parses a tool call's JSON arguments into the object Anthropic's `input` is. */
export function toToolInput(args: unknown): Record<string, unknown> {
  if (args === undefined || args === null || args === '') return {};
  if (typeof args === 'object' && !Array.isArray(args)) return args as Record<string, unknown>;
  if (typeof args === 'string') {
    try {
      const v: unknown = JSON.parse(args);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // reported below
    }
  }
  throw new TranslationError('The engine answered with tool call arguments that are not a JSON object.');
}

/** toAnthropicMessage translates an OpenAI chat completion body; it throws TranslationError on anything else. */
export function toAnthropicMessage(completion: unknown, ctx: AnswerContext): AnthropicMessage {
  if (!isObject(completion) || !Array.isArray(completion.choices)) throw new TranslationError('The engine did not answer with a chat completion.');
  const choice: unknown = completion.choices[0];
  if (!isObject(choice) || !isObject(choice.message)) throw new TranslationError('The engine answered with no choice.');
  const message = choice.message;
  const content: AnthropicContentBlock[] = [];
  if (typeof message.content === 'string' && message.content !== '') content.push({ type: 'text', text: message.content });
  const calls = Array.isArray(message.tool_calls) ? (message.tool_calls as unknown[]) : [];
  for (const call of calls) {
    if (!isObject(call) || !isObject(call.function) || typeof call.function.name !== 'string') throw new TranslationError('The engine answered with a malformed tool call.');
    content.push({ type: 'tool_use', id: typeof call.id === 'string' && call.id !== '' ? call.id : `toolu_${content.length}`, name: call.function.name, input: toToolInput(call.function.arguments) });
  }
  const [stopReason, stopSequence] = toStopReason(choice.finish_reason, choice.stop_reason, calls.length > 0, ctx.stopSequences);
  const usage = isObject(completion.usage) ? completion.usage : {};
  return {
    id: toMessageId(completion.id),
    type: 'message',
    role: 'assistant',
    model: typeof completion.model === 'string' ? completion.model : ctx.model,
    content,
    stop_reason: stopReason,
    stop_sequence: stopSequence,
    usage: { input_tokens: toCount(usage.prompt_tokens), output_tokens: toCount(usage.completion_tokens) },
  };
}

function toCount(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
