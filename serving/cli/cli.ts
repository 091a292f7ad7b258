import { Command, InvalidArgumentError, Option } from 'commander';
import { PACKAGE_VERSION } from '../../adapters/fs/package-root.js';
import { DEFAULT_GATEWAY_PORT } from '../../core/config/api-spec.js';
import { parseDuration } from '../../core/config/quantities.js';

const version = PACKAGE_VERSION;

/** Parses a whole number in [min, max] for an option, with commander's usual error otherwise. */
export function intArg(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** Parses a duration option (`30s`, `2m`, `0`) into milliseconds, at least `minMs`, with commander's usual error otherwise. */
export function durationArg(minMs = 0): (value: string) => number {
  return (value) => {
    const r = parseDuration(value);
    if (!r.ok) throw new InvalidArgumentError(r.message);
    if (r.value < minMs) throw new InvalidArgumentError(`must be at least ${minMs} ms`);
    return r.value;
  };
}

/** `-o/--output` shared by every listing command. */
export function outputOption(choices: readonly string[] = ['table', 'json', 'yaml']): Option {
  return new Option('-o, --output <format>', 'output format').choices([...choices]).default(choices[0]);
}

/**
 * Declares the commands (SG 10.1). Each action imports its `commands/<name>.ts` lazily, so a command
 * only pays for the modules it uses (the replica must not load the daemon, the CLI must not load onnxruntime).
 */
export function buildCli(): Command {
  const program = new Command('myelin')
    .description('Serve machine-learning models as HTTP prediction APIs that scale on live load.')
    .version(version)
    .showHelpAfterError()
    .exitOverride();

  // Commands are registered below, one block each.

  program
    .command('validate')
    .description('check a configuration file and print the resolved APIs; every problem is listed as <file>:<line>:<col>: <api>: <field>: <message>')
    .argument('[file]', 'configuration file or folder (default: myelin.yaml, else cortex.yaml)')
    .addOption(outputOption(['table', 'yaml', 'json']))
    .addOption(new Option('--target <target>', 'where the replicas will run (decides which fields have no effect)').choices(['local', 'kubernetes']).default('local'))
    .action(async (file: string | undefined, o: { output: 'table' | 'yaml' | 'json'; target: 'local' | 'kubernetes' }) => {
      const { validate } = await import('./commands/validate.js');
      await validate({ file, cwd: process.cwd(), output: o.output, target: o.target, stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('serve')
    .description('run one replica of an API in the foreground, without the daemon (development and debugging)')
    .argument('[file]', 'configuration file or folder (default: myelin.yaml, else cortex.yaml)')
    .option('--api <name>', 'which API of the file (required when it has several)')
    .option('--port <n>', `port to listen on (default: networking.local_port, ${DEFAULT_GATEWAY_PORT}; 0 picks a free one)`, (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
      return n;
    })
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .addOption(new Option('--executor <where>', 'where predictions run (auto: in-thread for one process per replica)').choices(['auto', 'in-thread', 'worker-threads']).default('auto'))
    .action(async (file: string | undefined, o: { api?: string; port?: number; host: string; executor: 'auto' | 'in-thread' | 'worker-threads' }) => {
      const { serve } = await import('./commands/serve.js');
      await serve({ file, cwd: process.cwd(), api: o.api, port: o.port, host: o.host, executor: o.executor, stdout: process.stdout, stderr: process.stderr });
    });

  const urlOption = (): Option => new Option('--url <url>', 'control API of the daemon (default: $MYELIN_URL or http://127.0.0.1:8889)');
  const stateDirOption = (): Option => new Option('--state-dir <dir>', 'state folder of the daemon, for its token (default: $MYELIN_STATE_DIR or ~/.myelin)');
  const client = (o: { url?: string; stateDir?: string }) => ({ url: o.url, stateDir: o.stateDir });

  program
    .command('deploy')
    .description('validate a configuration file, upload its project and roll the APIs out (Cortex `cortex deploy`)')
    .argument('[file]', 'configuration file (default: myelin.yaml, else cortex.yaml)')
    .option('-f, --force', 'override an update in progress', false)
    .option('--no-wait', 'return once the deploy is accepted instead of waiting until live')
    .option('-y, --yes', `accepted for Cortex; ${NO_EFFECT.yes}`)
    .addOption(outputOption(['table', 'json']))
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (file: string | undefined, o: { force: boolean; wait: boolean; output: 'table' | 'json'; url?: string; stateDir?: string }) => {
      const { deploy } = await import('./commands/deploy.js');
      await deploy({ ...client(o), file, cwd: process.cwd(), force: o.force, wait: o.wait, output: o.output, stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('get')
    .description('show deployed APIs (Cortex columns), or one API with its monitoring, endpoint, replicas and autoscaler view')
    .argument('[api]', 'one API')
    .option('-w, --watch', 're-run every 2 seconds', false)
    .addOption(outputOption(['table', 'json']))
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (api: string | undefined, o: { watch: boolean; output: 'table' | 'json'; url?: string; stateDir?: string }) => {
      const { get } = await import('./commands/get.js');
      await get({ ...client(o), api, watch: o.watch, output: o.output, stdout: process.stdout });
    });

  program
    .command('logs')
    .description("print an API's replica logs")
    .argument('<api>')
    .option('-f, --follow', 'keep printing new lines', false)
    .option('--tail <n>', 'only the last n lines of each replica', intArg(0, 1_000_000))
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (api: string, o: { follow: boolean; tail?: number; url?: string; stateDir?: string }) => {
      const { logs } = await import('./commands/logs.js');
      await logs({ ...client(o), api, follow: o.follow, tail: o.tail, stdout: process.stdout });
    });

  program
    .command('predict')
    .description("POST a JSON file (or - for standard input) to an API's endpoint and print the response")
    .argument('<api>')
    .argument('<json-file>', 'JSON payload file, or - for standard input')
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (api: string, file: string, o: { url?: string; stateDir?: string }) => {
      const { predict } = await import('./commands/predict.js');
      await predict({ ...client(o), api, file, stdin: process.stdin, stdout: process.stdout });
    });

  program
    .command('events')
    .description('print scaling decisions, replica changes and status changes')
    .argument('[api]', 'only this API')
    .option('-f, --follow', 'keep printing new events', false)
    .option('--since <duration>', 'replay events newer than this, e.g. 10m (default: every event the daemon kept)')
    .addOption(outputOption(['table', 'json']))
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (api: string | undefined, o: { follow: boolean; since?: string; output: 'table' | 'json'; url?: string; stateDir?: string }) => {
      const { events } = await import('./commands/events.js');
      await events({ ...client(o), api, follow: o.follow, since: o.since, output: o.output, stdout: process.stdout });
    });

  program
    .command('delete')
    .description('delete an API and stop its replicas')
    .argument('<api>')
    .option('-f, --force', `accepted for Cortex; ${NO_EFFECT.force}`)
    .option('-c, --keep-cache', `accepted for Cortex; ${NO_EFFECT.keepCache}`)
    .addOption(outputOption(['table', 'json']))
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (api: string, o: { output: 'table' | 'json'; url?: string; stateDir?: string }) => {
      const { deleteApi } = await import('./commands/delete.js');
      await deleteApi({ ...client(o), api, output: o.output, stdout: process.stdout });
    });

  program
    .command('refresh')
    .description('rolling restart of every replica of an API')
    .argument('<api>')
    .option('-f, --force', 'override an update in progress', false)
    .addOption(outputOption(['table', 'json']))
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (api: string, o: { force: boolean; output: 'table' | 'json'; url?: string; stateDir?: string }) => {
      const { refresh } = await import('./commands/delete.js');
      await refresh({ ...client(o), api, force: o.force, output: o.output, stdout: process.stdout });
    });

  program
    .command('up')
    .description('start the daemon: control API, gateway, autoscaler and replicas (foreground unless --detach)')
    .addOption(new Option('--target <target>', 'where replicas run').choices(['local', 'kubernetes']).default('local'))
    .option('--nats <url>', 'carry metrics and events over NATS (default: the embedded local transport)')
    .option('--host <host>', 'control API address (a non-loopback address requires the bearer token)', '127.0.0.1')
    .option('--port <port>', 'control API port', intArg(0, 65535), 8889)
    .option('--gateway-host <host>', 'gateway address', '127.0.0.1')
    .option('--gateway-port <port>', 'gateway port', intArg(0, 65535), DEFAULT_GATEWAY_PORT)
    .option('--headers-timeout <duration>', 'close a connection whose request head has not arrived after this (gateway and replicas)', durationArg(1), 10_000)
    .option('--request-timeout <duration>', 'answer 408 to a request whose head and body have not arrived after this; 0 = never (gateway and replicas)', durationArg(), 60_000)
    .option('--no-direct-connections', 'with --target local: keep every request on the gateway\'s proxy path instead of handing client connections to replicas (docs/gateway.md)')
    .option('-d, --detach', 'run in the background (pid and logs in the state folder)', false)
    .option('--deploy <file>', 'deploy this configuration once up, and wait until live')
    .option('--sample <json-file>', 'with --deploy: send this JSON to the API and print the prediction')
    .option('--python <path>', 'Python interpreter for requirements.txt virtualenvs and Python predictors (default: $MYELIN_PYTHON, else python3 on PATH)')
    .addOption(new Option('--log-format <format>', 'the daemon log on stderr: readable lines (pretty) or pino JSON; auto is pretty on a terminal').choices(['auto', 'pretty', 'json']).default('auto'))
    .option('--in-cluster', "with --target kubernetes: use the pod's service account (the daemon runs in the cluster, see myelin render --daemon)", false)
    .option('--namespace <namespace>', "with --target kubernetes: namespace of the APIs' objects (default: the kubeconfig's, else default)")
    .option('--image <image>', 'with --target kubernetes: the replica image (default: myelin/replica:<version>)')
    .option('--pod-service-account <name>', "with --target kubernetes: the ServiceAccount API pods run as (e.g. one with an IAM role for s3:// models; default: the namespace's default)")
    .option('--image-pull-secret <name>', 'with --target kubernetes: an image pull secret of the API pods (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .addOption(stateDirOption())
    .action(async (o: { target: 'local' | 'kubernetes'; nats?: string; host: string; port: number; gatewayHost: string; gatewayPort: number; headersTimeout: number; requestTimeout: number; directConnections: boolean; detach: boolean; deploy?: string; sample?: string; python?: string; stateDir?: string; logFormat: 'auto' | 'pretty' | 'json'; inCluster: boolean; namespace?: string; image?: string; podServiceAccount?: string; imagePullSecret?: string[] }) => {
      const { up } = await import('./commands/up.js');
      await up({ ...o, imagePullSecrets: o.imagePullSecret, cwd: process.cwd(), stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('render')
    .description('print the Kubernetes manifests of a configuration (what the kubernetes target applies), or with --daemon the in-cluster control plane')
    .argument('[file]', 'configuration file or folder (default: myelin.yaml, else cortex.yaml); not read with --daemon')
    .option('--image <image>', 'replica image, and the daemon image with --daemon (default: myelin/replica:<version>)')
    .option('--namespace <namespace>', 'namespace written into every object', 'default')
    .option('--daemon', 'print the control plane: ServiceAccount, Role, RoleBinding, NATS, the daemon and its Services', false)
    .option('--nats <url>', 'with --daemon: NATS the daemon uses instead of the bundled one; else MYELIN_NATS_URL of the replicas')
    .option('--service-account <name>', "the ServiceAccount API pods run as (with --daemon: the one the daemon gives them); default the namespace's default")
    .option('--image-pull-secret <name>', 'an image pull secret of the pods (repeatable; with --daemon also of the daemon)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (file: string | undefined, o: { image?: string; namespace: string; daemon: boolean; nats?: string; serviceAccount?: string; imagePullSecret?: string[] }) => {
      const { render } = await import('./commands/render.js');
      await render({ file, cwd: process.cwd(), image: o.image, namespace: o.namespace, daemon: o.daemon, nats: o.nats, serviceAccount: o.serviceAccount, imagePullSecrets: o.imagePullSecret, stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('fetch-project')
    .description("download an API's project from the daemon (or a mounted ConfigMap) into a folder: the init container of a Kubernetes pod")
    .addOption(new Option('--url <url>', 'the project URL on the daemon, http://<daemon>:8889/v1/projects/<id>?api=<name> (default: $MYELIN_PROJECT_URL)'))
    .addOption(new Option('--token <token>', "the API's project token (default: $MYELIN_PROJECT_TOKEN)"))
    .addOption(new Option('--from <dir>', 'read <dir>/project.bundle (a mounted ConfigMap) instead of the daemon'))
    .requiredOption('--dest <dir>', 'where the files go: a missing or empty folder (an emptyDir mount is written into directly)')
    .addOption(new Option('--python-env <dir>', "install the project's requirements.txt into a virtualenv under <dir>, linked as <dir>/current (with $MYELIN_PYTHON, else python3)"))
    .action(async (o: { url?: string; token?: string; from?: string; dest: string; pythonEnv?: string }) => {
      const { fetchProject } = await import('./commands/fetch-project.js');
      await fetchProject({ url: o.url, token: o.token, from: o.from, dest: o.dest, pythonEnv: o.pythonEnv, stdout: process.stdout });
    });

  program
    .command('replica')
    .description('run one replica from the environment (MYELIN_API_SPEC or MYELIN_SPEC_FILE, MYELIN_PORT, …); what the daemon and Kubernetes pods start')
    .action(async () => {
      const { runReplicaProcess } = await import('../replica/replica-main.js');
      await runReplicaProcess(process.env);
      // The replica ends the process itself (SIGTERM, IPC disconnect, fatal load error).
      await new Promise(() => {});
    });

  program
    .command('down')
    .description('stop the daemon gracefully (replicas drain and stop)')
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (o: { url?: string; stateDir?: string }) => {
      const { down } = await import('./commands/down.js');
      await down({ ...client(o), stdout: process.stdout });
    });

  program
    .command('simulate')
    .description('replay a load trace through an API\'s autoscaler in virtual time and print every tick (tune autoscaling before deploying)')
    .option('--config <file>', 'configuration file (either dialect), with --trace')
    .option('--api <name>', 'which API of the file (required when it has several), or of the daemon with --since')
    .option('--trace <file>', 'load trace, .csv or .jsonl: time in seconds, then the total in flight or one value per replica')
    .option('--since <duration>', "instead of --config and --trace: replay the daemon's recording of --api over the last <duration> (e.g. 30m)")
    .option('--set <field=value>', 'change an autoscaling field for the replay, e.g. window=30s (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option('--trace-format <format>', 'trace format (default: from the file extension)').choices(['csv', 'jsonl']))
    .option('--until <seconds>', 'replay until this trace time (default: the last line)', (v) => Number.parseFloat(v))
    .option('--replicas <n>', 'replicas at the start (default: init_replicas)', intArg(1, 1_000_000))
    .addOption(outputOption(['table', 'json', 'csv']))
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (o: { config?: string; api?: string; trace?: string; since?: string; set?: string[]; traceFormat?: 'csv' | 'jsonl'; until?: number; replicas?: number; output: 'table' | 'json' | 'csv'; url?: string; stateDir?: string }) => {
      const { simulate } = await import('./commands/simulate.js');
      await simulate({ ...o, cwd: process.cwd(), stdout: process.stdout, stderr: process.stderr });
    });

  program
    .command('dashboard')
    .description("print the daemon's dashboard URL with its login token (http://127.0.0.1:8889/?token=…), or open it in a browser")
    .option('--open', 'also open it with the desktop\'s browser (xdg-open / open)', false)
    .addOption(urlOption())
    .addOption(stateDirOption())
    .action(async (o: { open: boolean; url?: string; stateDir?: string }) => {
      const { dashboard } = await import('./commands/dashboard.js');
      await dashboard({ ...client(o), open: o.open, stdout: process.stdout, stderr: process.stderr });
    });

  // Cortex's flags that mean nothing here are accepted, with one note on stderr (never an error).
  for (const cmd of program.commands) {
    cmd.addOption(new Option('-e, --env <env>', `accepted for Cortex; ${NO_EFFECT.env}`));
  }
  program.hook('preAction', (_program, action) => {
    for (const flag of noEffectFlags(action.name(), action.opts())) process.stderr.write(`${noEffectNote(flag)}\n`);
  });

  return program;
}

/** Why each Cortex flag myelin accepts has no effect (the one line printed when it is given). */
export const NO_EFFECT = {
  env: 'myelin talks to one daemon (--url / MYELIN_URL)',
  yes: 'myelin deploy never asks before uploading',
  force: 'myelin delete never asks for confirmation',
  keepCache: "myelin delete never removes the machine's model and virtualenv caches",
} as const;

const FLAG_NAMES: Record<keyof typeof NO_EFFECT, string> = { env: '--env', yes: '--yes', force: '--force', keepCache: '--keep-cache' };

/** The no-effect flags given to `command`, in a stable order. */
export function noEffectFlags(command: string, opts: Record<string, unknown>): (keyof typeof NO_EFFECT)[] {
  const given: (keyof typeof NO_EFFECT)[] = [];
  if (opts.env !== undefined) given.push('env');
  if (command === 'deploy' && opts.yes === true) given.push('yes');
  if (command === 'delete' && opts.force === true) given.push('force');
  if (command === 'delete' && opts.keepCache === true) given.push('keepCache');
  return given;
}

/** `note: --env has no effect: myelin talks to one daemon (--url / MYELIN_URL)`. */
export function noEffectNote(flag: keyof typeof NO_EFFECT): string {
  return `note: ${FLAG_NAMES[flag]} has no effect: ${NO_EFFECT[flag]}`;
}
