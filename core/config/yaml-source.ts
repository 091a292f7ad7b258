/**
 * YAML with positions: parses a configuration file's text with the `yaml` package, keeps the node tree
 * and a `LineCounter`, and answers "where in the file is `[item, 'autoscaling', 'min_replicas']`?" so
 * every problem can be reported as `<file>:<line>:<col>`. Guards against resource exhaustion: the
 * text size, the nesting depth and alias expansion are bounded, so parsing a hostile file takes bounded
 * time and memory.
 */
import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  type Document,
  type Node as YamlNode,
  type Pair,
} from 'yaml';

/** A path inside the file's data: map keys and list indexes. */
export type DataPath = readonly (string | number)[];

/** 1-based line and column. */
export interface Position {
  readonly line: number;
  readonly col: number;
}

/** Largest configuration file accepted, in bytes of text (Cortex files are a few KiB). */
export const MAX_CONFIG_TEXT_CHARS = 1024 * 1024;
/** Deepest nesting of maps and lists accepted (the schema itself needs 6 levels; `config` maps get the rest). */
export const MAX_CONFIG_DEPTH = 64;
/** Aliases expanded at most this many times (the `yaml` package's guard against "billion laughs"). */
export const MAX_ALIAS_COUNT = 100;

/** A problem found while reading the YAML itself, before any API is looked at. */
export interface SourceProblem {
  readonly position: Position;
  readonly message: string;
  readonly severity: 'error' | 'warning';
}

export type ParsedSource =
  | { readonly ok: true; readonly source: YamlSource; readonly data: unknown; readonly warnings: readonly SourceProblem[] }
  | { readonly ok: false; readonly problems: readonly SourceProblem[] };

const START: Position = { line: 1, col: 1 };

/**
 * Parses `text` as one YAML document. Returns the plain data (`toJS`) and a `YamlSource` for positions,
 * or the problems that make the text unusable: not text, too large, malformed YAML (every syntax error
 * with its position), several documents, too deep, or too many aliases. Never throws.
 */
export function parseYamlSource(text: string): ParsedSource {
  const fail = (position: Position, message: string): ParsedSource => ({ ok: false, problems: [{ position, message, severity: 'error' }] });
  if (text.length > MAX_CONFIG_TEXT_CHARS) {
    return fail(START, `the file is too large (${text.length} characters; a configuration file may have at most ${MAX_CONFIG_TEXT_CHARS})`);
  }
  const nul = text.indexOf('\u0000');
  const lineCounter = new LineCounter();
  if (nul >= 0) {
    // LineCounter only learns line starts while parsing, so count them here.
    return fail(positionInText(text, nul), 'this is not a text file (found a NUL byte); expected a YAML list of APIs');
  }
  const tooDeep = flowDepthExceeded(text);
  if (tooDeep !== undefined) {
    // Checked before parsing: the parser recurses once per level, so very deep input is slow to reject.
    return fail(positionInText(text, tooDeep), `the data is nested more than ${MAX_CONFIG_DEPTH} levels deep`);
  }
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, {
      logLevel: 'error',
      lineCounter,
      merge: true,
      uniqueKeys: true,
      prettyErrors: false,
      strict: true,
    }) as Document.Parsed[];
  } catch (err) {
    return fail(START, parseFailure(err));
  }
  const pos = (offset: number): Position => {
    const p = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
    return { line: p.line, col: p.col };
  };
  if (docs.length === 0) {
    return fail(START, 'the file is empty; expected a YAML list of APIs, e.g. "- name: my-api"');
  }
  const doc = docs[0];
  const problems: SourceProblem[] = [];
  if (doc.errors.length > 0) {
    const tab = /^ *\t/m.exec(text);
    if (tab !== null) {
      // yaml's messages for tab indentation are about the tokens it then misreads; say what is wrong instead.
      return fail(positionInText(text, tab.index), 'invalid YAML: tabs are not allowed for indentation; indent with spaces');
    }
  }
  const seen = new Set<string>();
  for (const e of doc.errors) {
    const message = /call stack/i.test(e.message) ? `the data is nested too deeply to read (more than ${MAX_CONFIG_DEPTH} levels)` : `invalid YAML: ${yamlMessage(e.message)}`;
    if (seen.has(message) && !message.startsWith('invalid YAML')) continue;
    seen.add(message);
    problems.push({ position: pos(e.pos[0]), message, severity: 'error' });
  }
  if (docs.length > 1) {
    const second = docs[1];
    const offset = second.range?.[0] ?? text.length;
    problems.push({
      position: pos(offset),
      message: 'the file holds more than one YAML document ("---"); put every API in one list',
      severity: 'error',
    });
  }
  if (problems.length > 0) return { ok: false, problems };

  const shape = findTooDeep(doc.contents);
  if (shape !== undefined) return fail(pos(shape.offset), shape.message);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof ReferenceError && /alias/i.test(err.message)) {
      const firstAlias = findFirstAlias(doc.contents);
      return fail(firstAlias === undefined ? START : pos(firstAlias), `too many YAML alias expansions (at most ${MAX_ALIAS_COUNT}); write the values out or use fewer aliases`);
    }
    return fail(START, parseFailure(err));
  }
  const warnings: SourceProblem[] = doc.warnings.map((w) => ({ position: pos(w.pos[0]), message: yamlMessage(w.message), severity: 'warning' }));
  return { ok: true, source: new YamlSource(doc, pos), data, warnings };
}

