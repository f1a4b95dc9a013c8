/**
 * SseReader reads a Server-Sent Events response with fetch (headers allowed, unlike EventSource)
 * and lets a test wait for the next event that matches a condition.
 */
export interface SseEvent {
  event: string;
  data: unknown;
}

export class SseReader {
  readonly events: SseEvent[] = [];
  readonly #controller = new AbortController();
  #buffer = '';
  #done: Promise<void> = Promise.resolve();

  /** open connects and starts reading; it resolves with the response status. */
  async open(url: string, headers: Record<string, string> = {}): Promise<Response> {
    const res = await fetch(url, { headers, signal: this.#controller.signal });
    if (res.status !== 200 || res.body === null) return res;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    this.#done = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          this.#buffer += decoder.decode(value, { stream: true });
          let end: number;
          while ((end = this.#buffer.indexOf('\n\n')) !== -1) {
            const frame = this.#buffer.slice(0, end);
            this.#buffer = this.#buffer.slice(end + 2);
            let event = 'message';
            let data = '';
            for (const line of frame.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            this.events.push({ event, data: JSON.parse(data) as unknown });
          }
        }
      } catch {
        // Aborted by close().
      }
    })();
    return res;
  }

  /** next waits until an event after index `from` satisfies fn, and returns it. */
  async next<T>(fn: (e: SseEvent) => boolean, from = 0, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.slice(from).find(fn);
      if (found !== undefined) return found.data as T;
      if (Date.now() > deadline) throw new Error(`no matching event within ${ms} ms (got ${this.events.map((e) => e.event).join(', ')})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }
}
