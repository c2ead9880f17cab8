// Loads Willow's browser runtime inside a dedicated module worker: Pyodide, libsodium.js, our
// wheels and the IndexedDB-backed /persist directory. Shared by the app worker (worker.mjs) and
// the developer harness (dev/harness-worker.mjs) so both boot exactly the same way.
//
// Startup time is what users feel, so everything independent starts at once: the Pyodide
// runtime, libsodium (its wasm is embedded in the module) and a prefetch of the wheels that warms
// the HTTP cache while the interpreter boots. Only loadPackage and the IDBFS mount wait for the
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
  return function persist() {
    if (waiting) return waiting;
    const next = tail
      .catch(() => {})
      .then(() => {
        waiting = null;
        return syncfs(FS, false);
      });
    waiting = next;
    tail = next;
    return next;
  };
}

function describe(error) {
  if (error && typeof error === "object" && "message" in error) return String(error.message);
  return String(error);
}

/**
 * Load everything. `onStage(stage)` is called as each stage completes ("runtime", "crypto",
 * "packages", "storage"); "app" belongs to the caller. Rejects with an Error whose `stage` says
 * which part failed.
 *
 * @returns {Promise<{pyodide, sodium, persist, url}>}
 */
export async function loadRuntime(manifest, { onStage = () => {}, storage = true } = {}) {
  const url = resolver(manifest);
  const indexURL = url(manifest.pyodide);
  const wheels = manifest.wheels.map(url);

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

  // Warm the HTTP cache with the wheels while Pyodide boots; loadPackage then reads them locally.
  // A failed prefetch is harmless: loadPackage fetches again and reports the real error.
  for (const wheel of wheels) {
    fetch(wheel).then((r) => r.arrayBuffer()).catch(() => {});
  }

  const runtime = staged(
    "runtime",
    import(`${indexURL}pyodide.mjs`).then(({ loadPyodide }) =>
      loadPyodide({ indexURL, lockFileURL: `${indexURL}pyodide-lock.json`, packages: [] }),
    ),
  );
  const crypto = staged(
    "crypto",
    import(url(manifest.sodium)).then(async (module) => {
      const sodium = module.default;
      await sodium.ready;
      return sodium;
    }),
  );
  // Fail fast on a crypto error too, rather than after the runtime finishes.
  crypto.catch(() => {});

  const pyodide = await runtime;
  const packages = staged(
    "packages",
    (async () => {
      const errors = [];
      await pyodide.loadPackage(wheels, {
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
