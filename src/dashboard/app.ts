/**
 * The dashboard, served by the admin listener at /ui/. It reads `GET /events` (Server-Sent Events,
 * read with fetch so the token goes in the Authorization header, never in a URL) and calls the
 * admin API for actions. Every value from config or traffic is put in the page as text
 * (textContent), never as HTML. The token, when the gateway has one, lives in sessionStorage.
 */
import uPlot from 'uplot';
import type { EventSample, FleetModel, KeyStat } from '../admin/event-types.js';

type Entry = { time: string; request_id: string; trace_id: string; method: string; path: string; model: string | null; status: number; total_ms: number; queue_ms: number; connect_ms: number | null; upstream_ms: number | null; ttfb_ms: number | null; target: string | null; key: string | null; error: string | null; prompt_tokens: number | null; completion_tokens: number | null };
type HistoryEntry = { time: string; source: string; result: string; hash: string; errors: Issue[]; can_rollback: boolean };

const TOKEN_KEY = 'igw-admin-token';
const MAX_SAMPLES = 900;
const MAX_REQUESTS = 500;

const state = {
  samples: [] as EventSample[],
  fleet: [] as FleetModel[],
  requests: [] as Entry[],
  keys: [] as KeyStat[],
  keysSince: null as string | null,
  connected: false,
  selected: null as Entry | null,
};

/** el builds an element; string children become text nodes, so nothing is ever parsed as HTML. */
function el(tag: string, attrs: Record<string, string> = {}, ...children: Array<Node | string | null>): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** api calls the admin API with the token. */
async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const t = token();
  if (t !== null) headers.set('authorization', `Bearer ${t}`);
  return fetch(path, { ...init, headers, cache: 'no-store' });
}

const main = (): HTMLElement => document.getElementById('main')!;

function showLogin(message: string | null): void {
  const input = el('input', { type: 'password', id: 'token', autocomplete: 'current-password', placeholder: 'admin token' }) as HTMLInputElement;
  const form = el('form', { class: 'card login' }, el('h3', {}, 'Admin token'), el('p', { class: 'muted' }, 'This gateway requires its admin.token. It is kept in this tab only.'), input, ' ', el('button', { type: 'submit' }, 'Sign in'), message === null ? null : el('p', { class: 'error', id: 'login-error' }, message));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value);
    void boot();
  });
  main().replaceChildren(form);
  input.focus();
}

/** boot checks the token and connects to /events. */
async function boot(): Promise<void> {
  const res = await api('/status');
  if (res.status === 401) {
    const hadToken = token() !== null;
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(hadToken ? 'Wrong token.' : null);
    return;
  }
  void connect();
  render();
}

/** connect reads /events until it ends, then reconnects. */
async function connect(): Promise<void> {
  for (;;) {
    try {
      const res = await api('/events');
      if (res.status === 401) return showLogin('Wrong token.');
      if (res.body === null) throw new Error('no body');
      setConnected(true);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          onFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // Reconnect below.
    }
    setConnected(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function setConnected(on: boolean): void {
  state.connected = on;
  document.getElementById('conn')!.textContent = on ? 'live' : 'disconnected, retrying…';
}

function onFrame(frame: string): void {
  let event = 'message';
  let data = '';
  for (const line of frame.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  const d = JSON.parse(data) as { samples?: EventSample[]; sample?: EventSample; fleet: FleetModel[]; requests: Entry[]; keys?: KeyStat[]; keys_since?: string };
  if (d.keys !== undefined) state.keys = d.keys;
  if (event === 'history') {
    state.samples = d.samples ?? [];
    state.requests = [...d.requests].reverse();
    state.keysSince = d.keys_since ?? null;
  } else if (event === 'tick' && d.sample !== undefined) {
    state.samples.push(d.sample);
    if (state.samples.length > MAX_SAMPLES) state.samples.shift();
    for (const r of d.requests) state.requests.unshift(r);
    if (state.requests.length > MAX_REQUESTS) state.requests.length = MAX_REQUESTS;
  }
  state.fleet = d.fleet;
  update();
}

// ---- pages ----

const pages: Record<string, { render: () => void; update: () => void }> = {};

function page(): string {
  const p = location.hash.slice(1);
  return p in pages ? p : 'overview';
}

function render(): void {
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === `#${page()}`);
  charts.clear();
  pages[page()]!.render();
  update();
}

function update(): void {
  if (document.getElementById('token') !== null) return;
  pages[page()]!.update();
}

const charts = new Map<string, { plot: uPlot; key: string }>();

/** chartColors reads the palette from the stylesheet, whose light and dark variants follow prefers-color-scheme. */
function chartColors(): { series: string[]; axis: string; grid: string } {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string): string => css.getPropertyValue(name).trim();
  return { series: [1, 2, 3, 4, 5, 6].map((i) => v(`--series-${i}`)), axis: v('--muted'), grid: v('--line') };
}

// A canvas keeps the colours it was drawn with: when the scheme changes, the next update draws the charts anew.
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  for (const c of charts.values()) c.plot.destroy();
  charts.clear();
});

