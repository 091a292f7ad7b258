import { DuplicateKindError, UnknownKindError } from '../errors.js';

/** Anything contributed to a contribution point under a `kind` name. */
export interface KindContribution {
  readonly kind: string;
  /** Other names this contribution answers to (e.g. `typescript` for `javascript`). */
  readonly aliases?: readonly string[];
}

/**
 * Resolves contributions by kind (SG 3.2). Rejects duplicate kinds at construction and throws
 * `UnknownKindError` listing the known kinds when asked for one that is not registered.
 */
export class KindRegistry<T extends KindContribution> {
  private readonly byKind = new Map<string, T>();
  constructor(
    readonly point: string,
    all: readonly T[],
  ) {
    for (const c of all) {
      for (const k of [c.kind, ...(c.aliases ?? [])]) {
        if (this.byKind.has(k)) throw new DuplicateKindError(point, k);
        this.byKind.set(k, c);
      }
    }
  }
  /** The contribution registered for `kind`; throws `UnknownKindError` if there is none. */
  get(kind: string): T {
    const c = this.byKind.get(kind);
    if (!c) throw new UnknownKindError(this.point, kind, this.kinds());
    return c;
  }
  has(kind: string): boolean {
    return this.byKind.has(kind);
  }
  /** Every registered kind and alias, sorted. */
  kinds(): string[] {
    return [...this.byKind.keys()].sort();
  }
}
