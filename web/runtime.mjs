// Loads Willow's browser runtime inside a dedicated module worker: Pyodide, libsodium.js, our
// wheels and the IndexedDB-backed /persist directory. Shared by the app worker (worker.mjs) and
// the developer harness (dev/harness-worker.mjs) so both boot exactly the same way.
//
// Startup time is what users feel, so everything independent starts at once, as soon as the
// worker module is evaluated (preload, from URLs build.py writes in): the Pyodide runtime,
// libsodium (its wasm is embedded in the module) and a prefetch of the wheels that warms the
// HTTP cache while the interpreter boots. Only loadPackage and the IDBFS mount wait for the
// runtime, and those two run side by side.

/** Stages reported to the page, in the order a loading bar fills. */
export const STAGES = Object.freeze(["runtime", "crypto", "packages", "storage", "app"]);

/** Where IndexedDB-backed files live in Pyodide's file system. */
export const PERSIST_DIR = "/persist";

/**
 * The site root as an absolute URL. Manifest URLs are relative to the site root, and this module
 * sits beside worker.mjs, whose root-relative path the manifest gives; so the root is as many
 * levels up from here as that path has directories. Works under any URL prefix.
 */
export function siteRoot(manifest) {
  const depth = manifest.worker.split("/").length - 1;
  return new URL("../".repeat(depth) || "./", import.meta.url);
}

/** Resolve a manifest URL against the site root. */
export function resolver(manifest) {
  const root = siteRoot(manifest);
  return (url) => new URL(url, root).href;
}

function syncfs(FS, populate) {
  return new Promise((resolve, reject) => {
    FS.syncfs(populate, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * A persist() for `FS`: resolves once an FS.syncfs(false) that started after the call has
 * finished. Calls made while a sync is waiting to start share it; a call made during a sync
 * schedules the next one. So syncs never overlap and no acknowledged write is left unflushed.
 */
export function makePersist(FS) {
  let tail = Promise.resolve();
  let waiting = null;
  const flush = flusher(FS);
  return function persist() {
    if (waiting) return waiting;
    const next = tail
      .catch(() => {})
      .then(() => {
        waiting = null;
        return flush();
      });
    waiting = next;
    tail = next;
    return next;
  };
}

/**
 * FS.syncfs(false) for the /persist mount, without reading back what IndexedDB holds each
 * time: IDBFS compares the local files' modification times with the stored ones, and listing
 * the stored ones is a cursor over every record, a round trip to the browser per file, on every
 * flush. This tab is the only writer (main.mjs holds the tab lock), so after the first listing
 * the stored times are the ones it last wrote. Any failure forgets them: the next flush lists
 * them again.
 */
function flusher(FS) {
  const IDBFS = FS.filesystems.IDBFS;
  let remote = null;
  const step = (fn, ...args) =>
    new Promise((resolve, reject) => fn(...args, (err, value) => (err ? reject(err) : resolve(value))));
  return async function flush() {
    let mount = null;
    try {
      mount = FS.lookupPath(PERSIST_DIR).node.mount;
    } catch {
      // no storage mounted (a page started without it)
    }
    if (mount?.type !== IDBFS) return syncfs(FS, false);
    try {
      remote ??= await step(IDBFS.getRemoteSet, mount);
      const local = await step(IDBFS.getLocalSet, mount);
      await step(IDBFS.reconcile, local, remote);
      remote = { ...remote, entries: local.entries };
    } catch (error) {
      remote = null;
      throw error;
    }
  };
}

function describe(error) {
  if (error && typeof error === "object" && "message" in error) return String(error.message);
  return String(error);
}

/**
 * The runtime URLs build.py writes into this file (relative to it), so a worker can start
 * loading the moment it is evaluated instead of after the page's boot message (which the page
 * may send only after its own start-up fetches). null in the unbuilt source.
 */
const BUILT = /*@willow-runtime-urls@*/ null;

function begin(urls) {
  // Warm the HTTP cache with the wheels while Pyodide boots; loadPackage then reads them
  // locally. A failed prefetch is harmless: loadPackage fetches again and reports the error.
  for (const wheel of urls.wheels) {
    fetch(wheel).then((r) => r.arrayBuffer()).catch(() => {});
  }
  const runtime = import(`${urls.pyodide}pyodide.mjs`).then(({ loadPyodide }) =>
    loadPyodide({
      indexURL: urls.pyodide,
      lockFileURL: `${urls.pyodide}pyodide-lock.json`,
      packages: [],
    }),
  );
  const crypto = import(urls.sodium).then(async (module) => {
    const sodium = module.default;
    await sodium.ready;
    return sodium;
  });
  // Failures surface when loadRuntime awaits these; do not report them twice before that.
  runtime.catch(() => {});
  crypto.catch(() => {});
  return { urls, runtime, crypto };
}

/**
 * Start loading the runtime now, from the URLs the build wrote in. Returns the handle to pass
 * to loadRuntime as `early`, or null when this file was not built (then loading starts at boot).
 */
export function preload() {
  if (BUILT === null) return null;
  const root = new URL(BUILT.root, import.meta.url);
  const url = (u) => new URL(u, root).href;
  return begin({ pyodide: url(BUILT.pyodide), sodium: url(BUILT.sodium), wheels: BUILT.wheels.map(url) });
}

function sameUrls(a, b) {
  return (
    a.pyodide === b.pyodide &&
    a.sodium === b.sodium &&
    a.wheels.length === b.wheels.length &&
    a.wheels.every((w, i) => w === b.wheels[i])
  );
}

/**
 * Load everything. `onStage(stage)` is called as each stage completes ("runtime", "crypto",
 * "packages", "storage"); "app" belongs to the caller. `early` is preload()'s handle: used when
 * it loads what the page's manifest names (it always does for a consistent build), ignored
 * otherwise. Rejects with an Error whose `stage` says which part failed.
 *
 * @returns {Promise<{pyodide, sodium, persist, url}>}
 */
export async function loadRuntime(manifest, { onStage = () => {}, storage = true, early = null } = {}) {
  const url = resolver(manifest);
  const urls = {
    pyodide: url(manifest.pyodide),
    sodium: url(manifest.sodium),
    wheels: manifest.wheels.map(url),
  };
  const started = early && sameUrls(early.urls, urls) ? early : begin(urls);

  const staged = (stage, promise) =>
    promise.then(
      (value) => {
        onStage(stage);
        return value;
      },
      (error) => {
        const wrapped = new Error(`${stage}: ${describe(error)}`);
        wrapped.stage = stage;
        wrapped.cause = error;
        throw wrapped;
      },
    );

  const runtime = staged("runtime", started.runtime);
  const crypto = staged("crypto", started.crypto);
  // Fail fast on a crypto error too, rather than after the runtime finishes.
  crypto.catch(() => {});

  const pyodide = await runtime;
  const packages = staged(
    "packages",
    (async () => {
      const errors = [];
      await pyodide.loadPackage(urls.wheels, {
        messageCallback: () => {},
        errorCallback: (message) => errors.push(message),
      });
      if (errors.length) throw new Error(errors.join("; "));
    })(),
  );
  const mounted = staged(
    "storage",
    (async () => {
      if (!storage) return;
      const FS = pyodide.FS;
      FS.mkdirTree(PERSIST_DIR);
      FS.mount(FS.filesystems.IDBFS, {}, PERSIST_DIR);
      await syncfs(FS, true);
    })(),
  );
  const [sodium] = await Promise.all([crypto, packages, mounted]);
  return { pyodide, sodium, persist: makePersist(pyodide.FS), url };
}