/** chart draws (or updates) one time series card; series are named, values per sample. */
function chart(id: string, series: Array<[string, (s: EventSample) => number | null]>): void {
  const box = document.getElementById(id);
  if (box === null) return;
  const xs = state.samples.map((s) => s.time / 1000);
  const data: uPlot.AlignedData = [xs, ...series.map(([, f]) => state.samples.map(f))];
  const key = series.map(([n]) => n).join('|');
  const have = charts.get(id);
  if (have !== undefined && have.key === key) {
    have.plot.setData(data);
    return;
  }
  have?.plot.destroy();
  const colors = chartColors();
  const opts: uPlot.Options = {
    width: Math.max(300, box.clientWidth - 4),
    height: 160,
    series: [{}, ...series.map(([label], i) => ({ label, stroke: colors.series[i % colors.series.length]!, width: 1.5, spanGaps: false }))],
    // The window spans what was sampled, at least a minute (one point is not stretched over years) and at most the 15 minutes kept.
    scales: { x: { time: true, range: (_u, min, max) => [max - Math.min(900, Math.max(60, max - min)), max] } },
    axes: [
      { stroke: colors.axis, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid, width: 1 } },
      { stroke: colors.axis, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid, width: 1 }, size: 50 },
    ],
    legend: { show: true },
  };
  box.replaceChildren();
  charts.set(id, { plot: new uPlot(opts, data, box), key });
}

function last(): EventSample | undefined {
  return state.samples[state.samples.length - 1];
}

pages.overview = {
  render() {
    const card = (title: string, id: string, big = ''): HTMLElement => el('div', { class: 'card' }, el('h3', {}, title), big === '' ? null : el('div', { class: 'big', id: `${id}-now` }), el('div', { id }));
    main().replaceChildren(
      el('div', { class: 'grid' },
        card('Requests/s', 'c-rps', 'y'),
        card('Requests/s by model', 'c-models'),
        card('Answers/s by status class', 'c-status'),
        card('Latency and time to first token (ms)', 'c-latency'),
        card('Tokens/s', 'c-tokens'),
        card('In flight and queued', 'c-inflight'),
        el('div', { class: 'card' }, el('h3', {}, '429s by limit (last 60 s)'), el('table', { id: 't-limited' })),
      ),
    );
  },
  update() {
    const s = last();
    const now = document.getElementById('c-rps-now');
    if (now !== null) now.textContent = s === undefined ? '–' : `${s.requests_per_s} req/s`;
    chart('c-rps', [['requests/s', (x) => x.requests_per_s]]);
    const models = new Set<string>();
    for (const x of state.samples.slice(-300)) for (const m of Object.keys(x.requests_per_s_by_model)) if (models.size < 6) models.add(m);
    chart('c-models', [...models].map((m): [string, (x: EventSample) => number] => [m, (x) => x.requests_per_s_by_model[m] ?? 0]));
    chart('c-status', ['2xx', '4xx', '5xx'].map((c): [string, (x: EventSample) => number] => [c, (x) => x.status_per_s[c] ?? 0]));
    chart('c-latency', [['p50', (x) => x.latency_ms.p50], ['p95', (x) => x.latency_ms.p95], ['TTFT p50', (x) => x.ttft_ms.p50], ['TTFT p95', (x) => x.ttft_ms.p95]]);
    chart('c-tokens', [['prompt', (x) => x.prompt_tokens_per_s], ['completion', (x) => x.completion_tokens_per_s]]);
    chart('c-inflight', [['in flight', (x) => x.inflight], ['queued', (x) => x.queued]]);
    const limited = new Map<string, number>();
    for (const x of state.samples.slice(-60)) for (const [k, v] of Object.entries(x.limited_per_s)) limited.set(k, (limited.get(k) ?? 0) + v);
    const table = document.getElementById('t-limited');
    if (table !== null) {
      const rows = [...limited].sort((a, b) => b[1] - a[1]).map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, String(v))));
      table.replaceChildren(el('tr', {}, el('th', {}, 'limit'), el('th', {}, '429s')), ...(rows.length > 0 ? rows : [el('tr', {}, el('td', { class: 'muted' }, 'none'))]));
    }
  },
};

