import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { nodeProjectFileSystem } from '../../../adapters/fs/node-project-file-system.js';
import { loadApiSpecs, loadApiSpecsFromFile } from '../../../core/config/load-api-specs.js';
import { ConfigError, formatConfigProblem } from '../../../core/errors.js';
import { loadIn, loadText, makeProject, PROJECT_FILES } from './config-test-helpers.js';

/** The head of a valid python API named iris; cases append sections (lines 1-5). */
const PY = '- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n';

type Case = { readonly name: string; readonly yaml: string; readonly want: readonly string[]; readonly files?: Record<string, string> };

/** Each case: the file, and every problem it must produce (line:col: api: field: message), nothing more. */
const cases: readonly Case[] = [
  // ---- autoscaling (reference/cortex.md §10)
  {
    name: 'min_replicas > max_replicas',
    yaml: `${PY}  autoscaling:\n    min_replicas: 5\n    max_replicas: 2\n`,
    want: ['7:5: iris: autoscaling.min_replicas: cannot be greater than max_replicas (5 > 2)'],
  },
  {
    name: 'init_replicas < min_replicas',
    yaml: `${PY}  autoscaling:\n    min_replicas: 2\n    init_replicas: 1\n`,
    want: ['8:5: iris: autoscaling.init_replicas: cannot be less than min_replicas (1 < 2)'],
  },
  {
    name: 'init_replicas > max_replicas',
    yaml: `${PY}  autoscaling:\n    max_replicas: 3\n    init_replicas: 4\n`,
    want: ['8:5: iris: autoscaling.init_replicas: cannot be greater than max_replicas (4 > 3)'],
  },
  {
    name: 'target_replica_concurrency > max_replica_concurrency',
    yaml: `${PY}  autoscaling:\n    target_replica_concurrency: 2000\n`,
    want: ['7:5: iris: autoscaling.target_replica_concurrency: target_replica_concurrency (2000) cannot be greater than max_replica_concurrency (1024)'],
  },
  {
    name: 'default target (processes * threads) > max_replica_concurrency',
    yaml: `${PY}    processes_per_replica: 4\n    threads_per_process: 8\n  autoscaling:\n    max_replica_concurrency: 16\n`,
    want: [
      '9:5: iris: autoscaling.max_replica_concurrency: target_replica_concurrency (32, the default: processes_per_replica * threads_per_process = 4 * 8) cannot be greater than max_replica_concurrency (16)',
    ],
  },
  {
    name: 'bounds of every autoscaling number',
    yaml: `${PY}  autoscaling:
    min_replicas: -1
    max_replicas: -1
    init_replicas: 1.5
    target_replica_concurrency: 0
    max_replica_concurrency: 50000
    max_downscale_factor: 1
    max_upscale_factor: 1
    downscale_tolerance: 1
    upscale_tolerance: -0.1
    panic_threshold: 1
    target_cpu_utilization: 101
`,
    want: [
      '7:5: iris: autoscaling.min_replicas: must be greater than or equal to 0 (got -1)',
      '8:5: iris: autoscaling.max_replicas: must be greater than or equal to 1 (got -1)',
      '9:5: iris: autoscaling.init_replicas: must be an integer (got 1.5)',
      '10:5: iris: autoscaling.target_replica_concurrency: must be greater than 0 (got 0)',
      '11:5: iris: autoscaling.max_replica_concurrency: must be less than or equal to 30000 (got 50000)',
      '12:5: iris: autoscaling.max_downscale_factor: must be less than 1 (got 1)',
      '13:5: iris: autoscaling.max_upscale_factor: must be greater than 1 (got 1)',
      '14:5: iris: autoscaling.downscale_tolerance: must be less than 1 (got 1)',
      '15:5: iris: autoscaling.upscale_tolerance: must be greater than or equal to 0 (got -0.1)',
      '16:5: iris: autoscaling.panic_threshold: must be greater than 1 (got 1)',
      '16:5: iris: autoscaling.panic_threshold: warning: has no effect with the cortex policy (only the burst policy has a panic mode)',
      '17:5: iris: autoscaling.target_cpu_utilization: must be less than or equal to 100 (got 101)',
      '17:5: iris: autoscaling.target_cpu_utilization: warning: has no effect with the cortex policy (only the cpu policy uses it)',
    ],
  },
  {
    name: 'window not a multiple of the tick',
    yaml: `${PY}  autoscaling:\n    window: 15s\n`,
    want: ['7:5: iris: autoscaling.window: 15s is not a multiple of the tick, 10s (the default for the cortex policy)'],
  },
  {
    name: 'window shorter than the tick',
    yaml: `${PY}  autoscaling:\n    tick: 20s\n    window: 10s\n`,
    want: ['8:5: iris: autoscaling.window: must be at least the tick, 20s (got 10s)'],
  },
  {
    name: 'tick below the 1s sampling interval',
    yaml: `${PY}  autoscaling:\n    tick: 500ms\n`,
    want: ['7:5: iris: autoscaling.tick: must be at least 1s, the metric sampling interval (got 500ms)'],
  },
  {
    name: 'panic window out of range',
    yaml: `${PY}  autoscaling:\n    policy: burst\n    panic_window: 1s\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n  autoscaling:\n    policy: burst\n    panic_window: 2m\n`,
    want: [
      '8:5: iris: autoscaling.panic_window: must be at least one tick, 2s (got 1s)',
      '16:5: b: autoscaling.panic_window: cannot be greater than window (2m > 1m)',
    ],
  },
  {
    name: 'durations that are not durations',
    yaml: `${PY}    timeout: 0s\n  autoscaling:\n    window: 60\n    downscale_stabilization_period: 5 minutes\n    upscale_stabilization_period: -1m\n`,
    want: [
      '6:5: iris: predictor.timeout: must be greater than 0 (got "0s")',
      '8:5: iris: autoscaling.window: must be a duration such as "250ms", "60s", "5m" or "1h30m", with a unit (got 60)',
      '9:5: iris: autoscaling.downscale_stabilization_period: invalid duration (got "5 minutes", must be a duration such as "250ms", "60s", "5m" or "1h30m")',
      '10:5: iris: autoscaling.upscale_stabilization_period: invalid duration (got "-1m", must be a duration such as "250ms", "60s", "5m" or "1h30m")',
    ],
  },
  {
    name: 'unknown policy',
    yaml: `${PY}  autoscaling:\n    policy: brust\n`,
    want: ['7:5: iris: autoscaling.policy: invalid value (got "brust", must be "cortex", "burst", or "cpu") (did you mean "burst"?)'],
  },
  {
    name: 'cpu policy without a CPU request',
    yaml: `${PY}  compute:\n    cpu: null\n  autoscaling:\n    policy: cpu\n`,
    want: ['7:5: iris: compute.cpu: the cpu scaling policy needs a CPU request: utilization is measured against it (got null)'],
  },
  // ---- update strategy (§8)
  {
    name: 'max_surge and max_unavailable both zero',
    yaml: `${PY}  update_strategy:\n    max_surge: 0\n    max_unavailable: 0%\n`,
    want: ['8:5: iris: update_strategy.max_unavailable: max_surge and max_unavailable cannot both be zero'],
  },
  {
    name: 'bad int-or-percent values',
    yaml: `${PY}  update_strategy:\n    max_surge: 150%\n    max_unavailable: lots\n`,
    want: [
      '7:5: iris: update_strategy.max_surge: must be a percentage between 0% and 100% (got "150%")',
      '8:5: iris: update_strategy.max_unavailable: invalid value (got "lots", must be an integer such as 5 or a percentage such as "10%")',
    ],
  },
  // ---- predictor
  {
    name: 'predictor type must be known',
    yaml: '- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: pytorch\n    path: predictor.ts\n',
    want: ['4:5: iris: predictor.type: invalid value (got "pytorch", must be "python", "tensorflow", "onnx", "javascript", or "typescript")'],
  },
  {
    name: 'python and javascript need a path',
    yaml: '- name: a\n  kind: RealtimeAPI\n  predictor:\n    type: python\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: javascript\n',
    want: ['3:3: a: predictor.path: must be defined for the python predictor type', '7:3: b: predictor.path: must be defined for the javascript predictor type'],
  },
  {
    name: 'tensorflow and onnx need model_path or models',
    yaml: '- name: a\n  kind: RealtimeAPI\n  predictor:\n    type: tensorflow\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n',
    want: [
      '3:3: a: predictor: either "model_path" or "models" must be defined for the tensorflow predictor type',
      '7:3: b: predictor: either "model_path" or "models" must be defined for the onnx predictor type',
    ],
  },
  {
    name: 'model_path and models together',
    yaml: `${PY}    model_path: s3://my-bucket/model/\n    models:\n      dir: s3://my-bucket/models/\n`,
    want: ['7:5: iris: predictor.models: please specify only one of the following fields "model_path" or "models"'],
  },
  {
    name: 'models needs exactly one of path, paths, dir',
    yaml: `${PY}    models:\n      dir: s3://my-bucket/models/\n      paths:\n        - name: a\n          model_path: s3://my-bucket/a/\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: tensorflow\n    models:\n      cache_size: 1\n      disk_cache_size: 1\n`,
    want: [
      '7:7: iris: predictor.models.dir: please specify only one of the following fields "path", "paths", or "dir"',
      '15:5: b: predictor.models: please specify one of the following fields "path", "paths", or "dir"',
    ],
  },
  {
    name: 'model names: unique, reserved, well-formed; every entry needs a model_path',
    yaml: `${PY}    models:\n      paths:\n        - name: a\n          model_path: s3://my-bucket/a/\n        - name: a\n          model_path: s3://my-bucket/b/\n        - name: _cortex_default\n          path: s3://my-bucket/c/\n        - name: d\n`,
    want: [
      '10:11: iris: predictor.models.paths[1].name: cannot have multiple models with the same name (a; also used by paths[0])',
      '12:11: iris: predictor.models.paths[2].name: "_cortex_default" is a reserved name; please choose another model name',
      '14:11: iris: predictor.models.paths[3].model_path: must be defined',
    ],
  },
  {
    name: 'model name with a space',
    yaml: `${PY}    models:\n      paths:\n        - name: my model\n          model_path: s3://my-bucket/a/\n`,
    want: [`8:11: iris: predictor.models.paths[0].name: invalid value (got "my model", must contain only letters, digits, '-' and '_')`],
  },
  {
    name: 'cache_size and disk_cache_size',
    yaml: `${PY}    models:\n      dir: s3://my-bucket/models/\n      cache_size: 5\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    processes_per_replica: 2\n    models:\n      dir: s3://my-bucket/models/\n      cache_size: 5\n      disk_cache_size: 2\n`,
    want: [
      '8:7: iris: predictor.models.cache_size: please specify both "cache_size" and "disk_cache_size" or neither of them',
      '16:7: b: predictor.models.cache_size: cache_size (5) cannot be greater than disk_cache_size (2)',
    ],
  },
  {
    name: 'cache_bytes and disk_cache_bytes need their counts and a positive size',
    yaml: `${PY}    models:\n      dir: s3://my-bucket/models/\n      cache_bytes: 1Gi\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    models:\n      dir: s3://my-bucket/models/\n      cache_size: 1\n      disk_cache_size: 2\n      disk_cache_bytes: 0\n`,
    want: [
      '8:7: iris: predictor.models.cache_bytes: needs "cache_size" (a byte limit is added to the count limit, not used instead of it)',
      '17:7: b: predictor.models.disk_cache_bytes: must be greater than 0',
    ],
  },
  {
    name: 'fields a predictor type does not support',
    yaml: `- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    model_path: s3://my-bucket/m.onnx\n    signature_key: serving_default\n    server_side_batching:\n      max_batch_size: 4\n      batch_interval: 1s\n    tensorflow_serving_image: x\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n    signature_key: x\n    multi_model_reloading:\n      paths:\n        - name: a\n          path: s3://my-bucket/a/\n          signature_key: x\n`,
    want: [
      '6:5: iris: predictor.signature_key: is not a supported field for the onnx predictor type',
      '8:7: iris: predictor.server_side_batching.max_batch_size: max_batch_size (4) must be less than or equal to processes_per_replica * threads_per_process (1 * 1 = 1)',
      '10:5: iris: predictor.tensorflow_serving_image: is not a supported field for the onnx predictor type',
      '16:5: b: predictor.signature_key: is not a supported field for the python predictor type',
      '21:11: b: predictor.multi_model_reloading.paths[0].signature_key: is not a supported field for the python predictor type',
    ],
  },
  {
    name: 'server-side batching limits',
    yaml: `${PY}    threads_per_process: 4\n    server_side_batching:\n      max_batch_size: 8\n      batch_interval: 0s\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: tensorflow\n    model_path: s3://my-bucket/m/\n    server_side_batching:\n      max_batch_size: 1\n`,
    want: [
      '8:7: iris: predictor.server_side_batching.max_batch_size: threads_per_process (4) must be equal to max_batch_size (8) when using server side batching with the python predictor',
      '9:7: iris: predictor.server_side_batching.batch_interval: must be greater than 0 (got "0s")',
      '15:5: b: predictor.server_side_batching.batch_interval: must be defined',
      '16:7: b: predictor.server_side_batching.max_batch_size: must be greater than or equal to 2 (got 1)',
    ],
  },
  {
    name: 'processes and threads bounds',
    yaml: `${PY}    processes_per_replica: 101\n    threads_per_process: 0\n`,
    want: [
      '6:5: iris: predictor.processes_per_replica: must be less than or equal to 100 (got 101)',
      '7:5: iris: predictor.threads_per_process: must be greater than or equal to 1 (got 0)',
    ],
  },
  {
    name: 'environment variables: reserved prefixes, names, values',
    yaml: `${PY}    env:\n      CORTEX_VERSION: "0.25"\n      MYELIN_PORT: "1"\n      BAD-NAME: x\n      NESTED: {a: 1}\n      OK: 1\n`,
    want: [
      '7:7: iris: predictor.env.CORTEX_VERSION: environment variables starting with CORTEX_ are reserved',
      '8:7: iris: predictor.env.MYELIN_PORT: environment variables starting with MYELIN_ are reserved',
      '9:7: iris: predictor.env.BAD-NAME: invalid environment variable name "BAD-NAME" (must contain only letters, digits and "_", and not start with a digit)',
      '10:7: iris: predictor.env.NESTED: must be a string, a number, or a boolean (true or false) (got a map)',
    ],
  },
  {
    name: 'config must be a map',
    yaml: `${PY}    config: [1, 2]\n`,
    want: ['6:5: iris: predictor.config: must be a map (got a list)'],
  },
  {
    name: 'models and multi_model_reloading together; model_path and path together',
    yaml: `${PY}    models:\n      dir: s3://my-bucket/a/\n    multi_model_reloading:\n      paths:\n        - name: a\n          model_path: s3://my-bucket/a/\n          path: s3://my-bucket/b/\n`,
    want: [
      `8:5: iris: predictor.multi_model_reloading: please specify only one of "models" or "multi_model_reloading" (Cortex 0.25's name for the same field)`,
    ],
  },
  {
    name: 'a models.paths entry with both model_path and path',
    yaml: `${PY}    multi_model_reloading:\n      paths:\n        - name: a\n          model_path: s3://my-bucket/a/\n          path: s3://my-bucket/b/\n`,
    want: [`10:11: iris: predictor.multi_model_reloading.paths[0].path: please specify only one of "model_path" or "path" (Cortex 0.25's name for the same field)`],
  },
  {
    name: 'Inferentia: batching limited by threads, not for onnx',
    yaml: `- name: tf\n  kind: RealtimeAPI\n  predictor:\n    type: tensorflow\n    model_path: s3://my-bucket/m/\n    processes_per_replica: 2\n    threads_per_process: 2\n    server_side_batching:\n      max_batch_size: 4\n      batch_interval: 5ms\n  compute:\n    inf: 1\n- name: onnx\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n    model_path: s3://my-bucket/m.onnx\n  compute:\n    inf: 1\n`,
    want: [
      '9:7: tf: predictor.server_side_batching.max_batch_size: max_batch_size (4) must be less than or equal to threads_per_process (2) when using Inferentia',
      '12:5: tf: compute.inf: warning: has no effect when replicas run as local processes (Inferentia needs --target kubernetes)',
      '19:5: onnx: compute.inf: Inferentia is not supported for the onnx predictor type',
      '19:5: onnx: compute.inf: warning: has no effect when replicas run as local processes (Inferentia needs --target kubernetes)',
    ],
  },
  {
    name: 'max_body_size must be positive',
    yaml: `${PY}  networking:\n    max_body_size: 0\n`,
    want: ['7:5: iris: networking.max_body_size: must be greater than 0 (got 0)'],
  },
  {
    name: 'a directory where a predictor file is expected; a model dir that is a file',
    yaml: `- name: a\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: pkg.py\n    models:\n      dir: model.onnx\n`,
    files: { 'pkg.py/': '' },
    want: [
      '5:5: a: predictor.path: "pkg.py" is a directory; expected a predictor file',
      '7:7: a: predictor.models.dir: "model.onnx" is not a directory; expected a model directory',
    ],
  },
  // ---- names, kinds, unknown keys
  {
    name: 'API names: DNS-1035 and at most 42 characters',
    yaml: `- name: Iris_Classifier\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n- name: ${'a'.repeat(43)}\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n- name: 1abc\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n`,
    want: [
      '1:3: Iris_Classifier: name: invalid value (got "Iris_Classifier", must contain only lower case letters, numbers and dashes, starting with a letter and not ending with a dash)',
      `6:3: ${'a'.repeat(43)}: name: must be at most 42 characters long (got 43 characters)`,
      '11:3: 1abc: name: invalid value (got "1abc", must contain only lower case letters, numbers and dashes, starting with a letter and not ending with a dash)',
    ],
  },
  {
    name: 'name and kind must be defined',
    yaml: '- predictor:\n    type: python\n    path: predictor.py\n',
    want: ['1:3: api[0]: name: must be defined', '1:3: api[0]: kind: must be defined'],
  },
  {
    name: 'unsupported and unknown kinds',
    yaml: `- name: batch\n  kind: BatchAPI\n  predictor:\n    type: python\n    path: predictor.py\n- name: rt\n  kind: realtimeapi\n  predictor:\n    type: python\n    path: predictor.py\n`,
    want: [
      '2:3: batch: kind: "BatchAPI" is not supported by myelin (supported: "RealtimeAPI", "TrafficSplitter", and "api" for the legacy dialect)',
      '7:3: rt: kind: invalid value (got "realtimeapi", must be "RealtimeAPI") (did you mean "RealtimeAPI"?)',
    ],
  },
  {
    name: 'unknown keys, with suggestions and hints',
    yaml: `${PY}    proceses_per_replica: 2\n  compute:\n    min_replicas: 2\n  autoscaling:\n    colour: blue\n  tracker:\n    model_type: regression\n`,
    want: [
      '6:5: iris: predictor: key "proceses_per_replica" is not supported (did you mean "processes_per_replica"?)',
      '8:5: iris: compute: key "min_replicas" is not supported (min_replicas belongs under autoscaling in the RealtimeAPI dialect)',
      '10:5: iris: autoscaling: key "colour" is not supported (supported keys: policy, min_replicas, max_replicas, init_replicas, target_replica_concurrency, max_replica_concurrency, window, downscale_stabilization_period, upscale_stabilization_period, max_downscale_factor, max_upscale_factor, downscale_tolerance, upscale_tolerance, tick, panic_window, panic_threshold, target_cpu_utilization, max_held_requests, hold_timeout)',
      '11:3: iris: key "tracker" is not supported (tracker belongs to the legacy dialect (kind: api); the RealtimeAPI dialect calls it monitoring)',
    ],
  },
  {
    name: 'wrong types for sections and scalars',
    yaml: `${PY}  networking: /iris\n  compute:\n    gpu: one\n    cpu: 1Gi\n    mem: 1GB\n  monitoring:\n    key: label\n`,
    want: [
      '6:3: iris: networking: must be a map (got "/iris")',
      '8:5: iris: compute.gpu: must be an integer (got "one")',
      '9:5: iris: compute.cpu: invalid CPU quantity (got "1Gi", must be a CPU quantity such as "200m", "0.5", 1 or 2)',
      '10:5: iris: compute.mem: invalid memory quantity (got "1GB", must be a memory quantity such as "200Mi", "1Gi", "200M", "1G" or a number of bytes)',
      '11:3: iris: monitoring.model_type: must be defined',
    ],
  },
  {
    name: 'compute minimums and combinations',
    yaml: `${PY}  compute:\n    cpu: 10m\n    mem: 10Mi\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: tensorflow\n    model_path: s3://my-bucket/m/\n    processes_per_replica: 3\n  compute:\n    gpu: 1\n    inf: 1\n`,
    want: [
      '7:5: iris: compute.cpu: must be at least 20m (got "10m")',
      '8:5: iris: compute.mem: must be at least 20Mi (got "10Mi")',
      '14:5: b: predictor.processes_per_replica: processes_per_replica (3) must evenly divide the number of NeuronCores (4 * inf = 4)',
      '17:5: b: compute.inf: cannot request both gpu and inf (gpu: 1, inf: 1)',
      '17:5: b: compute.inf: warning: has no effect when replicas run as local processes (Inferentia needs --target kubernetes)',
    ],
  },
  // ---- networking
  {
    name: 'endpoints: syntax, reserved, unique',
    yaml: `${PY}  networking:\n    endpoint: /my api\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n  networking:\n    endpoint: /v2/models\n- name: c\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n  networking:\n    endpoint: iris/\n    local_port: 70000\n`,
    want: [
      '7:5: iris: networking.endpoint: invalid endpoint (got "/my api", must be a URL path of letters, digits, "-", "_", "." and "~" separated by "/", e.g. "/iris-classifier")',
      '14:5: b: networking.endpoint: invalid endpoint (got "/v2/models"): paths under /v2 are reserved for the Open Inference Protocol (/v2/models/<name>/infer)',
      '21:5: c: networking.endpoint: endpoint /iris is already used by API "iris" (line 1); endpoints must be unique',
      '22:5: c: networking.local_port: must be less than or equal to 65535 (got 70000)',
    ],
  },
  {
    name: 'duplicate API names',
    yaml: `${PY}${PY}`,
    want: ['6:3: iris: name: API name "iris" is already used by another API (line 1); API names must be unique'],
  },
  {
    name: 'monitoring model_type enum',
    yaml: `${PY}  monitoring:\n    model_type: categorical\n`,
    want: ['7:5: iris: monitoring.model_type: invalid value (got "categorical", must be "classification" or "regression")'],
  },
  // ---- paths
  {
    name: 'predictor files that do not exist, escape the project, or have the wrong extension',
    yaml: `- name: a\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: missing.py\n- name: b\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: ../outside.py\n- name: c\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.ts\n- name: d\n  kind: RealtimeAPI\n  predictor:\n    type: javascript\n    path: lib\n- name: e\n  kind: RealtimeAPI\n  predictor:\n    type: javascript\n    path: /etc/passwd.js\n`,
    want: [
      '5:5: a: predictor.path: predictor file "missing.py" does not exist (looked for <dir>/missing.py)',
      `10:5: b: predictor.path: "../outside.py" is outside the project folder <dir> (paths are relative to the configuration file's folder and must stay inside the project)`,
      '15:5: c: predictor.path: "predictor.ts" must be a .py or .pickle file for the python predictor type',
      '20:5: d: predictor.path: "lib" must be a .ts, .mts, .cts, .js, .mjs or .cjs file for the javascript predictor type',
      `25:5: e: predictor.path: "/etc/passwd.js" is outside the project folder <dir> (paths are relative to the configuration file's folder and must stay inside the project)`,
    ],
  },
  {
    name: 'python_path must be a folder; request handlers and models must exist',
    yaml: `${PY}    python_path: predictor.py\n    model_path: models/missing\n- kind: api\n  name: legacy\n  model: models/iris\n  request_handler: nothere.py\n`,
    want: [
      '6:5: iris: predictor.python_path: "predictor.py" is not a directory; expected a python_path folder',
      '7:5: iris: predictor.model_path: model path "models/missing" does not exist (looked for <dir>/models/missing)',
      '11:3: legacy: request_handler: request handler file "nothere.py" does not exist (looked for <dir>/nothere.py)',
    ],
  },
  {
    name: 'model URLs are checked for syntax',
    yaml: `${PY}    models:\n      paths:\n        - name: a\n          model_path: s3://My_Bucket/model/\n        - name: b\n          model_path: gs://x/model/\n        - name: c\n          model_path: https://\n        - name: d\n          model_path: ftp://host/model/\n        - name: e\n          model_path: file:///etc/model.onnx\n        - name: f\n          model_path: https://example.com/models/f.onnx\n        - name: g\n          model_path: gs://my-bucket/g/\n`,
    want: [
      '9:11: iris: predictor.models.paths[0].model_path: invalid S3 path "s3://My_Bucket/model/" (must be s3://<bucket>/<key>, the bucket name 3-63 lower case letters, numbers, dots and dashes)',
      '11:11: iris: predictor.models.paths[1].model_path: invalid GS path "gs://x/model/" (must be gs://<bucket>/<key>, the bucket name 3-222 lower case letters, numbers, dots and dashes)',
      '13:11: iris: predictor.models.paths[2].model_path: invalid URL "https://"',
      '15:11: iris: predictor.models.paths[3].model_path: unsupported model location "ftp://host/model/" (must be a local path, or an s3://, gs://, https:// or http:// URL)',
      `17:11: iris: predictor.models.paths[4].model_path: "/etc/model.onnx" is outside the project folder <dir> (paths are relative to the configuration file's folder and must stay inside the project)`,
    ],
  },
  // ---- legacy dialect (seed 000)
  {
    name: 'legacy: problems are reported on the fields the user wrote',
    yaml: `- kind: api\n  name: legacy\n  model: s3://my-bucket/model.pb\n  tf_signature_key: predict\n  tracker:\n    model_type: counting\n  compute:\n    min_replicas: 4\n    max_replicas: 2\n    init_replicas: 9\n    target_cpu_utilization: 0\n    cpu: 5Gi\n    replicas: 3\n`,
    want: [
      '3:3: legacy: model_format: cannot infer the model format from "s3://my-bucket/model.pb" (a path ending in .onnx is onnx; one ending in .zip, or a directory, is tensorflow); set model_format to "tensorflow" or "onnx"',
      '6:5: legacy: tracker.model_type: invalid value (got "counting", must be "classification" or "regression")',
      '8:5: legacy: compute.min_replicas: cannot be greater than max_replicas (4 > 2)',
      '10:5: legacy: compute.init_replicas: cannot be greater than max_replicas (9 > 2)',
      '11:5: legacy: compute.target_cpu_utilization: must be greater than or equal to 1 (got 0)',
      '12:5: legacy: compute.cpu: invalid CPU quantity (got "5Gi", must be a CPU quantity such as "200m", "0.5", 1 or 2)',
      '13:5: legacy: compute: key "replicas" is not supported (supported keys: min_replicas, max_replicas, init_replicas, target_cpu_utilization, cpu, gpu, mem)',
    ],
  },
  {
    name: 'legacy: model is required, model_format is an enum, onnx ignores tf_signature_key',
    yaml: `- kind: api\n  name: a\n- kind: api\n  name: b\n  model: s3://my-bucket/m\n  model_format: pytorch\n- kind: api\n  name: c\n  model: s3://my-bucket/m.onnx\n  tf_signature_key: serving_default\n`,
    want: [
      '1:3: a: model: must be defined',
      '6:3: b: model_format: invalid value (got "pytorch", must be "tensorflow" or "onnx")',
      '10:3: c: tf_signature_key: warning: has no effect for onnx models (signature defs are a TensorFlow concept)',
    ],
  },
  {
    name: 'Cortex 0.9-0.11 "kind: api" blocks get a pointer to the RealtimeAPI dialect',
    yaml: `- kind: api\n  name: classifier\n  predictor:\n    path: predictor.py\n`,
    want: [
      '1:3: classifier: model: must be defined',
      '3:3: classifier: key "predictor" is not supported (the predictor block of Cortex 0.9-0.11 "kind: api" files is not supported; write the API in the RealtimeAPI dialect (kind: RealtimeAPI))',
    ],
  },
  {
    name: 'log_level is an enum',
    yaml: `${PY}    log_level: verbose\n`,
    want: ['6:5: iris: predictor.log_level: invalid value (got "verbose", must be "debug", "info", "warning", or "error")'],
  },
  // ---- file level
  { name: 'empty file', yaml: '', want: ['1:1: the file is empty; expected a YAML list of APIs, e.g. "- name: my-api"'] },
  { name: 'only comments', yaml: '# nothing here\n\n', want: ['1:1: the file is empty; expected a YAML list of APIs, e.g. "- name: my-api"'] },
  {
    name: 'a map instead of a list',
    yaml: 'name: iris\nkind: RealtimeAPI\n',
    want: ['1:1: cortex YAML configuration files must contain a list of maps (found a map; start each API with "- ", e.g. "- name: my-api")'],
  },
  { name: 'a scalar', yaml: 'hello\n', want: ['1:1: cortex YAML configuration files must contain a list of maps (found "hello")'] },
  { name: 'an empty list', yaml: '[]\n', want: ['1:1: the list of APIs is empty; expected at least one API, e.g. "- name: my-api"'] },
  {
    name: 'a list of non-maps',
    yaml: `- iris\n${PY}`,
    want: ['1:3: api[0]: cortex YAML configuration files must contain a list of maps (item 1 is "iris")'],
  },
  { name: 'binary content', yaml: 'abc\u0000\u0001\u0002', want: ['1:4: this is not a text file (found a NUL byte); expected a YAML list of APIs'] },
  {
    name: 'malformed YAML: every syntax error with its position',
    yaml: '- name: iris\n  kind: RealtimeAPI\n   predictor: [\n',
    want: [
      '2:9: invalid YAML: Nested mappings are not allowed in compact mappings',
      '2:9: invalid YAML: Implicit keys need to be on a single line',
      '4:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
  },
  {
    name: 'duplicate keys',
    yaml: `${PY}  kind: RealtimeAPI\n`,
    want: ['6:3: invalid YAML: Map keys must be unique'],
  },
  {
    name: 'tabs for indentation',
    yaml: '- name: iris\n\tkind: RealtimeAPI\n',
    want: ['2:1: invalid YAML: tabs are not allowed for indentation; indent with spaces'],
  },
  {
    name: 'a map used as a key',
    yaml: `${PY}    config:\n      ? {a: 1}\n      : x\n`,
    want: ['7:9: a map or a list cannot be used as a key; keys must be plain names'],
  },
  {
    name: 'several documents',
    yaml: `${PY}---\n${PY}`,
    want: ['6:1: the file holds more than one YAML document ("---"); put every API in one list'],
  },
];

for (const c of cases) {
  test(`problems: ${c.name}`, () => {
    const got = loadIn(c.yaml, { ...PROJECT_FILES, ...c.files });
    const lines = got.lines.map((l) => l.split(got.dir).join('<dir>'));
    assert.equal(got.ok, !c.want.some((w) => !w.includes(': warning: ')), `ok\n${lines.join('\n')}`);
    assert.deepEqual(lines, c.want);
  });
}

test('the ConfigError formats like <file>:<line>:<col>: <api>: <field>: <message> and carries every problem', () => {
  using project = makeProject(PROJECT_FILES);
  assert.throws(
    () => loadApiSpecs(`${PY}  autoscaling:\n    min_replicas: 5\n    max_replicas: 2\n    window: 15s\n`, { file: 'cortex.yaml', cwd: project.dir, probe: nodeProjectFileSystem }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'ENG_CONFIG_INVALID');
      assert.equal(err.problems.length, 2);
      assert.equal(formatConfigProblem(err.problems[0]), 'cortex.yaml:7:5: iris: autoscaling.min_replicas: cannot be greater than max_replicas (5 > 2)');
      assert.ok(err.message.startsWith('2 problems:\ncortex.yaml:7:5'));
      return true;
    },
  );
});

