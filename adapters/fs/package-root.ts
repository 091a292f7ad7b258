import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where myelin's own files are, whether it runs from its TypeScript sources (a clone, through tsx)
 * or compiled (`dist/`, the npm package). Found by walking up from this module to the
 * `package.json` named `myelin`, so the answer does not depend on how deep `dist/` nests.
 */
export const PACKAGE_ROOT: string = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** The package's version (`myelin --version`, the default replica image tag). */
export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** True when this process runs the TypeScript sources (tsx), false when it runs `dist/`. */
export const FROM_SOURCES: boolean = import.meta.url.endsWith('.ts');

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'myelin') return dir;
      } catch {
        // not a package.json we can read; keep walking
      }
    }
    if (dirname(dir) === dir) throw new Error(`myelin: no package.json named myelin above ${start}`);
  }
}

/**
 * The file a process or worker thread of myelin starts from, beside the module that asks
 * (`callerUrl`, its `import.meta.url`): `<name>.js` when compiled; from the sources, the `<name>.mjs`
 * shim that registers tsx (with myelin's tsconfig, for the decorators) and then imports `<name>.ts`.
 */
export function entryFile(callerUrl: string, name: string): string {
  return fileURLToPath(new URL(`./${name}${callerUrl.endsWith('.ts') ? '.mjs' : '.js'}`, callerUrl));
}

/** The CLI a user runs: `dist/serving/cli/bin.js` compiled, `bin/myelin.mjs` from the sources. */
export const CLI_ENTRY: string = FROM_SOURCES ? join(PACKAGE_ROOT, 'bin', 'myelin.mjs') : join(PACKAGE_ROOT, 'dist', 'serving', 'cli', 'bin.js');

/**
 * Makes `import … from 'myelin'` resolve, from any file under `dir`, to this installation:
 * `<dir>/node_modules/myelin` becomes a symlink to `PACKAGE_ROOT` (replaced when it points elsewhere).
 * The daemon does it for its state folder, where deployed projects are unpacked, so a predictor
 * that imports `HttpError` gets the engine's own class, whether or not its project installed myelin.
 */
export function linkPackageInto(dir: string): void {
  const link = join(dir, 'node_modules', 'myelin');
  try {
    if (realpathSync(link) === realpathSync(PACKAGE_ROOT)) return;
  } catch {
    // missing or dangling
  }
  mkdirSync(dirname(link), { recursive: true });
  rmSync(link, { recursive: true, force: true });
  symlinkSync(PACKAGE_ROOT, link, 'dir');
}
