/**
 * toChatRequest turns an Anthropic Messages API request (POST /v1/messages) into an OpenAI
 * chat completions request for an OpenAI-compatible engine. It is a pure function: the pipeline's
 * translate stage calls it, golden files pin it (test/fixtures/anthropic/request-*.json).
 *
 * The rule for every field (docs/anthropic.md has the whole table): a field that the engine can
 * honour is mapped; a field that does not change the generated answer (cache_control,
 * service_tier, …) is ignored; a field that would change the answer and cannot be mapped
 * (thinking, documents, server tools, …) is refused with a 400 that names it, never dropped.
 * Unknown fields are refused too, as the Anthropic API does: a new field could change the answer.
 */
import { GatewayError } from '../errors/index.js';

/** ChatRequest is a translated request and what the response translation needs to know of it. */
export interface ChatRequest {
  /** body is the OpenAI chat completions request. */
  body: Record<string, unknown>;
  /** model is the `model` the client asked for (answers fall back to it when the engine names none). */
  model: string;
  /** stopSequences lets the answer tell a matched stop sequence from a natural end. */
  stopSequences: readonly string[];
  isStream: boolean;
}

/** ChatRequestOptions are what the routed model decides. */
export interface ChatRequestOptions {
  /** servedModel replaces the body's `model` (vLLM answers only to its served name); null keeps it. */
  servedModel: string | null;
}

type Json = Record<string, unknown>;

// Top-level fields that do not change what the model generates: accepted and ignored.
const IGNORED_FIELDS = new Set(['cache_control', 'service_tier', 'inference_geo', 'speed', 'user_profile_id', 'workspace_id', 'diagnostics']);
// Fields refused with a reason of their own (anything else unknown gets the generic message).
const REFUSED_FIELDS: Readonly<Record<string, string>> = {
  container: 'code execution containers are not available through this gateway',
  mcp_servers: 'MCP servers are not available through this gateway',
  context_management: 'context management is not available through this gateway',
};
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

