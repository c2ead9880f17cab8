// The page thread (D12): it renders what the worker sends and forwards what the person does.
// No application logic lives here: the worker (Python) decides every view; this file morphs
// HTML regions in place (idiomorph keeps focus, selection and scroll), appends live messages,
// and turns clicks, form submissions and keys into {type: "action", ...} messages.
//
// The composers are owned by the page so typing never waits on the worker; the worker only
// says whether they are enabled and what their placeholders are.

const manifest = JSON.parse(document.getElementById("willow-manifest").textContent);
const url = (path) => new URL(path, document.baseURI).href;
const $ = (id) => document.getElementById(id);

/** Pixels from the bottom within which the list counts as "at the latest message". */
const STICK_PX = 120;
/** How long to wait for the relay's capability document before starting without it. */
const CAPABILITIES_TIMEOUT_MS = 2000;

const worker = new Worker(url(manifest.worker), { type: "module" });
const idiomorph = import(url(manifest.idiomorph)).then((m) => m.Idiomorph);
const post = (message) => worker.postMessage(message);
const act = (action, fields = {}) => post({ type: "action", action, ...fields });

let ready = false;
let composerKey = "";
const drafts = new Map();
const inspections = new Map();
let inspectId = 0;

// --- configuration: where the relay is --------------------------------------------------

async function relayConfig() {
  const params = new URLSearchParams(location.search);
  const config = {
    origin: location.origin + location.pathname.replace(/index\.html$/, "").replace(/\/$/, ""),
    tz_offset_min: new Date().getTimezoneOffset(),
  };
  if (params.get("relay")) config.relay = params.get("relay");
  try {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), CAPABILITIES_TIMEOUT_MS);
    const response = await fetch(url("/.well-known/willow"), { signal: controller.signal });
    clearTimeout(timer);
    if (response.ok) {
      const { capabilities } = await response.json();
      const ws = capabilities?.transports?.websocket;
      if (ws && !config.relay) {
        const scheme = location.protocol === "https:" ? "wss:" : "ws:";
        config.relay = `${scheme}//${location.hostname}:${ws.port}${ws.path || "/"}`;
        config.relay_key = capabilities.key;
      }
      config.services = capabilities.services || [];
    }
  } catch (error) {
    console.info("no relay capability document here:", error);
  }
  return config;
}

// --- rendering ----------------------------------------------------------------------------

function keepFocused(oldNode) {
  // Never overwrite a field the person is typing in.
  if (oldNode !== document.activeElement) return true;
  const tag = oldNode.tagName;
  return !(tag === "TEXTAREA" || tag === "INPUT" || tag === "SELECT");
}

function nearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
}

async function render({ regions, trims, patches, appends, seq }) {
  const Idiomorph = await idiomorph;
  const list = $("messages");
  // While a scroll is already due (see afterRender) the list has grown without one: reading
  // its geometry now would force a layout, and the answer is known.
  const stick = stickDue || nearBottom(list);
  const overlayBefore = $("overlay").innerHTML !== "";
  for (const [id, html] of regions) {
    const el = $(id);
    if (!el) continue;
    Idiomorph.morph(el, html, {
      morphStyle: "innerHTML",
      callbacks: { beforeNodeMorphed: keepFocused },
    });
  }
  for (const [id, count] of trims) {
    // The window moved on: the oldest message rows leave the top (the intro row stays).
    const rows = $(id)?.querySelectorAll(':scope > .msg-row:not([data-row="intro"])') || [];
    if (rows.length < count) {
      post({ type: "resync", region: id });
      continue;
    }
    for (let i = 0; i < count; i++) rows[i].remove();
  }
  for (const [id, row, html] of patches) {
    // One message's row changed (a reaction, an acknowledgement, a pin): morph just that row.
    const el = $(id)?.querySelector(`[data-row="${row}"]`);
    if (!el) {
      post({ type: "resync", region: id }); // not what the worker thinks we show: ask for all
      continue;
    }
    Idiomorph.morph(el, html, { morphStyle: "outerHTML", callbacks: { beforeNodeMorphed: keepFocused } });
  }
  for (const [id, html] of appends) {
    $(id)?.insertAdjacentHTML("beforeend", html);
  }
  afterRender(stick || (regions.some(([id]) => id === "message-list") && !listTouched));
  const autofocus = document.querySelector("#overlay [data-autofocus], .edit-form [data-autofocus]");
  if (autofocus && document.activeElement !== autofocus && (!overlayBefore || autofocus.closest(".edit-form"))) {
    autofocus.focus();
    if (autofocus.setSelectionRange) autofocus.setSelectionRange(autofocus.value.length, autofocus.value.length);
  }
  document.dispatchEvent(new CustomEvent("willow-render", { detail: { seq } }));
}

