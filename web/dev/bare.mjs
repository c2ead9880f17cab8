// Bare baseline page: a module worker that loads Pyodide and nothing else. Marks
// document.documentElement.dataset.ready = "1" when the worker reports ready, the same signal
// the app page gives, so browser-start compares like with like.

const manifest = JSON.parse(document.getElementById("willow-manifest").textContent);
const worker = new Worker(new URL("./bare-worker.mjs", import.meta.url), { type: "module" });
worker.addEventListener("message", (event) => {
  const status = document.getElementById("status");
  if (event.data.type === "ready") {
    status.textContent = "ready";
    document.documentElement.dataset.ready = "1";
  } else {
    status.textContent = `error: ${event.data.message}`;
  }
});
worker.postMessage({ type: "boot", manifest });
