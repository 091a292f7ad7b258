import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FROM_SOURCES, PACKAGE_ROOT } from '../../adapters/fs/package-root.js';
import { EngineError } from '../../core/errors.js';

/** The dashboard's bundled script and stylesheet, with a content hash for cache-busting URLs. */
export interface PageAssets {
  readonly js: Buffer;
  readonly css: Buffer;
  /** First 12 hex digits of sha256(js, css). */
  readonly hash: string;
}

/** The page's sources (plain ES modules with JSDoc types, checked by `page/tsconfig.json`). */
export const PAGE_SOURCES = join(PACKAGE_ROOT, 'serving', 'dashboard', 'page');
/** Where `npm run build` writes the bundle: `dist/serving/dashboard/page/`, beside the compiled handler. */
const BUILT = fileURLToPath(new URL('./page/', import.meta.url));

/**
 * Bundles the page (its modules, uPlot and their CSS) with esbuild into one `app.js` (ES module,
 * minified, for current browsers) and one `app.css`; nothing is loaded from elsewhere at run time.
 * `outDir` given: the files are written there (the package build); always returned.
 */
export async function buildPage(outDir?: string): Promise<PageAssets> {
  const esbuild = await import('esbuild');
  const r = await esbuild.build({
    entryPoints: { app: join(PAGE_SOURCES, 'main.js') },
    bundle: true,
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    write: false,
    outdir: outDir ?? join(PAGE_SOURCES, 'out'),
    logLevel: 'warning',
    legalComments: 'none',
  });
  const js = r.outputFiles.find((f) => f.path.endsWith('.js'));
  const css = r.outputFiles.find((f) => f.path.endsWith('.css'));
  if (!js || !css) throw new EngineError('ENG_DASHBOARD_BUILD', 'the dashboard bundle has no app.js or app.css');
  const assets = withHash(Buffer.from(js.contents), Buffer.from(css.contents));
  if (outDir) {
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'app.js'), assets.js);
    await writeFile(join(outDir, 'app.css'), assets.css);
  }
  return assets;
}

function withHash(js: Buffer, css: Buffer): PageAssets {
  const hash = createHash('sha256').update(js).update(css).digest('hex').slice(0, 12);
  return { js, css, hash };
}

let cached: Promise<PageAssets> | undefined;

/**
 * The page's assets: from the sources (built in memory on first use, esbuild being a dev dependency of
 * a clone), or as `npm run build` wrote them beside the compiled code. Cached for the process.
 */
export function pageAssets(): Promise<PageAssets> {
  cached ??= (async () => {
    if (FROM_SOURCES) return buildPage();
    try {
      return withHash(await readFile(join(BUILT, 'app.js')), await readFile(join(BUILT, 'app.css')));
    } catch (err) {
      throw new EngineError('ENG_DASHBOARD_MISSING', `the dashboard bundle is missing from ${BUILT} (run npm run build)`, { cause: err });
    }
  })();
  cached.catch(() => (cached = undefined));
  return cached;
}
