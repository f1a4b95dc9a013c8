/**
 * A vLLM-compatible upstream simulator.
 *
 * It speaks the subset of vLLM's OpenAI server the gateway proxies (chat/completions, completions,
 * embeddings, models, health, Prometheus metrics) with deterministic output ("tok tok ..."), so the
 * gateway can be tested and benchmarked without GPUs. What it simulates and why:
 *  - latency: time to first token and inter-token latency, so streaming/timeouts behave realistically;
 *  - scheduling: a max-concurrency limit with a FIFO (or, with schedulingPolicy priority, priority) waiting queue, exported as vLLM's
 *    `num_requests_running` / `num_requests_waiting` gauges that load-aware routing reads;
 *  - cancellation: a client disconnect stops generation and is counted, so gateway tests can prove
 *    that dropping the downstream client cancels the upstream request;
 *  - faults: `x-sim-*` request headers inject status codes, delays and mid-stream connection resets;
 *  - identity: every response names the instance (`x-simulator-id`, `x-sim-id`) and `/metrics` counts
 *    its requests under `sim_requests_total{simulator_id=...}`, so tests can prove how a balancer spread load;
 *  - engine behaviour that makes balancing matter: a speed factor (slower hardware), prefill contention
 *    (ttft grows with the queue) and a prefix cache (a repeated prompt prefix answers its first token sooner);
 *  - tool calling, enough for protocol translation tests: a chat request with `tools` whose last message is
 *    the user's is answered with a call to the first (or the named) tool, with arguments made from its
 *    parameter schema; once the last message is a tool result, the answer is text again. A request with
 *    `stop` that ends before max_tokens reports its first stop string as vLLM's `stop_reason`.
 * The zero-delay path writes everything synchronously with pre-built strings because the simulator
 * doubles as the "infinitely fast" upstream of the gateway's overhead benchmarks.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { ChatMessage, InferenceRequestBody, ModelList, Usage } from '../openai/index.js';

/** SimulatorOptions configures one simulated vLLM instance. */
export interface SimulatorOptions {
  /** Served model id; requests naming another model get vLLM's 404. */
  model: string;
  /** Delay before the first generated token, in ms (default 0). */
  ttftMs?: number;
  /** Delay between streamed tokens, in ms (default 0; non-stream responses only wait ttftMs unless nonStreamDecode). */
  itlMs?: number;
  /**
   * Non-streamed answers also spend one inter-token delay per generated token after the first (as an engine
   * does, whether or not it streams), so they take as long as the same request streamed (default false: ttft only).
   */
  nonStreamDecode?: boolean;
  /**
   * Prefill cost: a request's ttft grows by this many ms per prompt token (default 0), times speedFactor;
   * a prefix-cache hit shortens it like the rest of the ttft.
   */
  prefillMsPerToken?: number;
  /**
   * KV-cache size in tokens (default 0 = not modelled). A running request holds ceil((prompt + generated
   * tokens) / 16) blocks of 16 tokens, reported as vllm:kv_cache_usage_perc (held / all blocks). A request
   * starts only when the blocks of its prompt plus its max_tokens fit beside those the running requests may
   * still grow into (so nothing is ever preempted); until then it waits, and so does every request behind it
   * (first come, first served). A request larger than the whole cache starts alone.
   */
  kvCacheTokens?: number;
  /** Requests generating at once; more wait in a FIFO queue (default 0 = unlimited). */
  maxConcurrency?: number;
  /** Probability 0..1 that an inference request is answered with a 500 (default 0). */
  failRate?: number;
  /** Random source for failRate, injectable for deterministic tests (default Math.random). */
  random?: () => number;
  /**
   * Instance id, sent as the `x-simulator-id` and `x-sim-id` response headers and as the `simulator_id`
   * label of `sim_requests_total` (default `host:port` of the bound address, e.g. `127.0.0.1:9001`).
   */
  id?: string;
  /** Completion tokens generated when the request has no max_tokens (default 16, like vLLM completions). */
  defaultMaxTokens?: number;
  /**
   * Multiplies every generation delay (ttft, including the x-sim-ttft-ms / x-sim-itl-ms overrides and the
   * ttftPerWaitingMs contention, and itl): 3 means three times slower (default 1). Not x-sim-latency-ms.
   */
  speedFactor?: number;
  /**
   * Prefill contention: a request's ttft grows by this many ms per request still waiting in the queue
   * when it starts generating (default 0). Only has an effect with maxConcurrency (no queue otherwise).
   */
  ttftPerWaitingMs?: number;
  /**
   * Queue order: "fcfs" (default) or "priority": the body's `priority` (an integer, default 0), lower
   * first and arrival order within one, as vLLM's `--scheduling-policy priority`. Under fcfs a
   * non-zero priority is refused with 400, as vLLM does.
   */
  schedulingPolicy?: 'fcfs' | 'priority';
  /** Prefix-cache model (default off); see PrefixCacheOptions. */
  prefixCache?: PrefixCacheOptions;
  /** LoRA adapters served as extra model ids (vLLM --lora-modules); listed in /v1/models with the model as parent. */
  loraModules?: readonly string[];
  /** Adapters loaded at once (vLLM --max-loras, default 1): a request for another one loads it, evicting the least recently used. */
  maxLoras?: number;
  /** ttft added to a request whose adapter had to be loaded (default 100 ms, times speedFactor). */
  loraLoadMs?: number;
}

/**
 * PrefixCacheOptions model vLLM's automatic prefix caching per request: the prompt prefix (chat: the
 * system/developer messages and the first user message; completions: the prompt) cut to `prefixChars` is
 * looked up in an LRU of `capacity` prefixes when the request starts generating. A hit multiplies the
 * request's ttft by `hitTtftFactor`; a miss inserts the prefix.
 *
 * With `blockChars` > 0 the cache works per block instead, as vLLM's does: the whole prompt (every
 * message) is cut into blocks of `blockChars` characters, each keyed by a hash chained over all the
 * text before it, and `capacity` counts blocks. A request reuses its leading blocks that are cached;
 * its ttft is multiplied by hitTtftFactor + (1 - hitTtftFactor) x (the share of blocks not cached),
 * and the counters count blocks (as vLLM counts tokens). Then all its blocks are cached, its first
 * block the most recently used, so eviction takes the tails of prompts first.
 */
export interface PrefixCacheOptions {
  /** Prefixes (or blocks, with blockChars) remembered (LRU); 0 turns the cache off. */
  capacity: number;
  /** Characters of the prompt that form the prefix (default 256); unused with blockChars. */
  prefixChars: number;
  /** ttft multiplier on a hit (default 0.2). */
  hitTtftFactor: number;
  /** Block size in characters: caches the whole prompt block by block (0 or unset: the prefix of prefixChars per request). */
  blockChars?: number;
}

/** ReceivedRequest is one request as the simulator saw it, kept for test assertions. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * SimulatorStats are the simulator's counters; every inference request ends as exactly one of
 * completed, aborted or failed, so `requests === completed + aborted + failed` once idle.
 */
