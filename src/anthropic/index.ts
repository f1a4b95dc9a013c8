export { toChatRequest, type ChatRequest, type ChatRequestOptions } from './translate-request.js';
export { toAnthropicMessage, toStopReason, toToolInput, TranslationError, type AnthropicMessage, type AnswerContext, type StopReason } from './translate-response.js';
export { StreamTranslator } from './stream-translator.js';
export { ResponseTranslator } from './response-translator.js';
export { toAnthropicError } from './errors.js';