test('loadApiSpecsFromFile: missing files, directories and files that are not UTF-8 text', async () => {
  using project = makeProject({ 'bin.yaml': '', 'dir/': '' });
  writeFileSync(join(project.dir, 'bin.yaml'), Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x81]));
  const cases: { file: string; want: string }[] = [
    { file: 'nope.yaml', want: 'nope.yaml:1:1: cannot read the configuration file (no such file)' },
    { file: 'dir', want: 'dir:1:1: cannot read the configuration file (it is a directory)' },
    { file: 'bin.yaml', want: 'bin.yaml:1:1: this is not a text file (it is not valid UTF-8); expected a YAML list of APIs' },
  ];
  for (const c of cases) {
    await assert.rejects(loadApiSpecsFromFile(c.file, { files: nodeProjectFileSystem, cwd: project.dir }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.deepEqual(err.problems.map(formatConfigProblem), [c.want]);
      return true;
    });
  }
});

test('loadApiSpecsFromFile reads the file, strips a BOM and probes the real file system', async () => {
  using project = makeProject({ ...PROJECT_FILES, 'cortex.yaml': `\uFEFF${PY}` });
  const got = await loadApiSpecsFromFile(join(project.dir, 'cortex.yaml'), { files: nodeProjectFileSystem });
  assert.equal(got.specs[0].predictor.path, join(project.dir, 'predictor.py'));
});