/** toChatRequest translates one request; it throws a GatewayError (400) that names the offending field. */
export function toChatRequest(input: unknown, opts: ChatRequestOptions): ChatRequest {
  if (!isObject(input)) throw invalid('', 'The request body must be a JSON object.');
  const known = new Set(['model', 'max_tokens', 'messages', 'system', 'stop_sequences', 'stream', 'temperature', 'top_p', 'top_k', 'metadata', 'tools', 'tool_choice', 'thinking', 'output_config']);
  for (const key of Object.keys(input)) {
    if (known.has(key) || IGNORED_FIELDS.has(key)) continue;
    const reason = REFUSED_FIELDS[key];
    throw unsupported(key, reason === undefined ? `\`${clip(key)}\` is not supported by this gateway.` : `\`${key}\`: ${reason}.`);
  }
  const model = input.model;
  if (typeof model !== 'string' || model === '') throw invalid('model', '`model` is required and must be a string.');
  const maxTokens = input.max_tokens;
  if (!isPositiveInt(maxTokens)) throw invalid('max_tokens', '`max_tokens` is required and must be a positive integer.');
  if (input.thinking !== undefined) checkThinking(input.thinking);

  const messages: Json[] = [];
  if (input.system !== undefined) {
    const system = toSystemText(input.system);
    if (system !== '') messages.push({ role: 'system', content: system });
  }
  const turns = toMergedTurns(input.messages);
  for (let i = 0; i < turns.length; i++) {
    const turn = turns[i]!;
    if (turn.role === 'user') pushUserTurn(messages, turn);
    else messages.push(toAssistantMessage(turn));
  }
  const body: Json = { model: opts.servedModel ?? model, messages, max_tokens: maxTokens };

  let stopSequences: string[] = [];
  if (input.stop_sequences !== undefined) {
    if (!Array.isArray(input.stop_sequences) || !input.stop_sequences.every((s) => typeof s === 'string')) throw invalid('stop_sequences', '`stop_sequences` must be an array of strings.');
    stopSequences = input.stop_sequences as string[];
    if (stopSequences.length > 0) body.stop = stopSequences;
  }
  const isStream = input.stream === true;
  if (input.stream !== undefined && typeof input.stream !== 'boolean') throw invalid('stream', '`stream` must be a boolean.');
  if (isStream) {
    body.stream = true;
    // message_delta carries output_tokens, and limits settle on the real usage.
    body.stream_options = { include_usage: true };
  }
  for (const key of ['temperature', 'top_p'] as const) {
    const v = input[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(key, `\`${key}\` must be a number.`);
    body[key] = v;
  }
  if (input.top_k !== undefined) {
    // vLLM (and SGLang) take top_k as an extra sampling parameter of chat completions.
    if (!isPositiveInt(input.top_k)) throw invalid('top_k', '`top_k` must be a positive integer.');
    body.top_k = input.top_k;
  }
  if (input.metadata !== undefined) {
    const user = toUser(input.metadata);
    if (user !== null) body.user = user;
  }
  if (input.tools !== undefined) {
    if (!Array.isArray(input.tools)) throw invalid('tools', '`tools` must be an array.');
    if (input.tools.length > 0) body.tools = input.tools.map((t, i) => toTool(t, `tools.${i}`));
  }
  if (input.tool_choice !== undefined) toToolChoice(input.tool_choice, body);
  if (input.output_config !== undefined) toOutputConfig(input.output_config, body);
  // An assistant turn last is a prefill: the engine continues it instead of starting a new turn
  // (vLLM's continue_final_message), and the answer holds only the continuation, as Anthropic's does.
  const last = messages[messages.length - 1];
  if (last !== undefined && last.role === 'assistant' && last.tool_calls === undefined) {
    body.continue_final_message = true;
    body.add_generation_prompt = false;
  }
  return { body, model, stopSequences, isStream };
}

/** Turn is one conversation turn after consecutive same-role messages were merged, as Anthropic merges them. */
interface Turn {
  role: 'user' | 'assistant';
  /** blocks with the path each came from, for error messages. */
  blocks: Array<{ block: Json; path: string }>;
}

function toMergedTurns(messages: unknown): Turn[] {
  if (!Array.isArray(messages) || messages.length === 0) throw invalid('messages', '`messages` must be a non-empty array.');
  const turns: Turn[] = [];
  messages.forEach((m: unknown, i) => {
    const path = `messages.${i}`;
    if (!isObject(m)) throw invalid(path, `\`${path}\` must be an object.`);
    for (const key of Object.keys(m)) if (key !== 'role' && key !== 'content') throw unsupported(`${path}.${clip(key)}`, `\`${path}.${clip(key)}\` is not supported by this gateway.`);
    const role = m.role;
    if (role !== 'user' && role !== 'assistant') throw invalid(`${path}.role`, `\`${path}.role\` must be "user" or "assistant".`);
    let blocks: Turn['blocks'];
    if (typeof m.content === 'string') blocks = [{ block: { type: 'text', text: m.content }, path: `${path}.content` }];
    else if (Array.isArray(m.content)) {
      blocks = m.content.map((b: unknown, j) => {
        const p = `${path}.content.${j}`;
        if (!isObject(b) || typeof b.type !== 'string') throw invalid(p, `\`${p}\` must be a content block with a \`type\`.`);
        return { block: b, path: p };
      });
    } else throw invalid(`${path}.content`, `\`${path}.content\` must be a string or an array of content blocks.`);
    const prev = turns[turns.length - 1];
    if (prev !== undefined && prev.role === role) prev.blocks.push(...blocks);
    else turns.push({ role, blocks });
  });
  return turns;
}

/** pushUserTurn adds a user turn: its tool results first (as `tool` messages), then its other content as one user message. */
function pushUserTurn(out: Json[], turn: Turn): void {
  const parts: Json[] = [];
  for (const { block, path } of turn.blocks) {
    switch (block.type) {
      case 'text':
        parts.push({ type: 'text', text: toText(block, path) });
        break;
      case 'image':
        parts.push(toImagePart(block, path));
        break;
      case 'tool_result':
        out.push(toToolMessage(block, path));
        break;
      case 'tool_use':
        throw invalid(`${path}.type`, `\`${path}\`: tool_use blocks belong in assistant messages.`);
      default:
        throw unsupportedBlock(block, path);
    }
  }
  if (parts.length === 0) return;
  const isTextOnly = parts.every((p) => p.type === 'text');
  // Plain text goes as a string, which every engine's chat template reads; images need parts.
  out.push({ role: 'user', content: isTextOnly ? parts.map((p) => p.text as string).join('\n') : parts });
}

function toAssistantMessage(turn: Turn): Json {
  const texts: string[] = [];
  const toolCalls: Json[] = [];
  for (const { block, path } of turn.blocks) {
    switch (block.type) {
      case 'text':
        texts.push(toText(block, path));
        break;
      case 'tool_use': {
        allowKeys(block, path, ['type', 'id', 'name', 'input', 'cache_control']);
        if (typeof block.id !== 'string' || block.id === '') throw invalid(`${path}.id`, `\`${path}.id\` must be a string.`);
        if (typeof block.name !== 'string' || block.name === '') throw invalid(`${path}.name`, `\`${path}.name\` must be a string.`);
        if (!isObject(block.input)) throw invalid(`${path}.input`, `\`${path}.input\` must be an object.`);
        toolCalls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input) } });
        break;
      }
      case 'thinking':
      case 'redacted_thinking':
        // Thinking of earlier turns is not part of the prompt on Anthropic's side either.
        break;
      default:
        throw unsupportedBlock(block, path);
    }
  }
  const msg: Json = { role: 'assistant', content: texts.length > 0 ? texts.join('\n') : toolCalls.length > 0 ? null : '' };
  if (toolCalls.length > 0) msg.tool_calls = toolCalls;
  return msg;
}

