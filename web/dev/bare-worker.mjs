// Bare baseline worker: loadPyodide with no packages, then report ready. Deliberately minimal
// (no shared runtime module): it is the floor the app's start-up is measured against.

self.addEventListener("message", async (event) => {
  const { manifest } = event.data;
  try {
    // This file is one directory below worker.mjs's, whose root-relative path the manifest gives.
    const depth = manifest.worker.split("/").length;
    const indexURL = new URL(manifest.pyodide, new URL("../".repeat(depth), import.meta.url)).href;
    const { loadPyodide } = await import(`${indexURL}pyodide.mjs`);
    await loadPyodide({ indexURL, lockFileURL: `${indexURL}pyodide-lock.json`, packages: [] });
    self.postMessage({ type: "ready" });
  } catch (error) {
    self.postMessage({ type: "error", message: String(error?.message ?? error) });
  }
});