test('a symlink that leads out of the project is refused', () => {
  using outside = makeProject({ 'secret.py': 'x' });
  using project = makeProject(PROJECT_FILES);
  mkdirSync(join(project.dir, 'sub'));
  symlinkSync(join(outside.dir, 'secret.py'), join(project.dir, 'sub', 'linked.py'));
  const got = loadText(`- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: sub/linked.py\n`, {
    file: 'cortex.yaml',
    cwd: project.dir,
    probe: nodeProjectFileSystem,
  });
  assert.deepEqual(
    got.lines.map((l) => l.split(outside.dir).join('<outside>')),
    ['5:5: iris: predictor.path: "sub/linked.py" leads outside the project folder through a symbolic link (to <outside>/secret.py)'],
  );
});

test('projectDir: paths may reach the project folder above the configuration file, but not beyond', () => {
  using project = makeProject({ 'shared/predictor.py': 'x', 'apis/iris/x': '' });
  const yaml = '- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: ../../shared/predictor.py\n';
  const opts = { file: 'apis/iris/cortex.yaml', cwd: project.dir, probe: nodeProjectFileSystem };
  const inside = loadText(yaml, { ...opts, projectDir: '.' });
  assert.ok(inside.ok, inside.lines.join('\n'));
  assert.equal(inside.result.specs[0].predictor.path, join(project.dir, 'shared/predictor.py'));
  assert.equal(inside.result.specs[0].projectDir, project.dir);
  const outside = loadText(yaml, opts);
  assert.equal(outside.ok, false);
});

