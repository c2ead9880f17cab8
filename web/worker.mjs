// The app's dedicated module worker (D12): Pyodide, willow_core, crypto and persistence live
// here so the page thread only renders. Boot contract:
//
//   page -> worker, first message: {type: "boot", manifest, config}
//     manifest: the page's inline willow-manifest JSON (URLs relative to the site root)
//     config:   anything the app wants; handed to Python untouched
//   worker -> page while loading: {type: "boot-progress", stage, done, total}
//     stage is one of runtime, crypto, packages, storage, app, sent as each completes
//     ("app" once willow_web.boot.start has resolved); done counts completed stages
//   worker -> page on failure:    {type: "boot-error", stage, message}
//
// Then, in Python:   onMessage = await willow_web.boot.start(env)
//   env.sodium      libsodium.js, ready (build a SodiumBackend from it)
//   env.post(msg, transfer?)  postMessage to the page; a PyProxy (dict) is converted with
//                   dict_converter=Object.fromEntries, so Python may pass dicts or to_js objects
//   env.persist()   Promise that resolves after an FS.syncfs(false) started after the call
//                   has finished (calls are serialized; IDBFS is mounted at /persist)
//   env.config      the boot message's config
//   env.pyodide     the Pyodide instance
// Every later page message (and any sent before start resolved, queued in order) is passed
// to onMessage(msg) as a JS object, one call per message in arrival order. A message that
// raises (or whose returned awaitable rejects) is reported as {type: "error", message}.

import { loadRuntime, preload, STAGES } from "./runtime.mjs";

// Start loading now: the page may send its boot message only after its own start-up fetches.
const early = preload();

const queue = [];
let deliver = null;
let booted = false;

function describe(error) {
  if (error && typeof error === "object" && "message" in error) return String(error.message);
  return String(error);
}

function reportError(error) {
  console.error(error);
  self.postMessage({ type: "error", message: describe(error) });
}

function makePost(pyodide) {
  const PyProxy = pyodide.ffi.PyProxy;
  const plain = (value) =>
    value instanceof PyProxy
      ? value.toJs({ dict_converter: Object.fromEntries, create_pyproxies: false })
      : value;
  return (message, transfer) => {
    self.postMessage(plain(message), transfer === undefined ? [] : plain(transfer));
  };
}

function makeDeliver(pyodide, onMessage) {
  const PyProxy = pyodide.ffi.PyProxy;
  return (message) => {
    try {
      const result = onMessage(message);
      const release = () => {
        if (result instanceof PyProxy) result.destroy();
      };
      if (result && typeof result.then === "function") {
        // An async handler: report a failure, free the proxy once it has settled.
        result.then(release, (error) => {
          release();
          reportError(error);
        });
      } else {
        release();
      }
    } catch (error) {
      reportError(error);
    }
  };
}

async function boot(manifest, config) {
  let done = 0;
  const progress = (stage) => {
    done += 1;
    self.postMessage({ type: "boot-progress", stage, done, total: STAGES.length });
  };
  let stage = "runtime";
  try {
    const { pyodide, sodium, persist } = await loadRuntime(manifest, { onStage: progress, early });
    stage = "app";
    const env = { sodium, config, pyodide, persist, post: makePost(pyodide) };
    const entry = pyodide.pyimport("willow_web.boot");
    const onMessage = await entry.start(env);
    entry.destroy();
    if (typeof onMessage !== "function") {
      throw new Error("willow_web.boot.start must return a callable");
    }
    deliver = makeDeliver(pyodide, onMessage);
    progress("app");
    // Drain in one synchronous pass: no new message can interleave with the queued ones.
    for (const message of queue.splice(0)) deliver(message);
  } catch (error) {
    console.error(error);
    self.postMessage({
      type: "boot-error",
      stage: error?.stage ?? stage,
      message: describe(error),
    });
  }
}

self.addEventListener("message", (event) => {
  const message = event.data;
  if (!booted && message?.type === "boot") {
    booted = true;
    boot(message.manifest, message.config ?? {});
  } else if (deliver) {
    deliver(message);
  } else {
    queue.push(message);
  }
});

self.addEventListener("unhandledrejection", (event) => reportError(event.reason));