export interface SimulatorStats {
  /** Inference requests received (POST to chat/completions, completions, embeddings). */
  requests: number;
  /** Inference responses fully sent, errors (4xx/5xx) included. */
  completed: number;
  /** Inference requests whose client disconnected before the response was fully sent. */
  aborted: number;
  /** Streams the simulator broke on purpose (`x-sim-fail-after-chunks`) or after an internal error. */
  failed: number;
  /** Requests currently holding a generation slot. */
  running: number;
  /** Requests queued for a generation slot. */
  waiting: number;
  /** Requests that found their prompt prefix in the prefix cache (0 without prefixCache). */
  prefixHits: number;
  /** Requests looked up in the prefix cache (0 without prefixCache). */
  prefixQueries: number;
  /** Adapter loads: requests whose LoRA adapter was not loaded when they started. */
  loraLoads: number;
}

type Kind = 0 | 1 | 2;
const CHAT: Kind = 0;
const COMPLETION: Kind = 1;
const EMBEDDING: Kind = 2;

// Job lifecycle states (plain numbers: cheap to compare on the hot path).
const NEW = 0;
const WAITING = 1;
const RUNNING = 2;
const DONE = 3;

const INFERENCE_PATHS: ReadonlyMap<string, Kind> = new Map<string, Kind>([
  ['/v1/chat/completions', CHAT],
  ['/v1/completions', COMPLETION],
  ['/v1/embeddings', EMBEDDING],
]);
const GET_PATHS: ReadonlySet<string> = new Set(['/health', '/metrics', '/v1/models', '/sim/stats']);

const RECEIVED_CAP = 100;
// Bodies beyond this are refused with 413 instead of being buffered without bound.
const MAX_BODY_CHARS = 64 * 1024 * 1024;
// vLLM rejects prompt + max_tokens beyond max_model_len with a 400; gpt-oss serves 131072.
const MAX_MODEL_LEN = 131_072;
const TOKEN = 'tok ';
const EMBEDDING_DIM = 8;
const TEXT_CACHE_MAX_TOKENS = 4096;
/** KV_BLOCK_TOKENS is vLLM's default KV-cache block size (--block-size 16). */
const KV_BLOCK_TOKENS = 16;

// Constant tails of SSE events; a job's `head` (id/created/model) is prepended per event.
const CHAT_ROLE_TAIL = '{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n';
const CHAT_TOKEN_TAIL = `{"index":0,"delta":{"content":"${TOKEN}"},"logprobs":null,"finish_reason":null}]}\n\n`;
const CHAT_LAST_LENGTH_TAIL = `{"index":0,"delta":{"content":"${TOKEN}"},"logprobs":null,"finish_reason":"length"}]}\n\n`;
const CHAT_LAST_STOP_TAIL = `{"index":0,"delta":{"content":"${TOKEN}"},"logprobs":null,"finish_reason":"stop"}]}\n\n`;
const CHAT_EMPTY_TAIL = '{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop"}]}\n\n';
const TEXT_TOKEN_TAIL = `{"index":0,"text":"${TOKEN}","logprobs":null,"finish_reason":null}]}\n\n`;
const TEXT_LAST_LENGTH_TAIL = `{"index":0,"text":"${TOKEN}","logprobs":null,"finish_reason":"length"}]}\n\n`;
const TEXT_LAST_STOP_TAIL = `{"index":0,"text":"${TOKEN}","logprobs":null,"finish_reason":"stop"}]}\n\n`;
const TEXT_EMPTY_TAIL = '{"index":0,"text":"","logprobs":null,"finish_reason":"stop"}]}\n\n';
const SSE_DONE = 'data: [DONE]\n\n';

const NOT_FOUND_BODY = '{"detail":"Not Found"}';
const METHOD_NOT_ALLOWED_BODY = '{"detail":"Method Not Allowed"}';

/** Per-request state of an inference request; one object so the hot path allocates little. */
interface Job {
  readonly res: ServerResponse;
  readonly kind: Kind;
  state: number;
  timer: NodeJS.Timeout | undefined;
  failed: boolean;
  success: boolean;
  closed: boolean;
  stream: boolean;
  includeUsage: boolean;
  promptTokens: number;
  maxTokens: number;
  n: number;
  sent: number;
  ttft: number;
  itl: number;
  failAfter: number;
  status: number;
  inputs: string[] | undefined;
  head: string;
  /** Prompt prefix for the prefix cache; only computed when the cache is on. */
  prefix: string | undefined;
  /** Chained block keys of the whole prompt, in block mode of the prefix cache; undefined otherwise. */
  blocks: number[] | undefined;
  /** LoRA adapter the request names; undefined for the base model. */
  lora: string | undefined;
  /** Tool call to answer with instead of text (chat requests with tools); undefined otherwise. */
  toolCall: { name: string; args: string } | undefined;
  /** First stop string of the request: reported as `stop_reason` when generation ends before max_tokens. */
  stopMatch: string | undefined;
  /** priority is the body's `priority` (scheduling policy priority: lower goes first). */
  priority: number;
  /** kvReserved is the KV blocks the job may hold at most (prompt + max_tokens), counted while it runs; 0 without a KV cache. */
  kvReserved: number;
  /** decodeAtMs is when a non-streamed job's first token was due (its decode time counts from there); 0 otherwise. */
  decodeAtMs: number;
}

/** Thrown by request validation; carries the vLLM error to answer with. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
  ) {
    super(message);
  }
}

/** Simulator is one simulated vLLM server bound to a local port. */
export class Simulator {
  private readonly model: string;
  private readonly modelJson: string;
  private readonly modelLabel: string;
  private readonly ttftMs: number;
  private readonly itlMs: number;
  private readonly maxConcurrency: number;
  private readonly isPriorityScheduling: boolean;
  private readonly failRate: number;
  private readonly random: () => number;
  private readonly defaultMaxTokens: number;
  private readonly speedFactor: number;
  private readonly ttftPerWaitingMs: number;
  private readonly prefillMsPerToken: number;
  private readonly isNonStreamDecode: boolean;
  /** kvBlocks is the KV cache's size in blocks of KV_BLOCK_TOKENS (0: not modelled). */
  private readonly kvBlocks: number;
  /** kvReservedTotal is the sum of the running jobs' kvReserved. */
  private kvReservedTotal = 0;
  /** LRU of prompt prefixes (Map keeps insertion order: first key = least recently used); undefined = off. */
  private readonly prefixLru: Map<string | number, true> | undefined;
  /** prefixBlockChars > 0: the cache holds prompt blocks of this many characters (see PrefixCacheOptions). */
  private readonly prefixBlockChars: number;
  private readonly prefixCapacity: number;
  private readonly prefixChars: number;
  private readonly prefixHitFactor: number;
  private modelsBody: string;
  private readonly idPrefix = randomBytes(6).toString('hex');
  private readonly server: Server;
  private readonly st: SimulatorStats = {
    requests: 0,
    completed: 0,
    aborted: 0,
    failed: 0,
    running: 0,
    waiting: 0,
    prefixHits: 0,
    prefixQueries: 0,
    loraLoads: 0,
  };
  private readonly loras: Set<string>;
  private readonly createdAt = Math.floor(Date.now() / 1000);
  private readonly maxLoras: number;
  private readonly loraLoadMs: number;
  /** Loaded adapters, least recently used first (Map insertion order). */
  private readonly loadedLoras = new Map<string, true>();
  private readonly queue: Job[] = [];
  private readonly active = new Set<Job>();
  private readonly log: ReceivedRequest[] = [];
  private readonly textCache = new Map<number, string>();
  private simId: string;
  private simIdLabel = '';
  private readonly idGiven: boolean;
  private seq = 0;
  private admitting = false;
  private promptTokensTotal = 0;
  private generationTokensTotal = 0;
  private successTotal = 0;