let stickDue = false;
let frameDue = false;

/** Scrolling to the newest message and the jump button read layout, so they wait for the next
 * frame: one layout per frame however many renders arrive, never one forced per render. */
function afterRender(stick) {
  stickDue ||= stick;
  if (frameDue) return;
  frameDue = true;
  requestAnimationFrame(() => {
    frameDue = false;
    const list = $("messages");
    if (stickDue) list.scrollTop = list.scrollHeight;
    stickDue = false;
    updateJump();
  });
}

let listTouched = false;

function applyComposer(state) {
  const box = $("composer");
  if (state.key !== composerKey) {
    drafts.set(composerKey, box.value);
    box.value = drafts.get(state.key) || "";
    composerKey = state.key;
    listTouched = false;
    const list = $("messages");
    requestAnimationFrame(() => (list.scrollTop = list.scrollHeight));
  }
  box.disabled = !state.enabled;
  box.placeholder = state.placeholder;
  const thread = $("thread-composer");
  thread.placeholder = state.thread || "";
  document.body.classList.toggle("members-open", !!state.layout.members);
  document.body.classList.toggle("thread-open", !!state.layout.thread);
  autosize(box);
}

/** Browsers with `field-sizing: content` grow the composer by themselves (app.css), with no
 * layout forced per keystroke; others measure it. */
const NATIVE_AUTOSIZE = CSS.supports("field-sizing", "content");

function autosize(box) {
  if (NATIVE_AUTOSIZE) return;
  box.style.height = "auto";
  box.style.height = Math.min(box.scrollHeight, 240) + "px";
}

function updateJump() {
  const list = $("messages");
  $("jump").hidden = nearBottom(list);
}

function setProgress(done, total, stage) {
  $("loading-bar").style.width = `${Math.round((100 * done) / total)}%`;
  $("loading-text").textContent = `Starting Willow… (${stage})`;
}

worker.onmessage = (event) => {
  const message = event.data;
  switch (message.type) {
    case "render":
      render(message);
      break;
    case "composer":
      applyComposer(message.state);
      break;
    case "ready":
      ready = true;
      document.body.classList.add("ready");
      $("loading").hidden = true;
      document.documentElement.dataset.ready = "1";
      document.dispatchEvent(new Event("willow-ready"));
      openJoinFromHash();
      break;
    case "boot-progress":
      setProgress(message.done, message.total, message.stage);
      break;
    case "boot-error":
      $("loading-text").textContent = `Willow could not start: ${message.message}`;
      document.documentElement.dataset.bootError = message.message;
      break;
    case "error":
      console.error("worker:", message.message);
      break;
    case "focus":
      $("composer").focus();
      break;
    case "copy":
      navigator.clipboard?.writeText(message.text).catch(() => {});
      break;
    case "inspect": {
      const resolve = inspections.get(message.id);
      inspections.delete(message.id);
      resolve?.(message);
      break;
    }
  }
};

/** For tests and benchmarks: the worker's state hashes and counts. */
window.willowInspect = () =>
  new Promise((resolve) => {
    const id = ++inspectId;
    inspections.set(id, resolve);
    post({ type: "inspect", id });
  });

function openJoinFromHash() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.toLowerCase().startsWith("willow:join:")) {
    act("open-modal", { modal: "join", link: hash });
    history.replaceState(null, "", location.pathname + location.search);
  }
}

// --- input --------------------------------------------------------------------------------

function fields(el) {
  return { ...el.dataset };
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-action]");
  if (event.target.closest(".spoiler")) {
    event.target.closest(".spoiler").classList.add("shown");
  }
  if (!target || target.tagName === "FORM") return;
  if (target.matches("button[type=submit]") && target.form) return;
  const data = fields(target);
  if (!data.action) return;
  event.preventDefault();
  if (data.action === "jump") {
    const el = $("m-" + data.id);
    if (el) {
      el.scrollIntoView({ block: "center" });
      el.classList.add("flash");
      setTimeout(() => el.classList.remove("flash"), 1200);
    }
    return;
  }
  if (target.closest("#sidebar") && data.action === "select-channel") document.body.classList.remove("nav-open");
  act(data.action, data);
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  event.preventDefault();
  if (form.id === "composer-form") return sendFrom($("composer"), "main");
  if (form.id === "thread-form") return sendFrom($("thread-composer"), "thread");
  const data = { ...Object.fromEntries(new FormData(form)), ...fields(form) };
  if (!data.action) return;
  act(data.action, data);
  if (!form.dataset.keep) form.reset();
  if (data.action === "join" || data.action === "create-community") document.body.classList.remove("nav-open");
});

function sendFrom(box, target) {
  const text = box.value;
  if (!text.trim() || box.disabled) return;
  act("send", { text, target });
  box.value = "";
  autosize(box);
  listTouched = false;
}

