import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { io, Tensor } from '@tensorflow/tfjs';
import { PredictorError } from '../../core/errors.js';
import type { RunnableModel } from '../../core/predictor/runnable-model.js';
import type { ModelFs } from '../../core/ports/model-fs.js';
import type { TensorSignature } from '../../core/predictor/predictor-contract.js';
import { withTensorBatching, type TensorBatching } from '../../core/predictor/tensor-batcher.js';
import type { TensorData, TensorDtype, TensorValues } from '../../core/predictor/tensor-data.js';
import type { SavedModelHandle, Tf, TfRuntime } from './tfjs-runtime.js';

/** What a model version folder (or file) holds. */
export type TfModelFormat = 'layers-model' | 'graph-model' | 'saved-model';

function layoutError(where: string, message: string): PredictorError {
  return new PredictorError(`${where}: ${message}`, { code: 'ENG_PREDICTOR_MODEL_LAYOUT' });
}

const EXPECTED_LAYOUT =
  'expected a TF.js model (model.json + weight shards, from tensorflowjs_converter or model.save) or, with @tensorflow/tfjs-node installed, a SavedModel (saved_model.pb + variables/); versions go in integer sub-folders (1/, 2/, …)';

/** Finds the model file of a version: `model.json` (TF.js), or the folder itself when it holds `saved_model.pb`. */
export async function tfModelFileOf(fs: ModelFs, where: string, path: string): Promise<{ format: 'tfjs' | 'saved-model'; path: string }> {
  if ((await fs.kind(path)) === 'file') {
    if (path.endsWith('.json')) return { format: 'tfjs', path };
    throw layoutError(where, `${path} is not a model.json; ${EXPECTED_LAYOUT}`);
  }
  const names = new Set((await fs.list(path)).filter((e) => e.kind === 'file').map((e) => e.name));
  if (names.has('model.json')) return { format: 'tfjs', path: `${path}/model.json` };
  if (names.has('saved_model.pb')) return { format: 'saved-model', path };
  throw layoutError(where, `no model.json or saved_model.pb in ${path}; ${EXPECTED_LAYOUT}`);
}

interface ModelJson {
  readonly format?: string;
  readonly modelTopology?: Record<string, unknown>;
  readonly weightsManifest?: ReadonlyArray<{ readonly paths: readonly string[]; readonly weights: readonly io.WeightsManifestEntry[] }>;
  readonly [k: string]: unknown;
}

/**
 * A TF.js IOHandler that reads model.json and its weight shards from the local disk (what
 * tfjs-node's `file://` handler does, for plain @tensorflow/tfjs). Shards are read in manifest order
 * and concatenated; a shard path may not leave the model's folder.
 */
export async function readTfjsArtifacts(tf: Tf, file: string, where: string): Promise<{ format: 'layers-model' | 'graph-model'; handler: io.IOHandler }> {
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(file, 'utf8')) as ModelJson;
  } catch (err) {
    throw new PredictorError(`${where}: cannot read ${file}: ${(err as Error).message}`, { code: 'ENG_PREDICTOR_MODEL_INVALID', cause: err });
  }
  const topology = json.modelTopology;
  if (typeof topology !== 'object' || topology === null) throw new PredictorError(`${where}: ${file} has no modelTopology`, { code: 'ENG_PREDICTOR_MODEL_INVALID' });
  const format =
    json.format === 'graph-model' || Array.isArray(topology.node)
      ? 'graph-model'
      : json.format === 'layers-model' || 'model_config' in topology || 'class_name' in topology
        ? 'layers-model'
        : undefined;
  if (!format) throw new PredictorError(`${where}: ${file} is neither a TF.js layers model nor a graph model (format ${JSON.stringify(json.format)})`, { code: 'ENG_PREDICTOR_MODEL_INVALID' });
  const base = dirname(file);
  const loadWeights = async (manifest: io.WeightsManifestConfig): Promise<[io.WeightsManifestEntry[], ArrayBuffer]> => {
    const specs: io.WeightsManifestEntry[] = [];
    const parts: Uint8Array[] = [];
    for (const group of manifest) {
      specs.push(...group.weights);
      for (const p of group.paths) {
        const shard = resolve(base, p);
        const rel = relative(base, shard);
        if (rel.startsWith('..') || isAbsolute(rel)) throw new PredictorError(`${where}: weight shard ${p} is outside ${base}`, { code: 'ENG_PREDICTOR_MODEL_INVALID' });
        try {
          parts.push(await readFile(shard));
        } catch (err) {
          throw new PredictorError(`${where}: cannot read weight shard ${shard}: ${(err as Error).message}`, { code: 'ENG_PREDICTOR_MODEL_INVALID', cause: err });
        }
      }
    }
    const all = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
    let o = 0;
    for (const b of parts) {
      all.set(b, o);
      o += b.length;
    }
    return [specs, all.buffer];
  };
  const handler: io.IOHandler = {
    load: () => tf.io.getModelArtifactsForJSON({ ...json, weightsManifest: json.weightsManifest ?? [] } as unknown as io.ModelJSON, loadWeights),
  };
  return { format, handler };
}

