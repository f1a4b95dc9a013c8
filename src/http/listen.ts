import type { Server } from 'node:net';

/** ListenAddress is where a listener binds: a host and a port (0: any free port). */
export interface ListenAddress {
  host: string;
  port: number;
}

/** listen binds a server and resolves with the port it got (useful with port 0). */
export function listen(server: Server, addr: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    // A deep accept queue: Node's default 511 overflows when thousands of clients connect at once.
    server.listen({ port: addr.port, host: addr.host, backlog: 4096 }, () => {
      server.off('error', onError);
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : addr.port);
    });
  });
}

/** close stops accepting, ends idle keep-alive sockets and resolves when the server is closed. */
export function close(server: Server & { closeIdleConnections(): void }): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