/** Locates paths of the parsed data in the file. */
export class YamlSource {
  constructor(
    private readonly doc: Document.Parsed,
    private readonly pos: (offset: number) => Position,
  ) {}

  /** Position of the document's top-level node. */
  root(): Position {
    return this.pos(this.doc.contents?.range?.[0] ?? 0);
  }

  /**
   * Where `path` is written: the key of the last map entry on the path (`min_replicas:`), or the list
   * item's start. When the path does not exist (a missing required field), the deepest existing part.
   * Aliases and `<<` merge keys are followed, so a value that comes from an anchor points at the anchor.
   * `at: 'value'` prefers the value's position over the key's.
   */
  locate(path: DataPath, at: 'key' | 'value' = 'key'): Position {
    let node: unknown = this.doc.contents;
    let best = this.doc.contents?.range?.[0] ?? 0;
    for (let i = 0; i < path.length; i++) {
      node = this.deref(node);
      const seg = path[i];
      if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined || item === null) return this.pos(best);
        node = item;
        const r = (this.deref(item) as YamlNode | undefined)?.range ?? (item as YamlNode).range;
        if (r) best = r[0];
        continue;
      }
      if (isMap(node)) {
        const pair = this.findPair(node.items as Pair[], String(seg), 0);
        if (pair === undefined) return this.pos(best);
        const keyStart = (pair.key as YamlNode | null)?.range?.[0];
        const valueStart = (this.deref(pair.value) as YamlNode | null | undefined)?.range?.[0];
        const last = i === path.length - 1;
        best = last && at === 'value' ? valueStart ?? keyStart ?? best : keyStart ?? best;
        node = pair.value;
        continue;
      }
      return this.pos(best);
    }
    return this.pos(best);
  }

  private deref(node: unknown): unknown {
    let n = node;
    for (let hops = 0; isAlias(n) && hops < 16; hops++) n = n.resolve(this.doc);
    return n;
  }

  /** The entry for `key` in a map, looking into `<<` merge sources when the map does not have it itself. */
  private findPair(items: readonly Pair[], key: string, depth: number): Pair | undefined {
    for (const p of items) if (isPair(p) && keyText(p.key) === key) return p;
    if (depth > 8) return undefined;
    for (const p of items) {
      if (!isPair(p) || keyText(p.key) !== '<<') continue;
      const sources = isSeq(this.deref(p.value)) ? (this.deref(p.value) as { items: unknown[] }).items : [p.value];
      for (const s of sources) {
        const m = this.deref(s);
        if (isMap(m)) {
          const found = this.findPair(m.items as Pair[], key, depth + 1);
          if (found) return found;
        }
      }
    }
    return undefined;
  }
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return typeof key.value === 'symbol' ? key.value.description : String(key.value);
  return undefined;
}