function toToolMessage(block: Json, path: string): Json {
  allowKeys(block, path, ['type', 'tool_use_id', 'content', 'is_error', 'cache_control']);
  if (typeof block.tool_use_id !== 'string' || block.tool_use_id === '') throw invalid(`${path}.tool_use_id`, `\`${path}.tool_use_id\` must be a string.`);
  let content = '';
  const c = block.content;
  if (typeof c === 'string') content = c;
  else if (Array.isArray(c)) {
    const texts: string[] = [];
    c.forEach((part: unknown, i) => {
      const p = `${path}.content.${i}`;
      if (!isObject(part)) throw invalid(p, `\`${p}\` must be a content block.`);
      if (part.type === 'text') texts.push(toText(part, p));
      else if (part.type === 'image') throw unsupported(`${p}.type`, `\`${p}\`: images in tool results are not supported (OpenAI tool messages hold text only).`);
      else throw unsupportedBlock(part, p);
    });
    content = texts.join('\n');
  } else if (c !== undefined && c !== null) throw invalid(`${path}.content`, `\`${path}.content\` must be a string or an array of text blocks.`);
  if (block.is_error !== undefined && typeof block.is_error !== 'boolean') throw invalid(`${path}.is_error`, `\`${path}.is_error\` must be a boolean.`);
  // OpenAI tool messages have no error flag: the model learns of the failure from the text.
  if (block.is_error === true) content = content === '' ? 'Error' : `Error: ${content}`;
  return { role: 'tool', tool_call_id: block.tool_use_id, content };
}

function toText(block: Json, path: string): string {
  // citations on a text block are references shown to people, not prompt content.
  allowKeys(block, path, ['type', 'text', 'cache_control', 'citations']);
  if (typeof block.text !== 'string') throw invalid(`${path}.text`, `\`${path}.text\` must be a string.`);
  return block.text;
}

function toImagePart(block: Json, path: string): Json {
  allowKeys(block, path, ['type', 'source', 'cache_control']);
  const source = block.source;
  if (!isObject(source)) throw invalid(`${path}.source`, `\`${path}.source\` must be an object.`);
  if (source.type === 'base64') {
    allowKeys(source, `${path}.source`, ['type', 'media_type', 'data']);
    if (typeof source.media_type !== 'string' || !IMAGE_TYPES.has(source.media_type)) {
      throw invalid(`${path}.source.media_type`, `\`${path}.source.media_type\` must be one of ${[...IMAGE_TYPES].join(', ')}.`);
    }
    if (typeof source.data !== 'string' || source.data === '') throw invalid(`${path}.source.data`, `\`${path}.source.data\` must be base64 text.`);
    return { type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } };
  }
  if (source.type === 'url') {
    allowKeys(source, `${path}.source`, ['type', 'url']);
    if (typeof source.url !== 'string' || !/^https?:\/\//i.test(source.url)) throw invalid(`${path}.source.url`, `\`${path}.source.url\` must be an http(s) URL.`);
    return { type: 'image_url', image_url: { url: source.url } };
  }
  if (source.type === 'file') throw unsupported(`${path}.source.type`, `\`${path}.source\`: file sources (Files API) are not supported by this gateway.`);
  throw invalid(`${path}.source.type`, `\`${path}.source.type\` must be "base64" or "url".`);
}

function toSystemText(system: unknown): string {
  if (typeof system === 'string') return system;
  if (!Array.isArray(system)) throw invalid('system', '`system` must be a string or an array of text blocks.');
  return system
    .map((b: unknown, i) => {
      const path = `system.${i}`;
      if (!isObject(b) || b.type !== 'text') throw invalid(path, `\`${path}\` must be a text block.`);
      return toText(b, path);
    })
    .join('\n');
}

