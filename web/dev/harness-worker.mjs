// Developer harness worker: loads the runtime exactly as the app worker does (runtime.mjs),
// installs the libsodium.js crypto backend, then runs Python sent by the harness page.
// Python globals: sodium_js (libsodium.js), persist (env.persist) and, per run, harness_data
// (the run's Uint8Array as a JsProxy, `.to_bytes()` gives bytes; jsnull when none was sent).

import { loadRuntime, preload } from "../runtime.mjs";

const early = preload();

const INSTALL_BACKEND = `
from willow_core import crypto
from willow_web.sodium_backend import SodiumBackend
crypto.set_backend(SodiumBackend(sodium_js))
`;

let pyodide = null;
const waiting = [];

function describe(error) {
  if (error && typeof error === "object" && "message" in error) return String(error.message);
  return String(error);
}

async function run({ id, code, data }) {
  try {
    pyodide.globals.set("harness_data", data ?? null);
    let value = await pyodide.runPythonAsync(code);
    if (value instanceof pyodide.ffi.PyProxy) {
      const proxy = value;
      value = proxy.toJs({ dict_converter: Object.fromEntries, create_pyproxies: false });
      proxy.destroy();
    }
    self.postMessage({ type: "result", id, ok: true, value });
  } catch (error) {
    self.postMessage({ type: "result", id, ok: false, error: describe(error) });
  }
}

async function boot(manifest) {
  try {
    const onStage = (stage) => self.postMessage({ type: "boot-progress", stage });
    const runtime = await loadRuntime(manifest, { onStage, early });
    pyodide = runtime.pyodide;
    pyodide.globals.set("sodium_js", runtime.sodium);
    pyodide.globals.set("persist", runtime.persist);
    await pyodide.runPythonAsync(INSTALL_BACKEND);
    self.postMessage({ type: "ready" });
    for (const message of waiting.splice(0)) run(message);
  } catch (error) {
    self.postMessage({ type: "boot-error", stage: error?.stage ?? "app", message: describe(error) });
  }
}

self.addEventListener("message", (event) => {
  const message = event.data;
  if (message.type === "boot") boot(message.manifest);
  else if (pyodide) run(message);
  else waiting.push(message);
});
