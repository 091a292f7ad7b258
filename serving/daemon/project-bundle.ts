import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { ConfigError, EngineError } from '../../core/errors.js';
import { writeFileAtomic } from './atomic-file.js';

/** One file of a project as it travels from the CLI to the daemon. */
export interface BundleFile {
  /** Relative to the project folder, `/`-separated, never `..`. */
  readonly path: string;
  readonly data: string; // base64
  readonly mode?: number;
}

export interface ProjectBundle {
  /** The configuration file's name inside the project folder. */
  readonly configFile: string;
  readonly files: readonly BundleFile[];
}

/** Largest project the CLI uploads (Cortex refused projects over 512 MiB). */
export const MAX_PROJECT_BYTES = 256 * 1024 * 1024;

const SKIP_DIRS = new Set(['node_modules', '.git']);

/**
 * Collects the project folder as Cortex did: every file beside the config except dot-files and
 * dot-folders and `node_modules` (predictor files import packages from the daemon's installation).
 * Symlinks are not followed. Throws `ConfigError` when the project is larger than `MAX_PROJECT_BYTES`.
 */
export async function packProject(projectDir: string, configFile: string): Promise<ProjectBundle> {
  const files: BundleFile[] = [];
  let total = 0;
  async function walk(dir: string): Promise<void> {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (e.name.startsWith('.') || SKIP_DIRS.has(e.name)) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const st = await lstat(p);
        total += st.size;
        if (total > MAX_PROJECT_BYTES) {
          // A file-level problem, hence 1:1 (the convention for those, as for an empty file): the size
          // is the whole folder's, which every API of the config shares, so no line or API is the cause.
          throw new ConfigError([
            { file: configFile, line: 1, col: 1, message: `project folder ${projectDir} is larger than ${MAX_PROJECT_BYTES / 1024 / 1024} MiB`, severity: 'error' },
          ]);
        }
        const data = await readFile(p);
        files.push({ path: relative(projectDir, p).split(sep).join('/'), data: data.toString('base64'), mode: st.mode & 0o777 });
      }
    }
  }
  await walk(projectDir);
  return { configFile, files };
}

/** Content hash of a bundle: the same files give the same id, whatever their order. */
export function bundleId(bundle: ProjectBundle): string {
  return hashFiles(bundle.files);
}

/**
 * Cortex's projectID: the hash of the project's files **without the configuration file**, so editing
 * only autoscaling or networking in the YAML does not make a new revision (reference/cortex.md §4, §8).
 */
export function projectId(bundle: ProjectBundle): string {
  return hashFiles(bundle.files.filter((f) => f.path !== bundle.configFile));
}

