/**
 * Where a field is written in a YAML or JSON file. The `yaml` parser keeps every node's source
 * range, and JSON is YAML 1.2, so one parse gives positions for both formats. Errors are found on
 * the plain data (schema paths such as ["models", 0, "url"]); the locator walks the same path
 * through the parsed nodes and turns the offset into a line and column.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';
import { isSecretField } from './config-error.js';

/** Position is a 1-based line and column in a file. */
export interface Position {
  line: number;
  column: number;
}

/** Locate finds a path's position; with atKey, the position of the field's name rather than its value. */
export type Locate = (path: readonly PropertyKey[], atKey?: boolean) => Position | undefined;

const FIELD_PART = /([^.[\]]+)|\[(\d+)\]/g;

/** toPathSegments turns a field such as "models[2].targets[0].url" back into path segments. */
export function toPathSegments(field: string): PropertyKey[] {
  const out: PropertyKey[] = [];
  for (const m of field.matchAll(FIELD_PART)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

/** Locator answers "where is this field written" for one parsed file. */
export class Locator {
  readonly #doc: Document.Parsed;
  readonly #lines: LineCounter;
  readonly #text: string;

  constructor(doc: Document.Parsed, lines: LineCounter, text: string) {
    this.#doc = doc;
    this.#lines = lines;
    this.#text = text;
  }

  /** parse reads text as YAML (or JSON) keeping node positions; the document's own errors are left to the caller. */
  static parse(text: string, uniqueKeys: boolean): Locator {
    const lines = new LineCounter();
    return new Locator(parseDocument(text, { uniqueKeys, lineCounter: lines }), lines, text);
  }

  /** doc is the parsed document (its `errors` are the syntax errors). */
  get doc(): Document.Parsed {
    return this.#doc;
  }

  /** positionOf turns a character offset into a line and column. */
  positionOf(offset: number): Position {
    const p = this.#lines.linePos(Math.max(0, Math.min(offset, this.#text.length)));
    return { line: p.line, column: p.col };
  }

  /** at is the Locate of this file: the value at path, its key with atKey, or the nearest written ancestor when the path is absent. */
  readonly at: Locate = (path, atKey = false) => {
    const { node, key, complete } = this.#walk(path);
    if (complete && atKey && key) return this.#start(key);
    // An empty value ("targets:" and nothing) has no range of its own: point at its key.
    if (node === undefined && key !== undefined) return this.#start(key);
    return this.#start(node);
  };

  /** isFlow tells whether the collection at path is written in flow style ({...} or [...], as all of JSON is). */
  readonly isFlow = (path: readonly PropertyKey[]): boolean => {
    const { node, complete } = this.#walk(path);
    return complete && (isMap(node) || isSeq(node)) && node.flow === true;
  };

  /** atField is `at` for a rendered field such as "models[0].path". */
  atField(field: string, atKey = false): Position | undefined {
    return this.at(toPathSegments(field), atKey);
  }

  /**
   * fieldAt names the entry a syntax error sits in. It follows block values that start on a later
   * line than their key, and flow collections (JSON); a block mapping that starts on its key's line
   * is the parser's recovery from the very slip being reported, so it is not followed. Nor is
   * anything under a secret field: a name there may be a key.
   */
  fieldAt(offset: number): PropertyKey[] {
    const path: PropertyKey[] = [];
    let node: unknown = this.#doc.contents;
    for (;;) {
      if (isMap(node)) {
        let chosen: Pair | undefined;
        for (const p of node.items) if (isNodeWithRange(p.key) && p.key.range[0] <= offset) chosen = p;
        if (chosen === undefined || !isNodeWithRange(chosen.key) || !isNodeWithRange(chosen.value)) break;
        const value = chosen.value;
        if (!(isMap(value) || isSeq(value)) || value.range[0] > offset) break;
        const sameLine = this.positionOf(value.range[0]).line === this.positionOf(chosen.key.range[0]).line;
        if (sameLine && !value.flow) break;
        path.push(keyText(chosen));
        if (isSecretField(keyText(chosen))) break;
        node = value;
      } else if (isSeq(node)) {
        let index = -1;
        node.items.forEach((item, i) => {
          if (isNodeWithRange(item) && item.range[0] <= offset) index = i;
        });
        if (index < 0) break;
        path.push(index);
        node = node.items[index];
      } else break;
    }
    return path;
  }

  /** #walk follows path through the nodes; `node` is the deepest one reached, `key` the last key node passed. */
  #walk(path: readonly PropertyKey[]): { node: Node | undefined; key: Node | undefined; complete: boolean } {
    let node: Node | undefined = isNodeWithRange(this.#doc.contents) ? this.#doc.contents : undefined;
    let key: Node | undefined;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyText(p) === String(seg));
        if (pair === undefined) return { node, key, complete: false };
        key = isNodeWithRange(pair.key) ? pair.key : undefined;
        if (!isNodeWithRange(pair.value) || isEmptyScalar(pair.value)) return { node: undefined, key, complete: i === path.length - 1 };
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (!isNodeWithRange(item)) return { node, key, complete: false };
        node = item;
        key = undefined;
      } else return { node, key, complete: false };
    }
    return { node, key, complete: true };
  }

  #start(node: Node | undefined): Position {
    if (node?.range === undefined || node.range === null) return { line: 1, column: 1 };
    return this.positionOf(node.range[0]);
  }
}

function isNodeWithRange(v: unknown): v is Node & { range: [number, number, number] } {
  return v !== null && typeof v === 'object' && Array.isArray((v as Node).range);
}

/** isEmptyScalar: "field:" with nothing after it parses as a zero-width null. */
function isEmptyScalar(node: Node & { range: [number, number, number] }): boolean {
  return isScalar(node) && node.value === null && node.range[0] === node.range[1];
}

function keyText(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}