function shapeOf(shape: ReadonlyArray<number | null> | undefined): Array<number | string> {
  return (shape ?? []).map((d) => (d === null || d === undefined ? -1 : d));
}

function collect(names: readonly string[], ys: readonly Tensor[]): TensorData[] {
  const out: TensorData[] = [];
  for (let i = 0; i < names.length; i++) {
    const y = ys[i];
    // dataSync: the runtimes used here (wasm, cpu, tfjs-node) read synchronously; skipping the
    // promise of data() saves a few microseconds per output. TF.js bools come as 0/1 in a Uint8Array.
    out.push({ name: names[i], dtype: y.dtype as TensorDtype, shape: y.shape, data: y.dataSync() as unknown as TensorValues });
  }
  return out;
}

function toTensors(tf: Tf, inputs: readonly TensorData[]): Tensor[] {
  return inputs.map((t) => tf.tensor(t.data as Float32Array, [...t.shape], t.dtype as 'float32'));
}

/** A TF.js layers model (`tf.loadLayersModel`); inputs in `inputNames` order. */
async function layersModel(tf: Tf, handler: io.IOHandler): Promise<RunnableModel> {
  const model = await tf.loadLayersModel(handler);
  // A loaded Sequential model leaves inputNames/outputNames empty: fall back to the layer names.
  const nameOf = (t: (typeof model.inputs)[number], names: readonly string[], i: number): string => names[i] || t.sourceLayer?.name || t.name;
  const inputs: TensorSignature[] = model.inputs.map((t, i) => ({ name: nameOf(t, model.inputNames, i), dtype: t.dtype, shape: shapeOf(t.shape) }));
  const outputs: TensorSignature[] = model.outputs.map((t, i) => ({ name: nameOf(t, model.outputNames, i), dtype: t.dtype, shape: shapeOf(t.shape) }));
  const outputNames = outputs.map((o) => o.name);
  return {
    inputs,
    outputs,
    info: { format: 'layers-model' },
    async run(feeds) {
      const xs = toTensors(tf, feeds);
      let ys: Tensor[] = [];
      try {
        const y = model.predict(xs.length === 1 ? xs[0] : xs);
        ys = Array.isArray(y) ? y : [y];
        return collect(outputNames, ys);
      } finally {
        tf.dispose([...xs, ...ys]);
      }
    },
    async release() {
      model.dispose();
    },
  };
}

/** A TF.js graph model (`tf.loadGraphModel`): `execute`, or `executeAsync` once a graph needs it (control flow). */
async function graphModel(tf: Tf, handler: io.IOHandler): Promise<RunnableModel> {
  const model = await tf.loadGraphModel(handler);
  const inputs: TensorSignature[] = model.inputs.map((t) => ({ name: t.name, dtype: t.dtype ?? 'float32', shape: shapeOf(t.shape) }));
  const outputs: TensorSignature[] = model.outputs.map((t) => ({ name: t.name, dtype: t.dtype ?? 'unknown', shape: shapeOf(t.shape) }));
  const outputNames = outputs.map((o) => o.name);
  let useAsync = false;
  return {
    inputs,
    outputs,
    info: { format: 'graph-model' },
    async run(feeds) {
      const xs = toTensors(tf, feeds);
      const named: Record<string, Tensor> = {};
      feeds.forEach((f, i) => (named[f.name] = xs[i]));
      let ys: Tensor[] = [];
      try {
        let y: Tensor | Tensor[];
        if (useAsync) y = await model.executeAsync(named, outputNames);
        else {
          try {
            y = model.execute(named, outputNames);
          } catch (err) {
            // Graphs with control flow or dynamic shapes must run through executeAsync; remember that.
            if (!/executeAsync/.test((err as Error).message)) throw err;
            useAsync = true;
            y = await model.executeAsync(named, outputNames);
          }
        }
        ys = Array.isArray(y) ? y : [y];
        return collect(outputNames, ys);
      } finally {
        tf.dispose([...xs, ...ys]);
      }
    },
    async release() {
      model.dispose();
    },
  };
}