function hashFiles(files: readonly BundleFile[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(f.path).update('\0').update(f.data).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/** An upload that is not a usable project (400 on the control API). */
export class BundleError extends EngineError {
  constructor(message: string, options?: ErrorOptions) {
    super('ENG_BAD_BUNDLE', message, options);
  }
}

/**
 * Checks the shape of an uploaded bundle before anything is written: every path relative and inside the
 * project, data base64 strings, the config file one of the files, and the paths a tree the daemon can
 * write (see `checkTree`). Throws `BundleError`.
 */
export function checkBundle(bundle: unknown): asserts bundle is ProjectBundle {
  const b = bundle as Partial<ProjectBundle> | null;
  if (!b || typeof b !== 'object' || typeof b.configFile !== 'string' || !Array.isArray(b.files)) {
    throw new BundleError('expected { configFile: string, files: [{ path, data }] }');
  }
  if (!isSafeRelative(b.configFile)) throw new BundleError(`unsafe config file name ${JSON.stringify(b.configFile)}`);
  for (const f of b.files as unknown[]) {
    const file = f as Partial<BundleFile> | null;
    if (!file || typeof file.path !== 'string' || typeof file.data !== 'string' || (file.mode !== undefined && typeof file.mode !== 'number')) {
      throw new BundleError('every file must be { path: string, data: base64 string, mode?: number }');
    }
    if (!isSafeRelative(file.path)) throw new BundleError(`unsafe file path in project: ${JSON.stringify(file.path)}`);
  }
  if (!b.files.some((f) => f.path === b.configFile)) throw new BundleError(`the project has no file ${JSON.stringify(b.configFile)}`);
  checkTree(b.files as readonly BundleFile[]);
}

/** Longest name of one path segment most file systems accept (NAME_MAX, in bytes). */
export const MAX_NAME_BYTES = 255;
/** Longest relative path accepted in a bundle, in bytes (PATH_MAX is 4096 with the store folder in front). */
export const MAX_PATH_BYTES = 3072;

/**
 * Checks that the files make a tree the daemon can write: no path twice, no path that is both a file
 * and a folder (`a` and `a/b`), no name longer than `MAX_NAME_BYTES` nor path longer than
 * `MAX_PATH_BYTES`. Throws `BundleError` naming the entry.
 */
function checkTree(files: readonly BundleFile[]): void {
  const paths = new Set<string>();
  for (const f of files) {
    if (paths.has(f.path)) throw new BundleError(`the project lists the file ${JSON.stringify(f.path)} twice`);
    paths.add(f.path);
    if (Buffer.byteLength(f.path) > MAX_PATH_BYTES) {
      throw new BundleError(`path too long in project: ${JSON.stringify(f.path)} is ${Buffer.byteLength(f.path)} bytes (at most ${MAX_PATH_BYTES})`);
    }
    for (const segment of f.path.split('/')) {
      const bytes = Buffer.byteLength(segment);
      if (bytes > MAX_NAME_BYTES) {
        throw new BundleError(`name too long in project: ${JSON.stringify(segment)} in ${JSON.stringify(f.path)} is ${bytes} bytes (at most ${MAX_NAME_BYTES})`);
      }
    }
  }
  for (const f of files) {
    const segments = f.path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join('/');
      if (paths.has(folder)) {
        throw new BundleError(`the project has a file and a folder with the same name: ${JSON.stringify(folder)} (a file) and ${JSON.stringify(f.path)} (inside it)`);
      }
    }
  }
}

/** File-system errors a bundle's own content causes (the user's to fix, so a 400), by `code`. */
const BUNDLE_FS_ERRORS: Readonly<Record<string, string>> = {
  EEXIST: 'a file and a folder have the same name',
  ENOTDIR: 'a file and a folder have the same name',
  EISDIR: 'a file and a folder have the same name',
  ENAMETOOLONG: 'the name is too long for the file system',
  EILSEQ: 'the name is not valid on the file system',
  EINVAL: 'the name is not valid on the file system',
};

/** True when `rel` is a safe relative path (no absolute path, no `..`, no empty segment). */
function isSafeRelative(rel: string): boolean {
  if (rel === '' || rel.startsWith('/') || rel.includes('\\') || rel.includes('\0')) return false;
  return rel.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/**
 * Writes a bundle into `<root>/<bundleId>/` (once: an existing folder with that id is reused) and
 * returns the folder. Rejects unsafe paths so an upload can never write outside its folder.
 */
export async function unpackProject(root: string, bundle: ProjectBundle): Promise<string> {
  checkBundle(bundle);
  const id = bundleId(bundle);
  const dest = resolve(root, id);
  try {
    if ((await lstat(dest)).isDirectory()) return dest;
  } catch {
    // not there yet
  }
  const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true });
  try {
    await writeBundleFiles(tmp, bundle);
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return dest;
}

/**
 * Writes a checked bundle's files into `dest` directly (not through a temporary folder: a pod's
 * `emptyDir` mount cannot be renamed onto). `dest` must be missing or an empty folder; it is created
 * when missing. The same checks and the same modes as `unpackProject`. Returns the files and bytes written.
 */
export async function unpackProjectInto(dest: string, bundle: ProjectBundle): Promise<{ readonly files: number; readonly bytes: number }> {
  checkBundle(bundle);
  let existing: string[] = [];
  try {
    existing = await readdir(dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // A mount point may hold the file system's own `lost+found`; anything else would be mixed with the project.
  if (existing.some((n) => n !== 'lost+found')) throw new EngineError('ENG_DEST_NOT_EMPTY', `${dest} is not empty (it holds ${existing.slice(0, 3).join(', ')}${existing.length > 3 ? ', ...' : ''})`);
  await mkdir(dest, { recursive: true });
  return writeBundleFiles(dest, bundle);
}

/** Writes every file of a checked bundle under `dir`; file-system errors the bundle causes become `BundleError`. */
async function writeBundleFiles(dir: string, bundle: ProjectBundle): Promise<{ readonly files: number; readonly bytes: number }> {
  let bytes = 0;
  for (const f of bundle.files) {
    const p = join(dir, ...f.path.split('/'));
    try {
      await mkdir(join(p, '..'), { recursive: true });
      const data = Buffer.from(f.data, 'base64');
      bytes += data.length;
      await writeFile(p, data, { mode: (f.mode ?? 0o644) & 0o755 });
    } catch (err) {
      // Whatever checkBundle did not foresee (a file system with shorter names, say) is still the upload's fault.
      const reason = BUNDLE_FS_ERRORS[(err as NodeJS.ErrnoException).code ?? ''];
      if (reason) throw new BundleError(`cannot write ${JSON.stringify(f.path)} from the project: ${reason} (${(err as NodeJS.ErrnoException).code})`, { cause: err });
      throw err;
    }
  }
  return { files: bundle.files.length, bytes };
}

/** Media type of an encoded bundle (`GET /v1/projects/<id>`, the ConfigMap key `project.bundle`). */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.myelin.project+gzip';

/**
 * A bundle as bytes, for the wire and for a ConfigMap's `binaryData`: gzip of its JSON
 * (`{ configFile, files: [{ path, data (base64), mode? }] }`, files sorted by path so the same project
 * gives the same bytes).
 */
export function encodeBundle(bundle: ProjectBundle): Buffer {
  const files = [...bundle.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return gzipSync(Buffer.from(JSON.stringify({ configFile: bundle.configFile, files })), { level: 9 });
}

/** Reads `encodeBundle`'s bytes back, checked like an upload (`BundleError` on anything else). */
export function decodeBundle(bytes: Buffer, maxBytes = MAX_PROJECT_BYTES * 2): ProjectBundle {
  let json: unknown;
  try {
    json = JSON.parse(gunzipSync(bytes, { maxOutputLength: maxBytes }).toString('utf8'));
  } catch (err) {
    throw new BundleError(`not an encoded project bundle: ${(err as Error).message}`, { cause: err });
  }
  checkBundle(json);
  return json;
}

/**
 * The bundle stored in `<root>/<id>/` by `unpackProject`, read back (for pods that fetch it, when the
 * project was stored before `<id>.bundle` was). The config file is found again by `configFile`.
 * Dot-files, `node_modules` and `__pycache__` folders are left out (an upload never holds them; a
 * local Python replica writes `__pycache__` into the project). Throws when the folder is missing.
 */
export async function readStoredProject(root: string, id: string, configFile: string): Promise<ProjectBundle> {
  if (!/^[0-9a-f]{16}$/.test(id)) throw new BundleError(`not a project id: ${JSON.stringify(id)}`);
  const dir = resolve(root, id);
  const files: BundleFile[] = [];
  async function walk(d: string): Promise<void> {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      // What an upload never holds (packProject skips it) and what running the project adds (Python's bytecode).
      if (e.name.startsWith('.') || SKIP_DIRS.has(e.name) || (e.isDirectory() && e.name === '__pycache__')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const st = await lstat(p);
        files.push({ path: relative(dir, p).split(sep).join('/'), data: (await readFile(p)).toString('base64'), mode: st.mode & 0o777 });
      }
    }
  }
  await walk(dir);
  return { configFile, files };
}

/** `<root>/<id>.bundle`: the encoded bundle beside its unpacked folder, what pods download. */
export function storedBundleFile(root: string, id: string): string {
  return resolve(root, `${id}.bundle`);
}

/**
 * Stores `encodeBundle(bundle)` as `<root>/<bundleId>.bundle` (atomically: a temporary file renamed into
 * place; once: an existing file with that id is kept, the id being the content's). Returns its path.
 */
export async function storeEncodedBundle(root: string, bundle: ProjectBundle): Promise<string> {
  const file = storedBundleFile(root, bundleId(bundle));
  try {
    if ((await lstat(file)).isFile()) return file;
  } catch {
    // not there yet
  }
  await writeFileAtomic(file, encodeBundle(bundle), 0o600);
  return file;
}

/**
 * The encoded bytes of the stored project `id`: `<root>/<id>.bundle`, or for a project stored before
 * those files existed, its folder read back (`readStoredProject`) and encoded.
 */
export async function readEncodedProject(root: string, id: string, configFile: string): Promise<Buffer> {
  if (!/^[0-9a-f]{16}$/.test(id)) throw new BundleError(`not a project id: ${JSON.stringify(id)}`);
  try {
    return await readFile(storedBundleFile(root, id));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return encodeBundle(await readStoredProject(root, id, configFile));
}