/**
 * Offset where `[`/`{` flow collections nest deeper than MAX_CONFIG_DEPTH, by a linear scan that skips
 * quoted strings and comments (a cheap guard; the exact check on the parsed tree follows).
 */
function flowDepthExceeded(text: string): number | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const prev = i === 0 ? '\n' : text[i - 1];
    const atTokenStart = prev === ' ' || prev === '\n' || prev === '\t' || prev === '[' || prev === '{' || prev === ',' || prev === ':';
    if (c === '#' && (prev === ' ' || prev === '\n' || prev === '\t')) {
      const eol = text.indexOf('\n', i);
      i = eol < 0 ? text.length : eol;
    } else if ((c === '"' || c === "'") && atTokenStart) {
      for (i++; i < text.length; i++) {
        if (c === '"' && text[i] === '\\') i++;
        else if (text[i] === c) {
          if (c === "'" && text[i + 1] === "'") i++;
          else break;
        }
      }
    } else if (c === '[' || c === '{') {
      if (++depth > MAX_CONFIG_DEPTH) return i;
    } else if ((c === ']' || c === '}') && depth > 0) {
      depth--;
    }
  }
  return undefined;
}

/** The first node nested deeper than MAX_CONFIG_DEPTH, or used as a map key while being a collection (iterative walk). */
function findTooDeep(root: unknown): { offset: number; message: string } | undefined {
  const stack: [unknown, number][] = [[root, 0]];
  let visited = 0;
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (++visited > 2_000_000) return undefined;
    if (isMap(node) || isSeq(node)) {
      if (depth > MAX_CONFIG_DEPTH) return { offset: node.range?.[0] ?? 0, message: `the data is nested more than ${MAX_CONFIG_DEPTH} levels deep` };
      for (const item of node.items as unknown[]) {
        if (isPair(item)) {
          if (isMap(item.key) || isSeq(item.key)) return { offset: item.key.range?.[0] ?? 0, message: 'a map or a list cannot be used as a key; keys must be plain names' };
          stack.push([item.key, depth + 1]);
          stack.push([item.value, depth + 1]);
        } else stack.push([item, depth + 1]);
      }
    }
  }
  return undefined;
}

function findFirstAlias(root: unknown): number | undefined {
  const stack: unknown[] = [root];
  let first: number | undefined;
  while (stack.length > 0) {
    const node = stack.pop();
    if (isAlias(node)) {
      const s = node.range?.[0];
      if (s !== undefined && (first === undefined || s < first)) first = s;
    } else if (isMap(node) || isSeq(node)) {
      for (const item of node.items as unknown[]) {
        if (isPair(item)) stack.push(item.key, item.value);
        else stack.push(item);
      }
    }
  }
  return first;
}

/** 1-based position of a character offset, counting lines by hand (for problems found before parsing). */
export function positionInText(text: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: offset - lineStart + 1 };
}

/** yaml's messages sometimes end with a source excerpt; keep the first line only. */
function yamlMessage(message: string): string {
  const first = message.split('\n')[0].trim();
  return first.replace(/ at line \d+, column \d+:?$/, '');
}

function parseFailure(err: unknown): string {
  if (err instanceof RangeError) return `the data is nested too deeply to read (more than ${MAX_CONFIG_DEPTH} levels)`;
  const message = err instanceof Error ? err.message : String(err);
  return `cannot read the YAML: ${yamlMessage(message)}`;
}