pages.fleet = {
  render() {
    main().replaceChildren(el('p', { class: 'muted' }, 'Every model and its targets. A row turns red when its target is out (failing active checks or ejected); a drained target takes no new requests.'), el('div', { id: 'fleet' }), el('p', { class: 'error', id: 'fleet-error' }));
  },
  update() {
    const box = document.getElementById('fleet');
    if (box === null) return;
    const pct = (v: number): string => `${Math.round(v * 1000) / 10}%`;
    const tables = state.fleet.map((m) => {
      const rows = m.targets.map((t, i) => {
        const load = t.load;
        const action = el('button', { 'data-action': t.state === 'drained' ? 'undrain' : 'drain', 'data-target': t.url }, t.state === 'drained' ? 'Undrain' : 'Drain');
        action.addEventListener('click', () => void drain(m.name, i, t.state === 'drained' ? 'undrain' : 'drain'));
        return el('tr', { class: t.state === 'failing' || t.state === 'ejected' ? 'down' : '', 'data-url': t.url },
          el('td', {}, t.url),
          el('td', { class: `state-${t.state}` }, t.state + (t.ejected_until === null ? '' : ` until ${new Date(t.ejected_until).toLocaleTimeString()}`)),
          el('td', {}, String(t.inflight)),
          el('td', {}, load === null ? '–' : String(load.running)),
          el('td', {}, load === null ? '–' : String(load.waiting)),
          el('td', {}, load === null ? '–' : pct(load.kv_cache_usage)),
          el('td', { class: 'prefix-hits' }, load === null || load.prefix_cache_hit_rate === null ? '–' : pct(load.prefix_cache_hit_rate)),
          el('td', { class: 'sample-age' }, load === null ? '–' : `${(load.age_ms / 1000).toFixed(1)} s`),
          el('td', {}, action),
        );
      });
      return el('div', { class: 'card', 'data-model': m.name },
        el('h3', {}, `${m.name}  `, el('span', { class: 'muted' }, `path ${m.path} · ${m.inflight} in flight`)),
        el('table', {}, el('tr', {}, ...['target', 'state', 'in flight', 'running', 'waiting', 'KV cache', 'prefix-cache hits', 'sample age', ''].map((h) => el('th', {}, h))), ...rows),
      );
    });
    box.replaceChildren(...tables);
  },
};

async function drain(model: string, index: number, action: 'drain' | 'undrain'): Promise<void> {
  const res = await api(`/models/${encodeURIComponent(model)}/targets/${index}/${action}`, { method: 'POST' });
  const err = document.getElementById('fleet-error');
  if (err !== null) err.textContent = res.ok ? '' : `${action} failed: HTTP ${res.status}`;
}

