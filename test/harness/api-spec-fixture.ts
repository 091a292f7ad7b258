import { dirname } from 'node:path';
import { autoscalingSpec } from './autoscaling-spec-fixture.js';
import type { ApiSpec } from '../../core/config/api-spec.js';

/** A partial ApiSpec for tests: nested sections are merged over the defaults one level deep. */
export type ApiSpecOverrides = Partial<Omit<ApiSpec, 'predictor' | 'networking' | 'compute' | 'autoscaling' | 'updateStrategy'>> & {
  readonly predictor?: Partial<ApiSpec['predictor']>;
  readonly networking?: Partial<ApiSpec['networking']>;
  readonly compute?: Partial<ApiSpec['compute']>;
  readonly autoscaling?: Partial<ApiSpec['autoscaling']>;
  readonly updateStrategy?: Partial<ApiSpec['updateStrategy']>;
};

/**
 * A complete resolved ApiSpec with Cortex's defaults (javascript predictor, 1 process × 1 thread,
 * max_replica_concurrency 1024, 60 s timeout, 64 MiB body limit) and `overrides` merged in. For tests
 * that need an ApiSpec without going through the config loader.
 */
export function apiSpecFixture(overrides: ApiSpecOverrides = {}): ApiSpec {
  const name = overrides.name ?? 'test-api';
  const predictorPath = overrides.predictor?.path;
  const projectDir = overrides.projectDir ?? (predictorPath ? dirname(predictorPath) : process.cwd());
  const type = overrides.predictor?.type ?? 'javascript';
  return {
    name,
    kind: 'RealtimeAPI',
    dialect: 'realtime',
    configFile: `${projectDir}/myelin.yaml`,
    projectDir,
    ...overrides,
    predictor: {
      type,
      typeAsWritten: type,
      processesPerReplica: 1,
      threadsPerProcess: 1,
      config: {},
      pythonPath: projectDir,
      env: {},
      timeoutMs: 60_000,
      ...overrides.predictor,
    },
    networking: {
      endpoint: `/${name}`,
      localPort: 8888,
      apiGateway: 'public',
      maxBodyBytes: 16 * 1024 * 1024,
      ...overrides.networking,
    },
    compute: { cpuMillis: 200, memBytes: null, gpu: 0, inf: 0, ...overrides.compute },
    autoscaling: autoscalingSpec(overrides.autoscaling),
    updateStrategy: {
      maxSurge: { kind: 'percent', value: 25 },
      maxUnavailable: { kind: 'percent', value: 25 },
      ...overrides.updateStrategy,
    },
  };
}
