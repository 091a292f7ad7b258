import { Command, Option } from 'commander';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { version } = require('../../package.json') as { version: string };

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

  return program;
}