pages.keys = {
  render() {
    main().replaceChildren(el('p', { class: 'muted', id: 'keys-since' }), el('table', { id: 't-keys' }));
  },
  update() {
    const table = document.getElementById('t-keys');
    if (table === null) return;
    const since = state.keysSince === null ? 'this page opened' : new Date(state.keysSince).toLocaleTimeString();
    document.getElementById('keys-since')!.textContent = `Each key by name (or fingerprint when it has none): its requests, tokens and 429s since ${since}, while a dashboard is open, and what each limit on its requests leaves in the current window.`;
    const rows = state.keys.map((k) =>
      el('tr', { 'data-key': k.key, 'data-model': k.model },
        el('td', {}, k.model),
        el('td', {}, k.key),
        el('td', { class: 'requests' }, String(k.requests)),
        el('td', {}, `${k.prompt_tokens} prompt, ${k.completion_tokens} completion`),
        el('td', { class: k.limited > 0 ? 'error' : '' }, String(k.limited)),
        el('td', { class: 'headroom' }, k.headroom === null ? 'limit store did not answer' : k.headroom.length === 0 ? 'no limits' : k.headroom.map((h) => `${h.limit}: ${h.remaining} of ${h.max} left, resets in ${h.reset_s} s`).join('\n')),
      ),
    );
    table.replaceChildren(el('tr', {}, ...['model', 'key', 'requests', 'tokens', '429s', 'headroom'].map((h) => el('th', {}, h))), ...(rows.length > 0 ? rows : [el('tr', {}, el('td', { class: 'muted' }, 'no keyed request yet'))]));
  },
};

pages.requests = {
  render() {
    const filter = (id: string, placeholder: string): HTMLElement => {
      const i = el('input', { id, placeholder });
      i.addEventListener('input', () => update());
      return i;
    };
    main().replaceChildren(el('div', { class: 'filters' }, filter('f-model', 'model'), filter('f-status', 'status (e.g. 429, 5)'), filter('f-key', 'key name or fingerprint')), el('div', { id: 'detail' }), el('table', { id: 't-requests' }));
  },
  update() {
    const table = document.getElementById('t-requests');
    if (table === null) return;
    const val = (id: string): string => (document.getElementById(id) as HTMLInputElement | null)?.value.trim() ?? '';
    const [fm, fs, fk] = [val('f-model'), val('f-status'), val('f-key')];
    const rows = state.requests
      .filter((r) => (fm === '' || (r.model ?? '').includes(fm)) && (fs === '' || String(r.status).startsWith(fs)) && (fk === '' || (r.key ?? '').includes(fk)))
      .map((r) => {
        const tr = el('tr', {}, el('td', {}, r.time.slice(11, 23)), el('td', {}, r.model ?? '–'), el('td', {}, String(r.status)), el('td', {}, `${r.total_ms} ms`), el('td', {}, r.key ?? '–'), el('td', {}, r.error ?? ''), el('td', {}, r.path));
        tr.addEventListener('click', () => {
          state.selected = r;
          update();
        });
        return tr;
      });
    table.replaceChildren(el('tr', {}, ...['time', 'model', 'status', 'total', 'key', 'error', 'path'].map((h) => el('th', {}, h))), ...rows);
    const d = document.getElementById('detail');
    const r = state.selected;
    if (d !== null) {
      d.replaceChildren(r === null ? el('p', { class: 'muted' }, `${rows.length} of the last ${state.requests.length} requests seen while this page was open. Click one for its timing.`) : el('div', { class: 'card' },
        el('h3', {}, `Request ${r.request_id}`),
        el('pre', {}, `trace id     ${r.trace_id}\ntarget       ${r.target ?? '–'}\nqueue        ${r.queue_ms} ms (waiting for a concurrency slot)\nconnect      ${r.connect_ms === null ? '– (not reported by this transport)' : `${r.connect_ms} ms${r.connect_ms === 0 ? ' (kept-alive connection)' : ''}`}\nupstream     ${r.upstream_ms ?? '–'} ms (dispatch to response headers)\nTTFB         ${r.ttfb_ms ?? '–'} ms (dispatch to first body byte)\ntotal        ${r.total_ms} ms\ntokens       ${r.prompt_tokens ?? '–'} prompt, ${r.completion_tokens ?? '–'} completion`)));
    }
  },
};

