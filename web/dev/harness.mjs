// Developer harness page: boots harness-worker.mjs (the same runtime as the app worker) and
// exposes window.harness so tests and benchmarks can run Python inside Pyodide:
//   await harness.ready                       -> {stages: [...]} once Pyodide, sodium and wheels load
//   await harness.run(code, {data: base64?})  -> the value of the last expression, converted to JS
// `data` arrives in Python as the global `harness_data` (a Uint8Array: `harness_data.to_bytes()`).

const manifest = JSON.parse(document.getElementById("willow-manifest").textContent);
const worker = new Worker(new URL("./harness-worker.mjs", import.meta.url), { type: "module" });
const status = document.getElementById("status");
const pending = new Map();
const stages = [];
let nextId = 1;
let settle;
const ready = new Promise((resolve, reject) => {
  settle = { resolve, reject };
});

function decodeBase64(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

worker.addEventListener("message", (event) => {
  const message = event.data;
  if (message.type === "boot-progress") {
    stages.push({ stage: message.stage, ms: performance.now() });
  } else if (message.type === "ready") {
    status.textContent = "ready";
    document.documentElement.dataset.ready = "1";
    settle.resolve({ stages });
  } else if (message.type === "boot-error") {
    status.textContent = `boot error: ${message.message}`;
    settle.reject(new Error(`boot-error (${message.stage}): ${message.message}`));
  } else if (message.type === "result") {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.value);
    else waiter.reject(new Error(message.error));
  }
});
worker.addEventListener("error", (event) => settle.reject(new Error(event.message)));

worker.postMessage({ type: "boot", manifest, config: {} });

window.harness = {
  ready,
  stages,
  run(code, { data } = {}) {
    const id = nextId++;
    const bytes = typeof data === "string" ? decodeBase64(data) : data;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ type: "run", id, code, data: bytes }, bytes ? [bytes.buffer] : []);
    });
  },
};