function toTool(tool: unknown, path: string): Json {
  if (!isObject(tool)) throw invalid(path, `\`${path}\` must be an object.`);
  if (tool.type !== undefined && tool.type !== null && tool.type !== 'custom') {
    throw unsupported(`${path}.type`, `\`${path}\`: Anthropic server tools (${clip(String(tool.type))}) are not available through this gateway; only custom tools are.`);
  }
  // eager_input_streaming only changes how tool input is chunked in a stream.
  allowKeys(tool, path, ['type', 'name', 'description', 'input_schema', 'cache_control', 'strict', 'eager_input_streaming']);
  if (typeof tool.name !== 'string' || tool.name === '') throw invalid(`${path}.name`, `\`${path}.name\` must be a string.`);
  if (!isObject(tool.input_schema)) throw invalid(`${path}.input_schema`, `\`${path}.input_schema\` must be a JSON Schema object.`);
  const fn: Json = { name: tool.name };
  if (tool.description !== undefined) {
    if (typeof tool.description !== 'string') throw invalid(`${path}.description`, `\`${path}.description\` must be a string.`);
    fn.description = tool.description;
  }
  fn.parameters = tool.input_schema;
  if (tool.strict !== undefined) {
    if (typeof tool.strict !== 'boolean') throw invalid(`${path}.strict`, `\`${path}.strict\` must be a boolean.`);
    fn.strict = tool.strict;
  }
  return { type: 'function', function: fn };
}

function toToolChoice(choice: unknown, body: Json): void {
  if (!isObject(choice)) throw invalid('tool_choice', '`tool_choice` must be an object.');
  allowKeys(choice, 'tool_choice', ['type', 'name', 'disable_parallel_tool_use']);
  switch (choice.type) {
    case 'auto':
      body.tool_choice = 'auto';
      break;
    case 'any':
      body.tool_choice = 'required';
      break;
    case 'none':
      body.tool_choice = 'none';
      break;
    case 'tool':
      if (typeof choice.name !== 'string' || choice.name === '') throw invalid('tool_choice.name', '`tool_choice.name` must name a tool.');
      body.tool_choice = { type: 'function', function: { name: choice.name } };
      break;
    default:
      throw invalid('tool_choice.type', '`tool_choice.type` must be "auto", "any", "tool" or "none".');
  }
  const d = choice.disable_parallel_tool_use;
  if (d !== undefined && typeof d !== 'boolean') throw invalid('tool_choice.disable_parallel_tool_use', '`tool_choice.disable_parallel_tool_use` must be a boolean.');
  if (d === true) body.parallel_tool_calls = false;
}

function toUser(metadata: unknown): string | null {
  if (!isObject(metadata)) throw invalid('metadata', '`metadata` must be an object.');
  allowKeys(metadata, 'metadata', ['user_id']);
  const id = metadata.user_id;
  if (id === undefined || id === null) return null;
  if (typeof id !== 'string') throw invalid('metadata.user_id', '`metadata.user_id` must be a string.');
  return id;
}

function toOutputConfig(config: unknown, body: Json): void {
  if (!isObject(config)) throw invalid('output_config', '`output_config` must be an object.');
  allowKeys(config, 'output_config', ['format', 'effort']);
  if (config.effort !== undefined && config.effort !== null) throw unsupported('output_config.effort', '`output_config.effort` is not supported by this gateway.');
  const format = config.format;
  if (format === undefined || format === null) return;
  if (!isObject(format) || format.type !== 'json_schema' || !isObject(format.schema)) {
    throw invalid('output_config.format', '`output_config.format` must be {"type": "json_schema", "schema": {…}}.');
  }
  allowKeys(format, 'output_config.format', ['type', 'schema']);
  // Structured output: vLLM and SGLang enforce it with guided decoding.
  body.response_format = { type: 'json_schema', json_schema: { name: 'output', schema: format.schema, strict: true } };
}

function checkThinking(thinking: unknown): void {
  if (isObject(thinking) && thinking.type === 'disabled') return;
  throw unsupported('thinking', '`thinking` (extended thinking) is not supported by this gateway; leave it out or set {"type": "disabled"}.');
}

function unsupportedBlock(block: Json, path: string): GatewayError {
  const type = clip(String(block.type));
  return unsupported(`${path}.type`, `\`${path}\`: content blocks of type "${type}" are not supported by this gateway.`);
}

function allowKeys(obj: Json, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      const p = path === '' ? clip(key) : `${path}.${clip(key)}`;
      throw unsupported(p, `\`${p}\` is not supported by this gateway.`);
    }
  }
}

function invalid(param: string, message: string): GatewayError {
  return new GatewayError('invalid_request', { message, ...(param === '' ? {} : { param }) });
}

function unsupported(param: string, message: string): GatewayError {
  return new GatewayError('unsupported_parameter', { message, param });
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1;
}

/** clip keeps client-sent names short in error messages. */
function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}