pages.config = {
  render() {
    const text = el('textarea', { id: 'cfg-text', spellcheck: 'false', placeholder: 'Paste a whole configuration (YAML or JSON), validate it to see what changes, then apply it.' }) as HTMLTextAreaElement;
    const validate = el('button', { id: 'cfg-validate' }, 'Validate and diff');
    validate.addEventListener('click', () => void validateConfig(text.value));
    const apply = el('button', { id: 'cfg-apply' }, 'Apply');
    apply.addEventListener('click', () => void applyConfig(text.value));
    // A diff shown is the diff of the text validated: an edit makes it stale.
    text.addEventListener('input', () => document.getElementById('cfg-result')!.replaceChildren());
    main().replaceChildren(
      el('div', { class: 'card' }, el('h3', {}, 'Running configuration'), el('div', { id: 'cfg-hash', class: 'big' }), el('pre', { id: 'cfg-models' }), el('details', {}, el('summary', {}, 'as loaded (keys as fingerprints)'), el('pre', { id: 'cfg-document' }))),
      el('h3', {}, 'Apply a configuration'),
      text, validate, ' ', apply, el('div', { id: 'cfg-result' }),
      el('h3', {}, 'Reload history'), el('table', { id: 't-history' }),
    );
    void loadConfig();
  },
  update() {},
};

async function loadConfig(): Promise<void> {
  const [cfg, hist, doc] = await Promise.all([
    api('/config').then((r) => r.json() as Promise<{ hash: string; models: Array<{ name: string; path: string }> }>),
    api('/config/history').then((r) => r.json() as Promise<{ data: HistoryEntry[] }>),
    api('/config/document').then((r) => r.json() as Promise<{ document: string | null }>),
  ]);
  const hash = document.getElementById('cfg-hash');
  if (hash === null) return;
  hash.textContent = cfg.hash;
  document.getElementById('cfg-models')!.textContent = cfg.models.map((m) => `${m.name}  ${m.path || '/'}`).join('\n');
  document.getElementById('cfg-document')!.textContent = doc.document ?? 'not known to this gateway';
  const rows = hist.data.map((h) => {
    const back = h.can_rollback && h.hash !== cfg.hash ? el('button', { 'data-hash': h.hash }, 'Roll back') : null;
    back?.addEventListener('click', () => void rollback(h.hash));
    return el('tr', {}, el('td', {}, h.time), el('td', {}, h.source), el('td', {}, h.result), el('td', {}, h.hash.slice(0, 12)), el('td', { class: 'error' }, h.errors.map(issueText).join('\n')), el('td', {}, back));
  });
  document.getElementById('t-history')!.replaceChildren(el('tr', {}, ...['time', 'source', 'result', 'hash', 'errors', ''].map((x) => el('th', {}, x))), ...rows);
}

type Issue = { file: string; field: string; message: string; line?: number; column?: number };

/** issueText prints an issue as `validate` does: file:line:column: field: message. */
function issueText(i: Issue): string {
  const at = i.line === undefined ? '' : `:${i.line}:${i.column ?? 1}`;
  return `${i.file}${at}: ${i.field ? `${i.field}: ` : ''}${i.message}`;
}

