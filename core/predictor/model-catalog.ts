/**
 * The loaded models of one predictor instance, by name and version, and how a request picks one
 * (reference/cortex.md §4–5): with a single model the name is ignored; with several, a missing name is
 * Cortex's `model_name was not specified…` error; the version is a number or `latest` (the highest).
 */
import { HttpError, PredictorError } from '../errors.js';

export interface CatalogVersion<M> {
  readonly version: string;
  readonly model: M;
}
export interface CatalogModel<M> {
  readonly name: string;
  /** Ascending by version number; the last one is "latest". */
  readonly versions: readonly CatalogVersion<M>[];
}
export interface CatalogSelection<M> {
  readonly name: string;
  readonly version: string;
  readonly model: M;
}

/** Immutable after construction, so it is safe to share between concurrent requests. */
export class ModelCatalog<M> {
  private readonly byName = new Map<string, CatalogModel<M>>();

  /** Throws `PredictorError` when two models share a name or a model has no version. */
  constructor(models: readonly CatalogModel<M>[]) {
    for (const m of models) {
      if (this.byName.has(m.name)) throw new PredictorError(`two models are named "${m.name}"`, { code: 'ENG_PREDICTOR_MODEL_DUPLICATE' });
      if (m.versions.length === 0) throw new PredictorError(`model "${m.name}" has no version`, { code: 'ENG_PREDICTOR_MODEL_MISSING' });
      this.byName.set(m.name, m);
    }
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  models(): CatalogModel<M>[] {
    return [...this.byName.values()];
  }

  /**
   * Picks a model. `modelName` may be omitted when there is one model (and is then ignored, as in
   * Cortex); `version` is a number, a string of digits, `latest`, or omitted (latest).
   * Throws `HttpError(400)` when the name is needed but missing or the version is malformed, and
   * `HttpError(404)` when the model or version does not exist.
   */
  select(modelName?: string | null, version?: string | number | null): CatalogSelection<M> {
    let model: CatalogModel<M> | undefined;
    if (this.byName.size === 1) model = this.byName.values().next().value;
    else if (modelName === undefined || modelName === null || modelName === '') {
      throw new HttpError(400, `model_name was not specified; this API serves several models, choose one of: ${this.names().join(', ')}`);
    } else {
      model = this.byName.get(modelName);
      if (!model) throw new HttpError(404, `model "${modelName}" is not served by this API (models: ${this.names().join(', ')})`);
    }
    const m = model as CatalogModel<M>;
    if (version === undefined || version === null || version === '' || version === 'latest') {
      const v = m.versions[m.versions.length - 1];
      return { name: m.name, version: v.version, model: v.model };
    }
    const text = String(version);
    if (!/^\d+$/.test(text)) throw new HttpError(400, `model version must be a non-negative integer or "latest" (got ${JSON.stringify(version)})`);
    const wanted = String(BigInt(text));
    const v = m.versions.find((x) => x.version === wanted);
    if (!v) throw new HttpError(404, `model "${m.name}" has no version ${wanted} (versions: ${m.versions.map((x) => x.version).join(', ')})`);
    return { name: m.name, version: v.version, model: v.model };
  }
}
