import { injectable, multiInject } from 'inversify';
import { DuplicateKindError } from '../errors.js';
import { ModelStoreContribution, ModelStoreError, modelUrlScheme, type ModelStore, type StoredObject } from '../ports/model-store.js';

/**
 * Resolves the model store of a URL by its scheme (`s3://…` → the s3 adapter, a plain path → `file`)
 * among the loaded adapter modules' contributions. The only class that injects
 * `ModelStoreContribution` (SG 3.2); rejects a scheme contributed twice at construction
 * (`DuplicateKindError`).
 */
@injectable()
export class ModelStoreRegistry {
  private readonly byScheme = new Map<string, ModelStoreContribution>();

  constructor(@multiInject(ModelStoreContribution) all: readonly ModelStoreContribution[]) {
    for (const c of all) {
      for (const scheme of c.schemes) {
        if (this.byScheme.has(scheme)) throw new DuplicateKindError('model store scheme', scheme);
        this.byScheme.set(scheme, c);
      }
    }
  }

  /**
   * The store for `url`'s scheme. Throws `ModelStoreError` `ENG_MODEL_SCHEME` naming the URL and the
   * known schemes when no adapter serves it (`ftp://…`).
   */
  get(url: string): ModelStoreContribution {
    const scheme = modelUrlScheme(url);
    const store = this.byScheme.get(scheme);
    if (!store) {
      const known = this.schemes();
      throw new ModelStoreError(
        url,
        `${url}: no model store for "${scheme}" URLs (known: ${known.length ? known.map((s) => (s === 'file' ? 'local paths and file://' : `${s}://`)).join(', ') : 'none'})`,
        { code: 'ENG_MODEL_SCHEME' },
      );
    }
    return store;
  }

  /** True when some store serves `url`'s scheme. */
  has(url: string): boolean {
    return this.byScheme.has(modelUrlScheme(url));
  }

  /** `get(url).list(url)`: the objects at or below `url` (see `ModelStore.list`). */
  list(url: string, signal?: AbortSignal): Promise<StoredObject[]> {
    return this.get(url).list(url, signal);
  }

  /** Every registered scheme, sorted. */
  schemes(): string[] {
    return [...this.byScheme.keys()].sort();
  }
}

/** What the model cache needs of the registry: a store per URL. */
export interface ModelStoreResolver {
  get(url: string): ModelStore;
}
