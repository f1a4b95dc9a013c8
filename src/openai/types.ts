/**
 * The parts of the OpenAI wire format the gateway and the simulator touch. Only what we read or
 * write is typed; everything else passes through untouched.
 */

/** Usage is the token accounting object of OpenAI responses and of the final stream chunk. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** ChatMessage is one entry of a chat request's `messages` (content may also be an array of parts). */
export interface ChatMessage {
  role: string;
  content?: string | Array<{ type: string; text?: string }> | null;
}

/** InferenceRequestBody is the subset of chat/completions/embeddings request fields we read. */
export interface InferenceRequestBody {
  model?: unknown;
  messages?: unknown;
  prompt?: unknown;
  input?: unknown;
  stream?: unknown;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
  stream_options?: { include_usage?: unknown } | null;
}

/** ModelCard is one entry of a `/v1/models` list. */
export interface ModelCard {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  root?: string;
  /** parent is the base model of a LoRA adapter (vLLM); absent or null for a base model. */
  parent?: string | null;
}

/** ModelList is the body of `GET /v1/models`. */
export interface ModelList {
  object: 'list';
  data: ModelCard[];
}