/** validateConfig asks the gateway what an apply would say, changing nothing, and shows the errors, or the warnings and the diff. */
async function validateConfig(text: string): Promise<void> {
  const res = await api('/config/validate', { method: 'POST', body: text, headers: { 'content-type': 'application/yaml' } });
  const out = document.getElementById('cfg-result')!;
  const body = (await res.json()) as { valid?: boolean; errors?: Issue[]; warnings?: string[]; config?: string; running?: string | null };
  if (res.status !== 200 || body.valid !== true) {
    out.replaceChildren(el('p', { class: 'error', id: 'cfg-errors' }, (body.errors ?? []).map(issueText).join('\n') || `HTTP ${res.status}`));
    return;
  }
  const lines = body.running === null || body.running === undefined ? null : diffLines(body.running, body.config ?? '');
  out.replaceChildren(
    el('p', { id: 'cfg-valid' }, 'Valid: nothing is applied until you press Apply.'),
    ...(body.warnings ?? []).map((w) => el('p', { class: 'muted' }, w)),
    el('h3', {}, 'Changes against the running configuration (as loaded; keys as fingerprints)'),
    el('pre', { id: 'cfg-diff', class: 'card' }, ...(lines === null ? ['The running configuration is not known to this gateway.'] : lines.length === 0 ? ['No change.'] : lines.map(([op, line]) => el('div', { class: op === '+' ? 'diff-add' : op === '-' ? 'diff-del' : 'muted' }, `${op} ${line}`)))),
  );
}

type DiffLine = ['+' | '-' | ' ' | '…', string];
const DIFF_CONTEXT = 3;
/** MAX_DIFF_CELLS bounds the table of the line diff; beyond it, the changed middle shows as removed then added. */
const MAX_DIFF_CELLS = 4_000_000;

/** diffLines is a line diff of two texts (longest common subsequence), unchanged lines kept only near a change. */
function diffLines(before: string, after: string): DiffLine[] {
  const a = before.split('\n');
  const b = after.split('\n');
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const full: DiffLine[] = a.slice(0, start).map((l): DiffLine => [' ', l]);
  const n = endA - start;
  const m = endB - start;
  if (n * m > MAX_DIFF_CELLS) {
    for (let i = start; i < endA; i++) full.push(['-', a[i]!]);
    for (let j = start; j < endB; j++) full.push(['+', b[j]!]);
  } else {
    // lcs[i][j] is the longest common subsequence of a's middle from i and b's middle from j.
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[start + i] === b[start + j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[start + i] === b[start + j]) {
        full.push([' ', a[start + i]!]);
        i++;
        j++;
      } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) full.push(['-', a[start + i++]!]);
      else full.push(['+', b[start + j++]!]);
    }
  }
  for (let i = endA; i < a.length; i++) full.push([' ', a[i]!]);
  if (full.every(([op]) => op === ' ')) return [];
  // Keep DIFF_CONTEXT unchanged lines around each change; a run of others becomes one "…".
  const near = full.map(() => false);
  full.forEach(([op], k) => {
    if (op === ' ') return;
    for (let d = Math.max(0, k - DIFF_CONTEXT); d <= Math.min(full.length - 1, k + DIFF_CONTEXT); d++) near[d] = true;
  });
  const out: DiffLine[] = [];
  full.forEach((line, k) => {
    if (near[k]) out.push(line);
    else if (out.at(-1)?.[0] !== '…') out.push(['…', '']);
  });
  return out;
}

async function applyConfig(text: string): Promise<void> {
  const res = await api('/config', { method: 'POST', body: text, headers: { 'content-type': 'application/yaml', 'x-config-source': 'ui' } });
  const out = document.getElementById('cfg-result')!;
  const body = (await res.json()) as { errors?: Issue[]; configuration_hash?: string; result?: string; warnings?: string[] };
  if (res.status === 201) out.replaceChildren(el('p', {}, `${body.result ?? ''}: ${body.configuration_hash ?? ''}`), ...(body.warnings ?? []).map((w) => el('p', { class: 'muted' }, w)));
  else out.replaceChildren(el('p', { class: 'error', id: 'cfg-errors' }, (body.errors ?? []).map(issueText).join('\n') || `HTTP ${res.status}`));
  await loadConfig();
}

async function rollback(hash: string): Promise<void> {
  const res = await api(`/config/rollback/${hash}`, { method: 'POST' });
  document.getElementById('cfg-result')!.replaceChildren(el('p', { class: res.ok ? '' : 'error' }, res.ok ? `rolled back to ${hash}` : `rollback failed: HTTP ${res.status}`));
  await loadConfig();
}

window.addEventListener('hashchange', () => {
  if (document.getElementById('token') === null) render();
});
void boot();
