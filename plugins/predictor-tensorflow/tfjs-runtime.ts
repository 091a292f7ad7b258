import type { Logger } from '../../core/ports/logger.js';
import { PredictorError } from '../../core/errors.js';

/** The TF.js API surface this plugin uses (the tfjs-node packages re-export the same API). */
export type Tf = typeof import('@tensorflow/tfjs');

/** Signature info as tfjs-node reports it for a SavedModel. */
export interface SavedModelTensorInfo {
  readonly name: string;
  readonly shape?: readonly number[];
  readonly dtype: string;
}
export interface SavedModelMetaGraph {
  readonly tags: readonly string[];
  readonly signatureDefs: Readonly<
    Record<string, { readonly inputs: Readonly<Record<string, SavedModelTensorInfo>>; readonly outputs: Readonly<Record<string, SavedModelTensorInfo>> }>
  >;
}
/** A loaded SavedModel signature (tfjs-node's `TFSavedModel`). */
export interface SavedModelHandle {
  predict(inputs: Record<string, unknown>): unknown;
  dispose(): void;
}
/** `tf.node` of @tensorflow/tfjs-node(-gpu): SavedModel support. */
export interface TfNodeApi {
  getMetaGraphsFromSavedModel(path: string): Promise<SavedModelMetaGraph[]>;
  loadSavedModel(path: string, tags?: string[], signature?: string): Promise<SavedModelHandle>;
}

/** The TensorFlow runtime a thread uses. */
export interface TfRuntime {
  readonly tf: Tf;
  /** The npm package that provides `tf`: `@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node` or `@tensorflow/tfjs`. */
  readonly packageName: string;
  readonly version: string;
  /** tf.getBackend(): `tensorflow` (native), `wasm` or `cpu`. */
  readonly backend: string;
  /** True with the native bindings (SavedModel directories load only then). */
  readonly native: boolean;
  readonly node?: TfNodeApi;
  /** For logs and describe(), e.g. `@tensorflow/tfjs 4.22.0 (wasm backend)`. */
  readonly label: string;
}

/** Environment variable choosing the runtime: `auto` (default: native if importable, else wasm), `native`, `wasm` or `cpu`. */
export const TFJS_RUNTIME_ENV = 'MYELIN_TFJS_RUNTIME';
export type TfRuntimeChoice = 'auto' | 'native' | 'wasm' | 'cpu';

/** Native packages tried in order (GPU first), each by dynamic import so a missing one is not an error. */
export const NATIVE_TF_PACKAGES: readonly string[] = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

export function parseRuntimeChoice(raw: string | undefined): TfRuntimeChoice {
  const v = (raw ?? 'auto').trim().toLowerCase() || 'auto';
  if (v === 'auto' || v === 'native' || v === 'wasm' || v === 'cpu') return v;
  throw new PredictorError(`${TFJS_RUNTIME_ENV} must be auto, native, wasm or cpu (got "${raw}")`, { code: 'ENG_PREDICTOR_LOAD' });
}

async function tryNative(name: string, log: Logger): Promise<TfRuntime | undefined> {
  let mod: Record<string, unknown>;
  try {
    // A variable specifier: the package is optional and usually not installed.
    mod = (await import(name)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const reason = code === 'ERR_MODULE_NOT_FOUND' ? 'not installed' : (err as Error).message;
    log.info({ package: name, reason }, 'native tensorflow unavailable, falling back');
    return undefined;
  }
  const tf = ((mod.default as Tf | undefined)?.tensor ? mod.default : mod) as Tf & { node?: TfNodeApi };
  await tf.ready();
  const version = (tf.version as Record<string, string>)['tfjs-node'] ?? tf.version.tfjs;
  return { tf, packageName: name, version, backend: tf.getBackend(), native: true, node: tf.node, label: `${name} ${version} (${tf.getBackend()} backend)` };
}

async function pureJs(choice: 'wasm' | 'cpu', log: Logger): Promise<TfRuntime> {
  const tf = await import('@tensorflow/tfjs');
  let backend: 'wasm' | 'cpu' = choice;
  if (choice === 'wasm') {
    try {
      // Registers the `wasm` backend with the same tfjs-core; in Node it reads its .wasm file next to its own script.
      await import('@tensorflow/tfjs-backend-wasm');
      if (!(await tf.setBackend('wasm'))) throw new PredictorError('tfjs: tf.setBackend("wasm") returned false', { code: 'ENG_PREDICTOR_LOAD' });
    } catch (err) {
      log.warn({ err }, 'tfjs wasm backend unavailable, using the cpu backend');
      backend = 'cpu';
    }
  }
  if (backend === 'cpu' && !(await tf.setBackend('cpu'))) throw new PredictorError('tfjs: neither the wasm nor the cpu backend could start', { code: 'ENG_PREDICTOR_LOAD' });
  await tf.ready();
  const version = tf.version.tfjs;
  return { tf, packageName: '@tensorflow/tfjs', version, backend: tf.getBackend(), native: false, label: `@tensorflow/tfjs ${version} (${tf.getBackend()} backend)` };
}

/**
 * Picks the runtime: with `auto`, @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node (each by
 * dynamic import; a missing or broken one is logged and skipped), then @tensorflow/tfjs with the
 * wasm backend (cpu if wasm cannot start). `native` fails with `PredictorError` when no native
 * package loads. The TF.js engine is global to a thread, so one runtime per thread is kept
 * (`runtimeFor` caches it); worker threads each choose their own.
 */
export async function selectTfRuntime(choice: TfRuntimeChoice, log: Logger): Promise<TfRuntime> {
  if (choice === 'auto' || choice === 'native') {
    for (const name of NATIVE_TF_PACKAGES) {
      const rt = await tryNative(name, log);
      if (rt) return rt;
    }
    if (choice === 'native') {
      throw new PredictorError(`${TFJS_RUNTIME_ENV}=native but neither ${NATIVE_TF_PACKAGES.join(' nor ')} can be imported`, { code: 'ENG_PREDICTOR_LOAD' });
    }
    return pureJs('wasm', log);
  }
  return pureJs(choice, log);
}

// One runtime per thread (module state is per thread, so workers do not share it).
const runtimes = new Map<TfRuntimeChoice, Promise<TfRuntime>>();

/** `selectTfRuntime`, once per thread and choice; a failed choice is retried on the next call. */
export function runtimeFor(choice: TfRuntimeChoice, log: Logger): Promise<TfRuntime> {
  let rt = runtimes.get(choice);
  if (!rt) {
    rt = selectTfRuntime(choice, log);
    runtimes.set(choice, rt);
    rt.catch(() => runtimes.delete(choice));
  }
  return rt;
}