/**
 * A SavedModel signature through tfjs-node's `tf.node.loadSavedModel` (native runtimes only). The
 * signature is `signatureKey`, else `serving_default`, else the only one; inputs and outputs are the
 * signature's keys. Not exercised by the tests on machines without tfjs-node.
 */
async function savedModel(rt: TfRuntime, dir: string, signatureKey: string | undefined, where: string): Promise<RunnableModel> {
  const node = rt.node;
  if (!rt.native || !node) {
    throw new PredictorError(
      `${where}: ${dir} is a SavedModel, which needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu (running ${rt.label}); install one, or convert the model with tensorflowjs_converter`,
      { code: 'ENG_PREDICTOR_MODEL_UNSUPPORTED' },
    );
  }
  const metas = await node.getMetaGraphsFromSavedModel(dir);
  const meta = metas.find((m) => m.tags.includes('serve')) ?? metas[0];
  if (!meta) throw new PredictorError(`${where}: ${dir} has no meta graph`, { code: 'ENG_PREDICTOR_MODEL_INVALID' });
  const keys = Object.keys(meta.signatureDefs);
  const key = signatureKey ?? (keys.includes('serving_default') ? 'serving_default' : keys.length === 1 ? keys[0] : undefined);
  if (!key || !meta.signatureDefs[key]) {
    throw new PredictorError(`${where}: ${key ? `signature "${key}" not found` : 'signature_key is required when the model has more than one signature def'} (found: ${keys.join(', ')})`, {
      code: 'ENG_PREDICTOR_MODEL_INVALID',
    });
  }
  const sig = meta.signatureDefs[key];
  const handle: SavedModelHandle = await node.loadSavedModel(dir, [...meta.tags], key);
  const inputs: TensorSignature[] = Object.entries(sig.inputs).map(([name, t]) => ({ name, dtype: t.dtype, shape: shapeOf(t.shape) }));
  const outputs: TensorSignature[] = Object.entries(sig.outputs).map(([name, t]) => ({ name, dtype: t.dtype, shape: shapeOf(t.shape) }));
  const outputNames = outputs.map((o) => o.name);
  const tf = rt.tf;
  return {
    inputs,
    outputs,
    info: { format: 'saved-model', signatureKey: key },
    async run(feeds) {
      const xs = toTensors(tf, feeds);
      const named: Record<string, Tensor> = {};
      feeds.forEach((f, i) => (named[f.name] = xs[i]));
      let ys: Tensor[] = [];
      try {
        const y = handle.predict(named) as Tensor | Tensor[] | Record<string, Tensor>;
        ys = y instanceof tf.Tensor ? [y] : Array.isArray(y) ? y : outputNames.map((n) => (y as Record<string, Tensor>)[n]);
        return collect(outputNames, ys);
      } finally {
        tf.dispose([...xs, ...ys.filter(Boolean)]);
      }
    },
    async release() {
      handle.dispose();
    },
  };
}

/**
 * Loads one model version in the runtime. Throws `PredictorError` naming `where` (model and version).
 * With `batching` (server_side_batching), the model batches concurrent runs (`withTensorBatching`);
 * one without a usable batch dimension is released and throws `ENG_PREDICTOR_LOAD` naming the input.
 */
export async function loadTfModel(
  rt: TfRuntime,
  fs: ModelFs,
  path: string,
  signatureKey: string | undefined,
  where: string,
  batching?: TensorBatching,
): Promise<RunnableModel> {
  const model = await loadTfVersion(rt, fs, path, signatureKey, where);
  try {
    return withTensorBatching(model, batching, where);
  } catch (err) {
    await model.release();
    throw err;
  }
}

async function loadTfVersion(rt: TfRuntime, fs: ModelFs, path: string, signatureKey: string | undefined, where: string): Promise<RunnableModel> {
  const found = await tfModelFileOf(fs, where, path);
  if (found.format === 'saved-model') return savedModel(rt, found.path, signatureKey, where);
  const { format, handler } = await readTfjsArtifacts(rt.tf, found.path, where);
  try {
    return format === 'graph-model' ? await graphModel(rt.tf, handler) : await layersModel(rt.tf, handler);
  } catch (err) {
    if (err instanceof PredictorError) throw err;
    throw new PredictorError(`${where}: TF.js cannot load ${found.path} as a ${format}: ${(err as Error).message}`, { code: 'ENG_PREDICTOR_MODEL_INVALID', cause: err });
  }
}