/** The worker yields more while the person types or clicks (at most one note per interval). */
const INPUT_NOTE_MS = 100;
let inputNoted = 0;
function noteInput() {
  const now = performance.now();
  if (now - inputNoted < INPUT_NOTE_MS) return;
  inputNoted = now;
  post({ type: "input" });
}
document.addEventListener("pointerdown", noteInput, true);

document.addEventListener("keydown", (event) => {
  noteInput();
  const el = event.target;
  if (el.id === "composer" || el.id === "thread-composer") {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendFrom(el, el.id === "composer" ? "main" : "thread");
      return;
    }
    if (event.key === "ArrowUp" && el.value === "" && el.id === "composer") {
      event.preventDefault();
      act("edit-last");
      return;
    }
  }
  if (el.classList?.contains("edit-input") && event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    el.form.requestSubmit();
    return;
  }
  if (event.key === "Escape") {
    act("close");
    document.body.classList.remove("nav-open");
    return;
  }
  if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    act(event.ctrlKey ? "step-community" : "step-channel", { delta: event.key === "ArrowDown" ? "1" : "-1" });
    return;
  }
  if ((event.ctrlKey || event.metaKey) && event.key === "/") {
    event.preventDefault();
    act("open-modal", { modal: "shortcuts" });
  }
});

document.addEventListener("input", (event) => {
  if (event.target.tagName === "TEXTAREA" && event.target.closest(".composer")) autosize(event.target);
});

$("messages").addEventListener("scroll", () => {
  listTouched = !nearBottom($("messages"));
  updateJump();
});
$("jump").addEventListener("click", () => {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
  listTouched = false;
  updateJump();
});
$("nav-toggle").addEventListener("click", () => document.body.classList.toggle("nav-open"));
window.addEventListener("online", () => post({ type: "online" }));
// The browser says the network is gone: drop the socket now rather than wait for it to time
// out (sends queue locally meanwhile), and reconnect as soon as it says the network is back.
window.addEventListener("offline", () => post({ type: "offline" }));
window.addEventListener("hashchange", () => ready && openJoinFromHash());

// --- one tab at a time ---------------------------------------------------------------------

/** The Web Lock the tab running Willow holds (locks are per origin, as the storage is). */
const TAB_LOCK = "willow-app";
/** How long a new tab waits for the lock before saying Willow is open elsewhere: a reloading
 * tab's old document may still hold it for a moment. */
const TAB_WAIT_MS = 1500;

/** Resolves once this tab may run Willow. Two tabs would each sign as the same person from
 * their own copy of the history, forking that person's chain of events, and overwrite each
 * other's storage; so the tab that runs Willow holds a Web Lock while it lives. Another tab
 * says Willow is open elsewhere and offers to move it here: it takes the lock over, and the
 * tab that had it stops its worker (before booting, a tab's worker has touched neither the
 * storage nor the relay). */
function claimTab() {
  if (!navigator.locks) {
    tab = "held"; // no Web Locks: nothing to coordinate with
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const hold = () => {
      tab = "held";
      resolve();
      return new Promise(() => {}); // held until the tab closes, or another tab takes it
    };
    const lost = () => {
      if (tab === "held") stopped();
      tab = "lost";
    };
    const wait = { signal: AbortSignal.timeout(TAB_WAIT_MS) };
    navigator.locks.request(TAB_LOCK, wait, hold).catch(() => {
      if (tab === "held") return lost(); // taken over by another tab
      elsewhere("Willow is open in another tab.", () =>
        navigator.locks.request(TAB_LOCK, { steal: true }, hold).catch(lost),
      );
    });
  });
}

/** "waiting" for the lock, "held", or "lost" to another tab. */
let tab = "waiting";

/** Another tab took Willow over: stop the worker, say so, offer to take it back. */
function stopped() {
  worker.terminate();
  ready = false;
  delete document.documentElement.dataset.ready;
  elsewhere("Willow was opened in another tab.", () => location.reload());
}

function elsewhere(text, action) {
  const loading = $("loading");
  loading.hidden = false;
  loading.classList.add("elsewhere");
  $("loading-text").textContent = text;
  const button = document.createElement("button");
  button.id = "use-here";
  button.className = "btn primary";
  button.textContent = "Use Willow here";
  button.addEventListener("click", () => {
    button.remove();
    loading.classList.remove("elsewhere");
    $("loading-text").textContent = "Starting Willow…";
    action();
  });
  $("use-here")?.remove();
  loading.append(button);
}

// --- start --------------------------------------------------------------------------------

Promise.all([claimTab(), relayConfig()]).then(([, config]) => {
  if (tab === "held") post({ type: "boot", manifest, config });
});