  constructor(opts: SimulatorOptions) {
    this.model = opts.model;
    this.modelJson = JSON.stringify(opts.model);
    this.modelLabel = promLabel(opts.model);
    this.ttftMs = nonNegative(opts.ttftMs);
    this.itlMs = nonNegative(opts.itlMs);
    this.maxConcurrency = Math.floor(nonNegative(opts.maxConcurrency));
    this.isPriorityScheduling = opts.schedulingPolicy === 'priority';
    this.failRate = Math.min(1, nonNegative(opts.failRate));
    this.random = opts.random ?? Math.random;
    this.defaultMaxTokens = Math.max(1, Math.floor(opts.defaultMaxTokens ?? 16));
    this.speedFactor = opts.speedFactor !== undefined && Number.isFinite(opts.speedFactor) && opts.speedFactor >= 0 ? opts.speedFactor : 1;
    this.ttftPerWaitingMs = nonNegative(opts.ttftPerWaitingMs);
    this.prefillMsPerToken = nonNegative(opts.prefillMsPerToken);
    this.isNonStreamDecode = opts.nonStreamDecode === true;
    this.kvBlocks = Math.ceil(Math.floor(nonNegative(opts.kvCacheTokens)) / KV_BLOCK_TOKENS);
    const pc = opts.prefixCache;
    this.prefixCapacity = pc === undefined ? 0 : Math.floor(nonNegative(pc.capacity));
    this.prefixLru = this.prefixCapacity > 0 ? new Map() : undefined;
    this.prefixChars = pc !== undefined && pc.prefixChars >= 1 ? Math.floor(pc.prefixChars) : 256;
    this.prefixHitFactor = pc !== undefined && Number.isFinite(pc.hitTtftFactor) && pc.hitTtftFactor >= 0 ? pc.hitTtftFactor : 0.2;
    this.prefixBlockChars = pc?.blockChars !== undefined && pc.blockChars >= 1 ? Math.floor(pc.blockChars) : 0;
    this.idGiven = opts.id !== undefined;
    this.simId = opts.id ?? '127.0.0.1:0';
    this.simIdLabel = promLabel(this.simId);
    this.loras = new Set(opts.loraModules ?? []);
    this.maxLoras = Math.max(1, Math.floor(opts.maxLoras ?? 1));
    this.loraLoadMs = nonNegative(opts.loraLoadMs ?? 100);
    this.modelsBody = this.listModels();
    this.server = createServer({ noDelay: true }, (req, res) => this.handle(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.refuseUpgrade(req, socket, head));
    // Longer than typical client/proxy idle timeouts (60s), so the upstream never closes a pooled
    // connection the gateway is about to reuse.
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
  }

  /** listen binds the server (default port 0 on 127.0.0.1) and resolves the bound port. */
  listen(port = 0, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ port, host, backlog: 4096 }, () => {
        this.server.off('error', onError);
        const bound = this.port;
        if (!this.idGiven) {
          this.simId = this.url.slice('http://'.length);
          this.simIdLabel = promLabel(this.simId);
        }
        resolve(bound);
      });
    });
  }

  /** close stops the server, drops every connection (in-flight requests count as aborted) and resolves when closed. */
  async close(): Promise<void> {
    if (this.server.listening) {
      await new Promise<void>((resolve, reject) => {
        this.server.close((err) => (err ? reject(err) : resolve()));
        this.server.closeAllConnections();
      });
    }
    // The server can report closed before each response's 'close' event has run; account for those
    // jobs now (onClose is idempotent) so stats are final and no timer outlives the server.
    for (const job of [...this.active]) this.onClose(job);
  }

  /** port is the bound TCP port (0 before listen). */
  get port(): number {
    const addr = this.server.address();
    return addr !== null && typeof addr === 'object' ? (addr as AddressInfo).port : 0;
  }

  /** id is the instance id sent in `x-simulator-id` (the default `host:port` is known once listening). */
  get id(): string {
    return this.simId;
  }

  /** url is the base URL clients should use, e.g. `http://127.0.0.1:8000`. */
  get url(): string {
    const addr = this.server.address();
    if (addr === null || typeof addr !== 'object') return 'http://127.0.0.1:0';
    const a = addr.address;
    if (a === '0.0.0.0' || a === '::' || a === '') return `http://127.0.0.1:${addr.port}`;
    return a.includes(':') ? `http://[${a}]:${addr.port}` : `http://${a}:${addr.port}`;
  }

  /** stats is a snapshot of the counters. */
  get stats(): Readonly<SimulatorStats> {
    return { ...this.st };
  }

  /** received is a snapshot of the last 100 requests (any path), newest last. */
  get received(): readonly ReceivedRequest[] {
    return this.log.slice();
  }

  /** waitFor polls the stats until `pred` holds, rejecting after `timeoutMs` (default 2000). */
  waitFor(pred: (s: SimulatorStats) => boolean, timeoutMs = 2000): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + timeoutMs;
      const check = (): void => {
        let ok: boolean;
        try {
          ok = pred(this.stats);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (ok) resolve();
        else if (Date.now() >= deadline) {
          reject(new Error(`Simulator.waitFor timed out after ${timeoutMs}ms; stats=${JSON.stringify(this.st)}`));
        } else setTimeout(check, 5);
      };
      check();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Request entry

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const kind = INFERENCE_PATHS.get(path);
    let job: Job | undefined;
    if (kind !== undefined && req.method === 'POST') {
      this.st.requests++;
      const j = newJob(res, kind);
      job = j;
      this.active.add(j);
      // 'close' fires both after a normal finish and on a premature disconnect; writableFinished
      // tells them apart. This is the abort detection the gateway's cancellation tests rely on.
      res.once('close', () => this.onClose(j));
    }
    req.setEncoding('utf8');
    let body = '';
    let tooLarge = false;
    req.on('data', (chunk: string) => {
      if (tooLarge) return;
      if (body.length + chunk.length > MAX_BODY_CHARS) {
        tooLarge = true;
        body = '';
      } else body += chunk;
    });
    req.on('end', () => {
      this.record(req, url, body);
      try {
        if (job !== undefined) this.inference(job, req, body, tooLarge);
        else if (!this.updateLoras(req, res, path, body)) this.serveOther(req, res, path);
      } catch (err) {
        this.internalError(res, job, err);
      }
    });
  }

  /**
   * refuseUpgrade answers a protocol upgrade (WebSocket) as an HTTP server without WebSocket
   * support does: as the plain GET it also is (404), on a connection that stays open and serves
   * the requests written behind it. (node:http on its own would drop those bytes.)
   */
  private refuseUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.record(req, req.url ?? '/', '');
    socket.write(`HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: ${NOT_FOUND_BODY.length}\r\nx-simulator-id: ${this.simId}\r\nx-sim-id: ${this.simId}\r\n\r\n${NOT_FOUND_BODY}`);
    // The bytes after the upgrade head go back in front, and node:http parses them as a new connection.
    if (head.length > 0) socket.unshift(head);
    this.server.emit('connection', socket);
  }

  private record(req: IncomingMessage, url: string, body: string): void {
    if (this.log.length >= RECEIVED_CAP) this.log.shift();
    this.log.push({ method: req.method ?? '', url, headers: req.headers, body });
  }

  private serveOther(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (req.method === 'GET' && GET_PATHS.has(path)) {
      switch (path) {
        case '/health':
          // vLLM answers its health probe with 200 and an empty body.
          res.writeHead(200, { 'content-length': '0', 'x-simulator-id': this.simId, 'x-sim-id': this.simId });
          res.end();
          return;
        case '/metrics':
          this.send(res, 200, this.metricsText(), 'text/plain; version=0.0.4; charset=utf-8');
          return;
        case '/v1/models':
          this.send(res, 200, this.modelsBody);
          return;
        default:
          this.send(res, 200, JSON.stringify(this.st));
          return;
      }
    }
    if (INFERENCE_PATHS.has(path) || GET_PATHS.has(path)) {
      this.send(res, 405, METHOD_NOT_ALLOWED_BODY, 'application/json', { allow: INFERENCE_PATHS.has(path) ? 'POST' : 'GET' });
      return;
    }
    this.send(res, 404, NOT_FOUND_BODY);
  }

  // ---------------------------------------------------------------------------------------------
  // Inference: validate -> x-sim-latency -> injected errors -> queue -> ttft -> generate

  private inference(job: Job, req: IncomingMessage, body: string, tooLarge: boolean): void {
    try {
      if (tooLarge) throw new RequestError(413, 'Request body too large.', 'BadRequestError');
      this.parseRequest(job, body);
    } catch (err) {
      if (err instanceof RequestError) {
        this.finishError(job, err.status, vllmError(err.message, err.type, err.status));
        return;
      }
      throw err;
    }
    const h = req.headers;
    job.ttft = headerInt(h['x-sim-ttft-ms']) ?? this.ttftMs;
    job.itl = headerInt(h['x-sim-itl-ms']) ?? this.itlMs;
    if (this.speedFactor !== 1) {
      job.ttft *= this.speedFactor;
      job.itl *= this.speedFactor;
    }
    const chunks = headerInt(h['x-sim-chunks']);
    if (chunks !== undefined && job.kind !== EMBEDDING) job.n = Math.min(chunks, MAX_MODEL_LEN);
    const failAfter = headerInt(h['x-sim-fail-after-chunks']);
    if (failAfter !== undefined && job.stream) job.failAfter = failAfter;
    const status = headerInt(h['x-sim-status']);
    if (status !== undefined && status >= 300 && status <= 599) job.status = status;
    this.delay(job, headerInt(h['x-sim-latency-ms']) ?? 0, this.afterLatency);
  }

  /** Fills the job from the JSON body, throwing RequestError with vLLM's status/type on bad input. */
  private parseRequest(job: Job, body: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      throw new RequestError(400, `Invalid JSON body: ${err instanceof Error ? err.message : String(err)}`, 'BadRequestError');
    }
    if (!isRecord(parsed)) throw new RequestError(400, 'Request body must be a JSON object.', 'BadRequestError');
    const b = parsed as InferenceRequestBody;
    if (b.model !== undefined && b.model !== null) {
      if (typeof b.model !== 'string') throw new RequestError(400, 'model must be a string.', 'BadRequestError');
      if (b.model !== this.model) {
        if (!this.loras.has(b.model)) throw new RequestError(404, `The model \`${b.model}\` does not exist.`, 'NotFoundError');
        job.lora = b.model;
      }
    }
    if (job.kind === EMBEDDING) {
      job.inputs = embeddingInputs(b.input);
      let tokens = 0;
      for (const text of job.inputs) tokens += Math.max(1, Math.ceil(text.length / 4));
      job.promptTokens = tokens;
      return;
    }
    job.promptTokens = job.kind === CHAT ? chatPromptTokens(b.messages) : completionPromptTokens(b.prompt);
    const raw = job.kind === CHAT ? (b.max_completion_tokens ?? b.max_tokens) : b.max_tokens;
    let max = this.defaultMaxTokens;
    if (raw !== undefined && raw !== null) {
      if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1) {
        throw new RequestError(400, `max_tokens must be an integer of at least 1, got ${JSON.stringify(raw)}.`, 'BadRequestError');
      }
      max = raw;
    }
    if (job.promptTokens + max > MAX_MODEL_LEN) {
      throw new RequestError(
        400,
        `This model's maximum context length is ${MAX_MODEL_LEN} tokens. However, you requested ${job.promptTokens + max} tokens ` +
          `(${job.promptTokens} in the messages, ${max} in the completion). Please reduce the length of the messages or completion.`,
        'BadRequestError',
      );
    }
    const priority = (parsed as { priority?: unknown }).priority;
    if (priority !== undefined && priority !== null) {
      if (typeof priority !== 'number' || !Number.isInteger(priority)) throw new RequestError(400, 'priority must be an integer.', 'BadRequestError');
      if (priority !== 0 && !this.isPriorityScheduling) throw new RequestError(400, `Got priority ${priority} but Priority scheduling is not enabled.`, 'BadRequestError');
      job.priority = priority;
    }
    job.maxTokens = max;
    job.n = max;
    job.stream = b.stream === true;
    if (job.kind === CHAT) {
      job.toolCall = toolCallFor(parsed);
      if (job.toolCall !== undefined) job.n = Math.min(max, Math.max(1, Math.ceil((job.toolCall.name.length + job.toolCall.args.length) / 4)));
      job.stopMatch = firstStop(parsed.stop);
    }
    const so = b.stream_options;
    job.includeUsage = job.stream && isRecord(so) && so.include_usage === true;
    if (this.prefixLru !== undefined && this.prefixBlockChars > 0) {
      job.blocks = promptBlocks(job.kind === CHAT ? chatText(b.messages as unknown[]) : completionPrefix(b.prompt, Infinity), this.prefixBlockChars);
    } else if (this.prefixLru !== undefined) {
      job.prefix = job.kind === CHAT ? chatPrefix(b.messages as unknown[], this.prefixChars) : completionPrefix(b.prompt, this.prefixChars);
    }
  }

  private readonly afterLatency = (job: Job): void => {
    if (job.status !== 0) {
      this.finishError(job, job.status, `{"error":{"message":"simulated","type":"sim_error","code":${job.status}}}`);
      return;
    }
    if (this.failRate > 0 && this.random() < this.failRate) {
      this.finishError(job, 500, vllmError('Simulated failure (failRate).', 'InternalServerError', 500));
      return;
    }
    this.acquire(job);
  };

  /** Runs the job now if a slot is free (and nobody queued ahead), else queues it FIFO. */
  private acquire(job: Job): void {
    if (this.kvBlocks > 0 && job.kind !== EMBEDDING) job.kvReserved = Math.ceil((job.promptTokens + job.maxTokens) / KV_BLOCK_TOKENS);
    if (this.queue.length === 0 && this.hasRoomFor(job)) {
      this.st.running++;
      job.state = RUNNING;
      this.kvReservedTotal += job.kvReserved;
      this.start(job);
    } else {
      job.state = WAITING;
      this.st.waiting++;
      if (!this.isPriorityScheduling) this.queue.push(job);
      else {
        // Lower priority values first; arrival order within one.
        let i = this.queue.length;
        while (i > 0 && this.queue[i - 1]!.priority > job.priority) i--;
        this.queue.splice(i, 0, job);
      }
    }
  }

  /** hasRoomFor tells whether a job may start now: a free batch slot, and its KV blocks fit (or nothing else runs). */
  private hasRoomFor(job: Job): boolean {
    if (this.maxConcurrency > 0 && this.st.running >= this.maxConcurrency) return false;
    return job.kvReserved === 0 || this.st.running === 0 || this.kvReservedTotal + job.kvReserved <= this.kvBlocks;
  }

  /** Hands freed slots to queued jobs; iterative (guarded) so long zero-delay queues cannot recurse deeply. */
  private admitNext(): void {
    if (this.admitting) return;
    this.admitting = true;
    try {
      while (this.queue.length > 0 && this.hasRoomFor(this.queue[0]!)) {
        const next = this.queue.shift();
        if (next === undefined) break;
        this.st.waiting--;
        this.st.running++;
        next.state = RUNNING;
        this.kvReservedTotal += next.kvReserved;
        this.guarded(next, this.start);
      }
    } finally {
      this.admitting = false;
    }
  }

  private readonly start = (job: Job): void => {
    this.promptTokensTotal += job.promptTokens;
    if (this.prefillMsPerToken > 0) job.ttft += this.prefillMsPerToken * job.promptTokens * this.speedFactor;
    if (job.prefix !== undefined) this.lookupPrefix(job);
    else if (job.blocks !== undefined) this.lookupBlocks(job, job.blocks);
    if (job.lora !== undefined) this.useLora(job.lora, job);
    // Prefill contention: the requests still queued behind this one at the moment it starts.
    if (this.ttftPerWaitingMs > 0 && this.st.waiting > 0) job.ttft += this.ttftPerWaitingMs * this.st.waiting * this.speedFactor;
    if (!job.stream) {
      if (job.kind === EMBEDDING) this.delay(job, job.ttft, this.finishEmbedding);
      else if (this.isNonStreamDecode && job.n > 1 && job.itl > 0) {
        job.decodeAtMs = Date.now() + job.ttft;
        this.delay(job, job.ttft + (job.n - 1) * job.itl, this.finishText);
      } else this.delay(job, job.ttft, this.finishText);
      return;
    }
    const chat = job.kind === CHAT;
    const id = chat ? `chatcmpl-${this.nextId()}` : `cmpl-${this.nextId()}`;
    const object = chat ? 'chat.completion.chunk' : 'text_completion';
    job.head = `data: {"id":"${id}","object":"${object}","created":${nowSeconds()},"model":${this.modelJson},"choices":[`;
    job.res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-simulator-id': this.simId,
      'x-sim-id': this.simId,
    });
    // vLLM opens a chat stream with an empty assistant delta; text completions have no such event.
    if (chat) job.res.write(job.head + CHAT_ROLE_TAIL);
    this.delay(job, job.ttft, job.toolCall === undefined ? this.pump : this.streamToolCall);
  };

  /** listModels is the /v1/models body: the model, then each adapter with the model as parent (as vLLM lists them). */
  private listModels(): string {
    const created = this.createdAt;
    const models: ModelList = {
      object: 'list',
      data: [
        { id: this.model, object: 'model', created, owned_by: 'vllm', root: this.model, parent: null },
        ...[...this.loras].map((id) => ({ id, object: 'model' as const, created, owned_by: 'vllm', root: id, parent: this.model })),
      ],
    };
    return JSON.stringify(models);
  }

  /**
   * updateLoras serves vLLM's run-time adapter API (VLLM_ALLOW_RUNTIME_LORA_UPDATING):
   * POST /v1/load_lora_adapter {"lora_name", "lora_path"} adds an adapter to /v1/models, POST
   * /v1/unload_lora_adapter {"lora_name"} removes it. False for any other request.
   */
  private updateLoras(req: IncomingMessage, res: ServerResponse, path: string, body: string): boolean {
    const isLoad = path === '/v1/load_lora_adapter';
    if (req.method !== 'POST' || (!isLoad && path !== '/v1/unload_lora_adapter')) return false;
    let b: { lora_name?: unknown; lora_path?: unknown } = {};
    try {
      const parsed: unknown = JSON.parse(body);
      if (isRecord(parsed)) b = parsed;
    } catch {
      // Answered below as a missing name.
    }
    const name = b.lora_name;
    if (typeof name !== 'string' || name === '' || (isLoad && (typeof b.lora_path !== 'string' || b.lora_path === ''))) {
      this.send(res, 400, vllmError(isLoad ? "Both 'lora_name' and 'lora_path' must be provided." : "'lora_name' needs to be provided to unload a LoRA adapter.", 'BadRequestError', 400));
    } else if (isLoad && (this.loras.has(name) || name === this.model)) {
      this.send(res, 400, vllmError(`The lora adapter '${name}' has already been loaded.`, 'InvalidUserInput', 400));
    } else if (!isLoad && !this.loras.has(name)) {
      this.send(res, 404, vllmError(`The lora adapter '${name}' cannot be found.`, 'NotFoundError', 404));
    } else {
      if (isLoad) this.loras.add(name);
      else {
        this.loras.delete(name);
        this.loadedLoras.delete(name);
      }
      this.modelsBody = this.listModels();
      this.send(res, 200, `Success: LoRA adapter '${name}' ${isLoad ? 'added' : 'removed'} successfully.`, 'text/plain; charset=utf-8');
    }
    return true;
  }

  /** useLora marks the adapter most recently used, loading it (a longer ttft, evicting the least recently used one) when it was not loaded. */
  private useLora(lora: string, job: Job): void {
    if (this.loadedLoras.delete(lora)) {
      this.loadedLoras.set(lora, true);
      return;
    }
    if (this.loadedLoras.size >= this.maxLoras) this.loadedLoras.delete(this.loadedLoras.keys().next().value!);
    this.loadedLoras.set(lora, true);
    this.st.loraLoads++;
    job.ttft += this.loraLoadMs * this.speedFactor;
  }

  /**
   * Prefix-cache lookup when the request starts generating (its prefill): a hit shortens its own ttft
   * (not the contention added after) and refreshes the entry; a miss inserts it, evicting the LRU entry.
   */
  private lookupPrefix(job: Job): void {
    const lru = this.prefixLru;
    const prefix = job.prefix;
    if (lru === undefined || prefix === undefined || prefix === '') return;
    this.st.prefixQueries++;
    if (lru.delete(prefix)) {
      this.st.prefixHits++;
      job.ttft *= this.prefixHitFactor;
    } else if (lru.size >= this.prefixCapacity) {
      const oldest = lru.keys().next();
      if (oldest.done !== true) lru.delete(oldest.value);
    }
    lru.set(prefix, true);
  }

  /** Block-mode lookup (see PrefixCacheOptions): reuse the cached leading blocks, then cache them all. */
  private lookupBlocks(job: Job, blocks: number[]): void {
    const lru = this.prefixLru;
    if (lru === undefined || blocks.length === 0) return;
    let matched = 0;
    while (matched < blocks.length && lru.has(blocks[matched]!)) matched++;
    this.st.prefixQueries += blocks.length;
    this.st.prefixHits += matched;
    job.ttft *= this.prefixHitFactor + (1 - this.prefixHitFactor) * (1 - matched / blocks.length);
    for (let i = blocks.length - 1; i >= 0; i--) {
      lru.delete(blocks[i]!);
      lru.set(blocks[i]!, true);
    }
    for (const key of lru.keys()) {
      if (lru.size <= this.prefixCapacity) break;
      lru.delete(key);
    }
  }

  /** Writes content events until done, a delay is due, or the socket needs to drain. */
  private readonly pump = (job: Job): void => {
    const res = job.res;
    const chat = job.kind === CHAT;
    while (job.state === RUNNING) {
      if (job.sent >= job.failAfter) {
        this.breakStream(job);
        return;
      }
      if (job.sent >= job.n) {
        this.endStream(job);
        return;
      }
      const last = job.sent + 1 === job.n;
      let tail: string;
      if (!last) tail = chat ? CHAT_TOKEN_TAIL : TEXT_TOKEN_TAIL;
      else if (job.n >= job.maxTokens) tail = chat ? CHAT_LAST_LENGTH_TAIL : TEXT_LAST_LENGTH_TAIL;
      else if (chat) tail = job.stopMatch === undefined ? CHAT_LAST_STOP_TAIL : CHAT_LAST_STOP_TAIL.replace('"finish_reason":"stop"', `"finish_reason":"stop","stop_reason":${JSON.stringify(job.stopMatch)}`);
      else tail = TEXT_LAST_STOP_TAIL;
      const ok = res.write(job.head + tail);
      job.sent++;
      this.generationTokensTotal++;
      if (job.sent >= job.failAfter) {
        this.breakStream(job);
        return;
      }
      const wait = last ? 0 : job.itl;
      if (!ok) {
        // Backpressure: resume (after the inter-token delay, if any) once the socket drained.
        res.once('drain', () => this.guarded(job, (j) => this.delay(j, wait, this.pump)));
        return;
      }
      if (wait > 0) {
        this.delay(job, wait, this.pump);
        return;
      }
    }
  };

  /**
   * Streams a tool call the way vLLM's tool parsers do: one delta with the id and name, then the
   * arguments in two pieces, then an empty delta with finish_reason "tool_calls".
   */
  private readonly streamToolCall = (job: Job): void => {
    const call = job.toolCall!;
    const half = Math.ceil(call.args.length / 2);
    const piece = (args: string): string => `${job.head}{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":${JSON.stringify(args)}}}]},"logprobs":null,"finish_reason":null}]}\n\n`;
    let out =
      `${job.head}{"index":0,"delta":{"tool_calls":[{"index":0,"id":"chatcmpl-tool-${this.nextId()}","type":"function","function":{"name":${JSON.stringify(call.name)},"arguments":""}}]},"logprobs":null,"finish_reason":null}]}\n\n` +
      piece(call.args.slice(0, half)) +
      piece(call.args.slice(half)) +
      `${job.head}{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}\n\n`;
    if (job.includeUsage) out += `${job.head}],"usage":${usageJson(job.promptTokens, job.n)}}\n\n`;
    this.generationTokensTotal += job.n;
    job.success = true;
    job.res.end(out + SSE_DONE);
    this.settle(job);
  };

  private endStream(job: Job): void {
    const chat = job.kind === CHAT;
    let out = '';
    if (job.n === 0) out += job.head + (chat ? CHAT_EMPTY_TAIL : TEXT_EMPTY_TAIL);
    if (job.includeUsage) out += `${job.head}],"usage":${usageJson(job.promptTokens, job.n)}}\n\n`;
    out += SSE_DONE;
    job.success = true;
    job.res.end(out);
    this.settle(job);
  }

  /** Simulates an upstream crash mid-stream: reset the connection once the events so far are flushed. */
  private breakStream(job: Job): void {
    job.failed = true;
    this.settle(job);
    const res = job.res;
    // An empty write's callback runs after everything queued before it reached the socket, so the
    // client sees exactly the N chunks before the reset (destroying synchronously could drop them).
    res.write('', () => res.destroy());
  }

  private readonly finishText = (job: Job): void => {
    const n = job.n;
    if (job.toolCall !== undefined) {
      const call = job.toolCall;
      const message = { role: 'assistant', content: null, tool_calls: [{ id: `chatcmpl-tool-${this.nextId()}`, type: 'function', function: { name: call.name, arguments: call.args } }] };
      const body =
        `{"id":"chatcmpl-${this.nextId()}","object":"chat.completion","created":${nowSeconds()},"model":${this.modelJson},` +
        `"choices":[{"index":0,"message":${JSON.stringify(message)},"logprobs":null,"finish_reason":"tool_calls"}],"usage":${usageJson(job.promptTokens, n)}}`;
      this.generationTokensTotal += n;
      job.success = true;
      this.send(job.res, 200, body);
      this.settle(job);
      return;
    }
    const fr = n >= job.maxTokens ? 'length' : 'stop';
    const matched = fr === 'stop' && job.stopMatch !== undefined ? `,"stop_reason":${JSON.stringify(job.stopMatch)}` : '';
    const text = this.text(n);
    const created = nowSeconds();
    const usage = usageJson(job.promptTokens, n);
    const body =
      job.kind === CHAT
        ? `{"id":"chatcmpl-${this.nextId()}","object":"chat.completion","created":${created},"model":${this.modelJson},` +
          `"choices":[{"index":0,"message":{"role":"assistant","content":"${text}"},"logprobs":null,"finish_reason":"${fr}"${matched}}],"usage":${usage}}`
        : `{"id":"cmpl-${this.nextId()}","object":"text_completion","created":${created},"model":${this.modelJson},` +
          `"choices":[{"index":0,"text":"${text}","logprobs":null,"finish_reason":"${fr}"}],"usage":${usage}}`;
    this.generationTokensTotal += n;
    job.success = true;
    this.send(job.res, 200, body);
    this.settle(job);
  };

  private readonly finishEmbedding = (job: Job): void => {
    const inputs = job.inputs ?? [];
    const data = inputs.map((text, index) => ({ object: 'embedding', index, embedding: embed(text) }));
    const usage: Pick<Usage, 'prompt_tokens' | 'total_tokens'> = { prompt_tokens: job.promptTokens, total_tokens: job.promptTokens };
    const body = JSON.stringify({ object: 'list', data, model: this.model, usage });
    job.success = true;
    this.send(job.res, 200, body);
    this.settle(job);
  };

  private finishError(job: Job, status: number, body: string): void {
    this.send(job.res, status, body);
    this.settle(job);
  }

  // ---------------------------------------------------------------------------------------------
  // Bookkeeping

  private onClose(job: Job): void {
    if (job.closed) return;
    job.closed = true;
    this.active.delete(job);
    if (job.failed) this.st.failed++;
    else if (job.res.writableFinished) {
      this.st.completed++;
      if (job.success) this.successTotal++;
    } else this.st.aborted++;
    this.settle(job);
  }

  /** Ends the job's claim on the scheduler exactly once: clears its timer and leaves the queue or frees its slot. */
  private settle(job: Job): void {
    if (job.timer !== undefined) {
      clearTimeout(job.timer);
      job.timer = undefined;
    }
    const state = job.state;
    job.state = DONE;
    if (state === WAITING) {
      const i = this.queue.indexOf(job);
      if (i !== -1) this.queue.splice(i, 1);
      this.st.waiting--;
    } else if (state === RUNNING) {
      this.st.running--;
      this.kvReservedTotal -= job.kvReserved;
      if (this.queue.length > 0) this.admitNext();
    }
  }

  /** Runs `fn` after `ms`, synchronously when ms is 0 (the benchmark path never touches a timer). */
  private delay(job: Job, ms: number, fn: (job: Job) => void): void {
    if (job.state === DONE) return;
    if (ms <= 0) {
      fn(job);
      return;
    }
    job.timer = setTimeout(() => {
      job.timer = undefined;
      if (job.state !== DONE) this.guarded(job, fn);
    }, ms);
  }

  /** Runs an asynchronous continuation, turning a thrown error into a 500 instead of a crash. */
  private guarded(job: Job, fn: (job: Job) => void): void {
    try {
      fn(job);
    } catch (err) {
      this.internalError(job.res, job, err);
    }
  }

  private internalError(res: ServerResponse, job: Job | undefined, err: unknown): void {
    const message = `Internal simulator error: ${err instanceof Error ? err.message : String(err)}`;
    if (job !== undefined) {
      this.settle(job);
      if (res.headersSent) job.failed = true;
    }
    if (res.headersSent) res.destroy();
    else if (!res.writableEnded) this.send(res, 500, vllmError(message, 'InternalServerError', 500));
  }

  private send(res: ServerResponse, status: number, body: string, type = 'application/json', extra?: OutgoingHttpHeaders): void {
    const headers: OutgoingHttpHeaders = {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'x-simulator-id': this.simId,
      'x-sim-id': this.simId,
    };
    if (extra !== undefined) Object.assign(headers, extra);
    res.writeHead(status, headers);
    res.end(body);
  }

  private nextId(): string {
    return this.idPrefix + (++this.seq).toString(16);
  }

  private text(n: number): string {
    let t = this.textCache.get(n);
    if (t === undefined) {
      t = TOKEN.repeat(n);
      if (n <= TEXT_CACHE_MAX_TOKENS) this.textCache.set(n, t);
    }
    return t;
  }

  /**
   * loraInfo is vLLM's vllm:lora_requests_info (its value is the time of the sample); the simulator
   * lists every loaded adapter under running_lora_adapters, and none waiting.
   */
  private loraInfo(): string {
    if (this.loras.size === 0) return '';
    const running = promLabel([...this.loadedLoras.keys()].join(','));
    return (
      '# HELP vllm:lora_requests_info Running stats on lora requests.\n# TYPE vllm:lora_requests_info gauge\n' +
      `vllm:lora_requests_info{max_lora="${this.maxLoras}",running_lora_adapters="${running}",waiting_lora_adapters=""} ${Date.now() / 1000}\n`
    );
  }

  /** kvHeldBlocks is the KV blocks the running requests hold now: their prompt plus the tokens generated so far. */
  private kvHeldBlocks(): number {
    let blocks = 0;
    const now = Date.now();
    for (const job of this.active) {
      if (job.state !== RUNNING || job.kvReserved === 0) continue;
      let generated = job.sent;
      // A non-streamed answer is generated as time passes, one token per itl after its first.
      if (job.decodeAtMs > 0 && now >= job.decodeAtMs) generated = Math.min(job.n, 1 + Math.floor((now - job.decodeAtMs) / job.itl));
      blocks += Math.ceil((job.promptTokens + generated) / KV_BLOCK_TOKENS);
    }
    return blocks;
  }

  private metricsText(): string {
    const l = `{model_name="${this.modelLabel}"}`;
    const kv = this.kvBlocks > 0 ? Math.min(1, this.kvHeldBlocks() / this.kvBlocks) : Math.min(1, this.st.running / (this.maxConcurrency || 64));
    const metric = (name: string, type: string, help: string, value: number): string =>
      `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name}${l} ${value}\n`;
    return (
      metric('vllm:num_requests_running', 'gauge', 'Number of requests in model execution batches.', this.st.running) +
      metric('vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.', this.st.waiting) +
      metric('vllm:kv_cache_usage_perc', 'gauge', 'KV-cache usage. 1 means 100 percent usage.', kv) +
      metric('vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.', this.promptTokensTotal) +
      metric('vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.', this.generationTokensTotal) +
      metric('vllm:request_success_total', 'counter', 'Count of successfully processed requests.', this.successTotal) +
      metric('sim_requests_aborted_total', 'counter', 'Requests whose client disconnected before the response was sent.', this.st.aborted) +
      // vLLM counts prefix-cache queries and hits in prompt tokens; the simulator's cache counts
      // REQUESTS (queries = lookups), or prompt blocks in block mode (--prefix-block-chars).
      metric('vllm:prefix_cache_queries_total', 'counter', 'Prefix cache queries (simulator: requests, or blocks in block mode; not tokens).', this.st.prefixQueries) +
      metric('vllm:prefix_cache_hits_total', 'counter', 'Prefix cache hits (simulator: requests, or blocks in block mode; not tokens).', this.st.prefixHits) +
      metric('sim_prefix_cache_queries_total', 'counter', 'Requests (block mode: prompt blocks) looked up in the prefix cache.', this.st.prefixQueries) +
      metric('sim_prefix_cache_hits_total', 'counter', 'Requests whose prompt prefix was in the prefix cache (block mode: blocks found).', this.st.prefixHits) +
      this.loraInfo() +
      '# HELP sim_requests_total Inference requests received by this simulator instance.\n# TYPE sim_requests_total counter\n' +
      `sim_requests_total{simulator_id="${this.simIdLabel}"} ${this.st.requests}\n`
    );
  }
}

