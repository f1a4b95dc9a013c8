/**
 * Watching the files a configuration is made of, and nothing else. Only their names wake the
 * watcher: the config file, each imported recipe file, the `*.json` files of each imported folder
 * (or, for the certificate watcher, the two PEM files). Anything else written next to them, such
 * as a log redirected into the config's folder, is ignored. Before reporting a change the watcher
 * compares a hash of the files' content with the last one it saw, so a rewrite with the same
 * bytes, or an event the name filter let through, reloads nothing.
 *
 * Folders are watched, not files: editors and Kubernetes replace a file rather than write to it.
 * The kubelet updates a mounted ConfigMap or Secret by renaming `..data` (each visible name is a
 * symlink through it), so a `..data` event in a watched folder counts, and so does a change of a
 * symlinked folder on the way to a watched file. Each check sets the watches up again, because
 * such a swap replaces the very folders they were on.
 */
import { createHash, type Hash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';

/** WatchInputs are absolute paths: files, and folders whose `*.json` files are inputs too. */
export interface WatchInputs {
  files: readonly string[];
  dirs: readonly string[];
}

/** InputWatcherOptions are what an InputWatcher watches and whom it tells. */
export interface InputWatcherOptions {
  inputs: WatchInputs;
  /**
   * onChange is called once the inputs' content changed and events settled; returning false
   * means "not now" (another load is running) and the check is repeated after the debounce.
   */
  onChange: () => boolean | void;
  /** debounceMs is how long events must pause before a check (default 200). */
  debounceMs?: number;
}

/** What counts in one watched folder: some names, and with isRecipeFolder every `*.json`. */
interface Rule {
  names: Set<string>;
  isRecipeFolder: boolean;
}

/** KUBELET_DATA is the entry the kubelet renames to swap a mounted volume's content at once. */
const KUBELET_DATA = '..data';

/** InputWatcher tells when the content of a set of input files changes. */
export class InputWatcher {
  #inputs: WatchInputs;
  #seen: string;
  readonly #onChange: () => boolean | void;
  readonly #debounceMs: number;
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | null = null;
  #isClosed = false;

  /** InputWatcher starts watching at once; the inputs' current content is the baseline. */
  constructor(opts: InputWatcherOptions) {
    this.#inputs = opts.inputs;
    this.#onChange = opts.onChange;
    this.#debounceMs = opts.debounceMs ?? 200;
    this.#arm();
    this.#seen = hashInputs(this.#inputs);
  }

  /** follow switches to another set of inputs (a reload may import other files) and takes their content as seen. */
  follow(inputs: WatchInputs): void {
    if (this.#isClosed) return;
    this.#inputs = inputs;
    this.#arm();
    this.#seen = hashInputs(inputs);
  }

  /** close stops watching. */
  close(): void {
    this.#isClosed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    for (const w of this.#watchers.splice(0)) w.close();
  }

  #schedule(): void {
    if (this.#isClosed) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#check(), this.#debounceMs);
    this.#timer.unref();
  }

  #check(): void {
    this.#timer = null;
    if (this.#isClosed) return;
    // Watches first, content second: a change after this line raises a new event.
    this.#arm();
    const now = hashInputs(this.#inputs);
    if (now === this.#seen) return;
    this.#seen = now;
    if (this.#onChange() === false) {
      this.#seen = '';
      this.#schedule();
    }
  }

  #arm(): void {
    for (const w of this.#watchers.splice(0)) w.close();
    for (const [dir, rule] of watchRules(this.#inputs)) {
      const w = watchFolder(dir, (name) => {
        if (name === null || name === KUBELET_DATA || rule.names.has(name) || (rule.isRecipeFolder && name.endsWith('.json'))) this.#schedule();
      });
      if (w !== null) this.#watchers.push(w);
    }
  }
}

/** watchFolder watches one folder; null when it cannot be watched (its parent's rule covers its appearance). */
function watchFolder(dir: string, onName: (name: string | null) => void): FSWatcher | null {
  try {
    const w = watch(dir, { persistent: false }, (_event, name) => onName(name === null ? null : String(name)));
    // A watched folder that disappears (a swapped volume) must not take the process down; the next check re-arms.
    w.on('error', () => {
      w.close();
      onName(null);
    });
    return w;
  } catch {
    return null;
  }
}

/**
 * watchRules maps each folder to watch to the names that count there: each input's own name in
 * its folder, the name of every symlink on its way (and of the symlink's target), and for a
 * missing folder its name in the nearest folder that exists (so its creation is seen).
 */
function watchRules(inputs: WatchInputs): Map<string, Rule> {
  const rules = new Map<string, Rule>();
  const ruleOf = (dir: string): Rule => {
    let rule = rules.get(dir);
    if (rule === undefined) rules.set(dir, (rule = { names: new Set(), isRecipeFolder: false }));
    return rule;
  };
  const addPath = (path: string): void => {
    ruleOf(dirname(path)).names.add(basename(path));
    if (kindOf(path) === 'link') {
      const real = realOf(path);
      if (real !== null) ruleOf(dirname(real)).names.add(basename(real));
    }
    // A symlinked folder on the way can be swapped (a mounted volume); a missing one can appear.
    for (let dir = dirname(path), up = dirname(dir); dir !== up; dir = up, up = dirname(up)) {
      const kind = kindOf(dir);
      if (kind === 'link' || kind === 'missing') ruleOf(up).names.add(basename(dir));
    }
  };
  for (const f of inputs.files) addPath(f);
  for (const d of inputs.dirs) {
    addPath(d);
    ruleOf(d).isRecipeFolder = true;
  }
  // Only folders that exist can be watched; a missing one is covered by its name in its parent.
  for (const dir of [...rules.keys()]) if (kindOf(dir) === 'missing') rules.delete(dir);
  return rules;
}

function kindOf(path: string): 'dir' | 'link' | 'file' | 'missing' {
  try {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'file';
  } catch {
    return 'missing';
  }
}

function realOf(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/** hashInputs fingerprints the inputs' content: each file's bytes, and each folder's `*.json` names and bytes. */
function hashInputs(inputs: WatchInputs): string {
  const h = createHash('sha256');
  for (const f of [...inputs.files].sort()) hashFile(h, f);
  for (const d of [...inputs.dirs].sort()) {
    let names: string[];
    try {
      names = readdirSync(d).filter((n) => n.endsWith('.json')).sort();
    } catch (err) {
      h.update(`${d}\0dir:${(err as NodeJS.ErrnoException).code ?? 'error'}\0`);
      continue;
    }
    h.update(`${d}\0dir:${names.length}\0`);
    for (const n of names) hashFile(h, join(d, n));
  }
  return h.digest('hex');
}

function hashFile(h: Hash, path: string): void {
  try {
    const bytes = readFileSync(path);
    h.update(`${path}\0${bytes.length}\0`).update(bytes);
  } catch (err) {
    h.update(`${path}\0missing:${(err as NodeJS.ErrnoException).code ?? 'error'}\0`);
  }
}

/** BlueprintRefs is the part of a configuration that names other input files. */
interface BlueprintRefs {
  blueprints?: ReadonlyArray<{ file?: unknown; dir?: unknown }>;
}

/** configInputs lists what a config file is made of: the file itself and the recipe files and folders it imports. */
export function configInputs(configFile: string, config: BlueprintRefs | null): WatchInputs {
  const base = dirname(configFile);
  const files = [configFile];
  const dirs: string[] = [];
  for (const entry of Array.isArray(config?.blueprints) ? config.blueprints : []) {
    if (entry === null || typeof entry !== 'object') continue;
    if (typeof entry.file === 'string') files.push(resolve(base, entry.file));
    else if (typeof entry.dir === 'string') dirs.push(resolve(base, entry.dir));
  }
  return { files, dirs };
}

/**
 * readConfigInputs is configInputs for a file that failed to load: the blueprint entries are read
 * as written (best effort), so creating a recipe file the broken config names is still noticed.
 */
export function readConfigInputs(configFile: string): WatchInputs {
  let doc: unknown = null;
  try {
    doc = parse(readFileSync(configFile, 'utf8'));
  } catch {
    // Unreadable or not YAML: the file alone is watched until it is fixed.
  }
  return configInputs(configFile, doc !== null && typeof doc === 'object' ? (doc as BlueprintRefs) : null);
}
