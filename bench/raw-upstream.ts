/**
 * A minimal raw `node:http` upstream for the benchmarks (the alternative to `inference-gateway
 * simulate` when the simulator would be the bottleneck): canned OpenAI-style answers, no parsing
 * beyond looking for `"stream":true` in the body.
 *   - POST …/chat/completions without stream: one small chat.completion JSON (Content-Length);
 *   - with `"stream":true`: a chat stream of `--chunks` events (role event included) one per
 *     `--itl-ms` (0: all at once), then `data: [DONE]`;
 *   - GET /health: 200.
 *
 *   node --import tsx bench/raw-upstream.ts --port 9000 [--chunks 21] [--itl-ms 0]
 */
import { createServer, type ServerResponse } from 'node:http';

const opt = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const port = opt('--port', 9000);
const chunks = opt('--chunks', 21);
const itlMs = opt('--itl-ms', 0);

const HEAD = 'data: {"id":"chatcmpl-raw","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[';
const ROLE = `${HEAD}{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n`;
const TOKEN = `${HEAD}{"index":0,"delta":{"content":"tok "},"logprobs":null,"finish_reason":null}]}\n\n`;
const DONE = 'data: [DONE]\n\n';
const ALL_AT_ONCE = ROLE + TOKEN.repeat(Math.max(0, chunks - 1)) + DONE;
const JSON_BODY =
  '{"id":"chatcmpl-raw","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":' +
  '{"role":"assistant","content":"tok tok tok tok tok tok tok tok tok tok tok tok tok tok tok tok "},"logprobs":null,"finish_reason":"length"}],' +
  '"usage":{"prompt_tokens":8,"completion_tokens":16,"total_tokens":24}}';
const JSON_LEN = String(Buffer.byteLength(JSON_BODY));
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

function slowStream(res: ServerResponse): void {
  res.writeHead(200, SSE_HEADERS);
  res.write(ROLE);
  let sent = 1;
  const timer = setInterval(() => {
    if (sent >= chunks) {
      clearInterval(timer);
      res.end(DONE);
      return;
    }
    res.write(TOKEN);
    sent++;
  }, itlMs);
  res.once('close', () => clearInterval(timer));
}

const server = createServer({ noDelay: true }, (req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-length': '0' });
    res.end();
    return;
  }
  let isStream = false;
  req.on('data', (c: Buffer) => {
    if (!isStream && c.includes('"stream":true')) isStream = true;
  });
  req.on('end', () => {
    if (!isStream) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': JSON_LEN });
      res.end(JSON_BODY);
    } else if (itlMs <= 0) {
      res.writeHead(200, SSE_HEADERS);
      res.end(ALL_AT_ONCE);
    } else slowStream(res);
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