// -----------------------------------------------------------------------------------------------
// Helpers

function newJob(res: ServerResponse, kind: Kind): Job {
  return {
    res,
    kind,
    state: NEW,
    timer: undefined,
    failed: false,
    success: false,
    closed: false,
    stream: false,
    includeUsage: false,
    promptTokens: 0,
    maxTokens: 0,
    n: 0,
    sent: 0,
    ttft: 0,
    itl: 0,
    failAfter: Infinity,
    status: 0,
    inputs: undefined,
    head: '',
    prefix: undefined,
    blocks: undefined,
    lora: undefined,
    toolCall: undefined,
    stopMatch: undefined,
    priority: 0,
    kvReserved: 0,
    decodeAtMs: 0,
  };
}

function nonNegative(v: number | undefined): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : 0;
}

/** Escapes a Prometheus label value. */
function promLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Text of a chat message content: the string, or its text parts joined. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let t = '';
  for (const part of content as unknown[]) if (isRecord(part) && typeof part.text === 'string') t += part.text;
  return t;
}

/**
 * Chat prompt prefix for the prefix cache: the system (and developer) messages up to the first user
 * message plus that message, role-tagged so different splits of the same text differ, cut to `max` chars.
 */
function chatPrefix(messages: unknown[], max: number): string {
  let p = '';
  for (const m of messages) {
    if (!isRecord(m)) continue;
    const role = m.role;
    if (role !== 'system' && role !== 'developer' && role !== 'user') continue;
    p += `${role}:${contentText(m.content)}\n`;
    if (role === 'user' || p.length >= max) break;
  }
  return p.length > max ? p.slice(0, max) : p;
}