test('without a probe, local paths are checked for syntax and containment only', () => {
  const got = loadText(`${PY}    model_path: models/none\n`, { file: '/nowhere/cortex.yaml' });
  assert.ok(got.ok, got.lines.join('\n'));
  assert.equal(got.result.specs[0].predictor.modelPath, '/nowhere/models/none');
});

test('hostile input: alias bombs, deep nesting and huge files end in one clear problem', () => {
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
  const cases: { name: string; text: string; want: RegExp }[] = [
    { name: 'billion laughs', text: `- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: python\n    path: predictor.py\n    config:\n${bomb.map((l) => `      ${l}`).join('\n')}\n`, want: /^\d+:\d+: too many YAML alias expansions \(at most 100\)/ },
    { name: 'deep flow nesting', text: `${'['.repeat(5000)}${']'.repeat(5000)}`, want: /^1:\d+: the data is nested (more than 64 levels deep|too deeply to read)/ },
    { name: 'deep block nesting', text: Array.from({ length: 200 }, (_, i) => `${' '.repeat(i * 2)}k${i}:`).join('\n'), want: /^\d+:\d+: the data is nested more than 64 levels deep$/ },
    { name: 'unclosed deep nesting', text: '['.repeat(100_000), want: /invalid YAML|nested/ },
    { name: 'huge file', text: `- name: iris\n${'#'.repeat(2 * 1024 * 1024)}\n`, want: /^1:1: the file is too large \(\d+ characters; a configuration file may have at most 1048576\)$/ },
  ];
  for (const c of cases) {
    const got = loadText(c.text, { file: 'x.yaml' });
    assert.equal(got.ok, false, c.name);
    assert.ok(got.lines.length >= 1, c.name);
    assert.match(got.lines[0].replace(/^x\.yaml:/, ''), c.want, `${c.name}: ${got.lines.join('\n')}`);
  }
});
