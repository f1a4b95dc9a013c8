/**
 * The Node floor of `npm run bench:compare`: the least a Node HTTP proxy can do. No routing, no
 * auth, no logs, no metrics, no header rewriting: every request goes to one upstream through a
 * keep-alive http.Agent and both bodies are piped. Whatever the gateway costs above this is ours.
 *
 *   node --import tsx bench/node-floor.ts --port 8080 --upstream http://127.0.0.1:9000
 */
import { createServer, request, Agent } from 'node:http';

const arg = (name: string): string => {
  const i = process.argv.indexOf(name);
  if (i === -1 || process.argv[i + 1] === undefined) throw new Error(`usage: node-floor.ts --port P --upstream http://host:port (missing ${name})`);
  return process.argv[i + 1]!;
};
const port = Number(arg('--port'));
const up = new URL(arg('--upstream'));
// noDelay: the request head and body are separate writes; with Nagle the body would wait for a delayed ACK (~40 ms).
const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, noDelay: true });

const server = createServer((req, res) => {
  const upReq = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    upRes.pipe(res);
  });
  upReq.on('error', () => res.destroy());
  res.on('close', () => {
    if (!res.writableFinished) upReq.destroy();
  });
  req.pipe(upReq);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