/** Whole chat prompt for the block-mode prefix cache: every message, role-tagged, in order. */
function chatText(messages: unknown[]): string {
  let p = '';
  for (const m of messages) if (isRecord(m)) p += `${typeof m.role === 'string' ? m.role : ''}:${contentText(m.content)}\n`;
  return p;
}

/** promptBlocks are the chained block keys of a prompt: FNV-1a run over the whole text, its value at each full block's end (a partial last block is not cached). */
export function promptBlocks(text: string, blockChars: number): number[] {
  const out: number[] = [];
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    if ((i + 1) % blockChars === 0) out.push(h >>> 0);
  }
  return out;
}

/** Completion prompt prefix: the prompt (or the first prompt of a batch; token ids joined), cut to `max` chars. */
function completionPrefix(prompt: unknown, max: number): string {
  let p = '';
  if (typeof prompt === 'string') p = prompt;
  else if (Array.isArray(prompt)) {
    const first: unknown = prompt[0];
    if (typeof first === 'string') p = first;
    else if (typeof first === 'number') p = (prompt as unknown[]).slice(0, max).join(',');
    else if (Array.isArray(first)) p = (first as unknown[]).slice(0, max).join(',');
  }
  return p.length > max ? p.slice(0, max) : p;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a steering header as a non-negative integer; anything else is ignored (undefined). */
function headerInt(v: string | string[] | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || s === '') return undefined;
  const n = Number(s);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

function usageJson(prompt: number, completion: number): string {
  return `{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${prompt + completion}}`;
}

function vllmError(message: string, type: string, code: number): string {
  return JSON.stringify({ error: { message, type, param: null, code } });
}

/** Estimates chat prompt tokens as ceil(content chars / 4) + 1 per message (at least 1). */
function chatPromptTokens(messages: unknown): number {
  if (!Array.isArray(messages)) throw new RequestError(400, 'messages must be an array.', 'BadRequestError');
  let chars = 0;
  for (const m of messages as unknown[]) {
    if (!isRecord(m)) throw new RequestError(400, 'each message must be an object.', 'BadRequestError');
    const content = (m as Partial<ChatMessage>).content;
    if (typeof content === 'string') chars += content.length;
    else if (Array.isArray(content)) {
      for (const part of content as unknown[]) {
        if (isRecord(part) && typeof part.text === 'string') chars += part.text.length;
      }
    }
  }
  return Math.max(1, Math.ceil(chars / 4) + messages.length);
}

/**
 * The tool call a chat request is answered with: with `tools` (and tool_choice not "none") and the
 * user speaking last, a call to the named tool (tool_choice {function: {name}}) or else the first one.
 */
function toolCallFor(body: Record<string, unknown>): { name: string; args: string } | undefined {
  const tools = body.tools;
  if (!Array.isArray(tools) || tools.length === 0 || body.tool_choice === 'none') return undefined;
  const messages = body.messages as unknown[];
  const last = messages[messages.length - 1];
  if (!isRecord(last) || last.role !== 'user') return undefined;
  const choice = body.tool_choice;
  const named = isRecord(choice) && isRecord(choice.function) && typeof choice.function.name === 'string' ? choice.function.name : undefined;
  const fns = (tools as unknown[]).map((t) => (isRecord(t) && isRecord(t.function) ? t.function : {}));
  const fn = (named === undefined ? undefined : fns.find((f) => f.name === named)) ?? fns[0]!;
  if (typeof fn.name !== 'string') throw new RequestError(400, 'tools[].function.name must be a string.', 'BadRequestError');
  return { name: fn.name, args: JSON.stringify(argsFor(fn.parameters)) };
}

/** Arguments for a tool from its JSON Schema: "tok" for strings, 1 for numbers, true, [] and {}; deterministic. */
function argsFor(schema: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const props = isRecord(schema) && isRecord(schema.properties) ? schema.properties : {};
  for (const [name, p] of Object.entries(props)) {
    const type = isRecord(p) ? p.type : undefined;
    out[name] = type === 'string' ? 'tok' : type === 'number' || type === 'integer' ? 1 : type === 'boolean' ? true : type === 'array' ? [] : type === 'object' ? {} : null;
  }
  return out;
}

/** The first stop string of a request (`stop` is a string or a list of them). */
function firstStop(stop: unknown): string | undefined {
  if (typeof stop === 'string' && stop !== '') return stop;
  if (Array.isArray(stop) && typeof stop[0] === 'string' && stop[0] !== '') return stop[0];
  return undefined;
}

/** Estimates completion prompt tokens: ceil(chars / 4) for text prompts, the length for token-id prompts. */
function completionPromptTokens(prompt: unknown): number {
  if (typeof prompt === 'string') return Math.max(1, Math.ceil(prompt.length / 4));
  if (Array.isArray(prompt) && prompt.length > 0) {
    let chars = 0;
    let ids = 0;
    for (const p of prompt as unknown[]) {
      if (typeof p === 'string') chars += p.length;
      else if (typeof p === 'number') ids++;
      else if (Array.isArray(p)) ids += p.length;
      else throw new RequestError(400, 'prompt must be a string, an array of strings or token ids.', 'BadRequestError');
    }
    return Math.max(1, Math.ceil(chars / 4) + ids);
  }
  throw new RequestError(400, 'prompt must be a string, an array of strings or token ids.', 'BadRequestError');
}

/** Normalises embeddings `input` to one string per output vector (token-id inputs are keyed by their JSON). */
function embeddingInputs(input: unknown): string[] {
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.length > 0) {
    const items = input as unknown[];
    if (items.every((x) => typeof x === 'number')) return [JSON.stringify(items)];
    return items.map((x) => {
      if (typeof x === 'string') return x;
      if (Array.isArray(x)) return JSON.stringify(x);
      throw new RequestError(400, 'input must be a string, an array of strings or token ids.', 'BadRequestError');
    });
  }
  throw new RequestError(400, 'input must be a string, an array of strings or token ids.', 'BadRequestError');
}

/** Deterministic unit vector derived from the text (FNV-1a seed, xorshift stream). */
function embed(text: string): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  if (h === 0) h = 1;
  const v: number[] = [];
  let norm = 0;
  for (let d = 0; d < EMBEDDING_DIM; d++) {
    h ^= h << 13;
    h ^= h >>> 17;
    h ^= h << 5;
    const x = ((h >>> 0) / 0x100000000) * 2 - 1;
    v.push(x);
    norm += x * x;
  }
  norm = Math.sqrt(norm) || 1;
  return v.map((x) => Math.round((x / norm) * 1e6) / 1e6);
}
