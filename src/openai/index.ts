export type { Usage, ChatMessage, InferenceRequestBody, ModelCard, ModelList } from './types.js';
export { isJsonSpace, isTopLevelStreamTrue, isTrueAt, maxTokensIn, memberValueAt, topLevelValueAt, uintAt } from './json-scan.js';
