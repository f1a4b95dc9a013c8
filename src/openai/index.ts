export type { Usage, ChatMessage, InferenceRequestBody, ModelCard, ModelList } from './types.js';
