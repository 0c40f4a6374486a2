// handsign page: pick a model, send a photo (file or camera) or a drawing to POST /predict and show the top 3, or
// spell live from the camera (live.js: read in this browser where it can, else on the server).
import { LiveSession, loadBrowserRoute, readsJandZ } from "./live.js";
import { drawingPad } from "./pad.js";

const $ = (id) => document.getElementById(id);
const ui = {
  model: $("model"), file: $("file"), preview: $("preview"), video: $("video"), skeleton: $("skeleton"),
  stage: $("stage"), camStart: $("camera-start"), camSnap: $("camera-snap"), live: $("live"), camStop: $("camera-stop"),
  route: $("route"), pad: $("pad"), predictDrawing: $("predict-drawing"), padClear: $("pad-clear"),
  drawModel: $("draw-model"), result: $("result"), label: $("label"), confidence: $("confidence"), top: $("top"),
  status: $("status"), error: $("error"), spellBox: $("spell-box"), spelled: $("spelled"), clear: $("clear"),
  fps: $("fps"), tabs: { photo: $("tab-photo"), draw: $("tab-draw") },
  panes: { photo: $("pane-photo"), draw: $("pane-draw") },
};
let models = [];
let stream = null;      // the camera's MediaStream while it is on
let previewUrl = null;  // object URL of the picture shown, revoked when replaced
let live = null;        // the LiveSession while live spelling runs
let spelledBefore = "";  // text spelled by earlier live sessions (until #clear)

// The bones between MediaPipe's 21 hand landmarks (handsign/hands/landmarks.py BONES).
const BONES = [[0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [5, 9], [9, 10], [10, 11],
  [11, 12], [9, 13], [13, 14], [14, 15], [15, 16], [13, 17], [0, 17], [17, 18], [18, 19], [19, 20]];

// Letters are shown in upper case (a lower-case l looks like a bar, I like an l); digits and names as they are.
const shown = (label) => (/^[a-z]$/.test(label) ? label.toUpperCase() : label);

// ---------- models ----------
async function loadModels() {
  try {
    const r = await fetch("/models");
    if (!r.ok) throw new Error(`GET /models: HTTP ${r.status}`);
    models = await r.json();
  } catch (e) {
    showError(`Could not list the models: ${e.message}`);
    return;
  }
  ui.model.replaceChildren(...models.map((m) => {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = `${m.name} — ${describe(m)}`;
    o.selected = m.default;
    return o;
  }));
  ui.model.disabled = false;
  followModel();
}

function describe(m) {
  const asl = m.task === "sign_mnist" || m.task === "asl_photos";
  const kind = isDigitModel(m) ? "digits" : asl ? "ASL letters" : "classes";
  // live spelling in the page adds the motion letters to such a model (live.js); photos read its own labels
  const motion = m.browser && readsJandZ(m.labels) ? " + J, Z live" : "";
  return `${m.labels.length} ${kind}${motion}`;
}

const isDigitModel = (m) => m && (m.task === "mnist" || (m.preprocess && m.preprocess.fit === "digit"));
const currentModel = () => models.find((m) => m.name === ui.model.value);
// Drawings go to a digit model: the chosen one if it is one, else the first served; the hint names it.
const drawModel = () => (isDigitModel(currentModel()) ? currentModel() : models.find(isDigitModel) || currentModel());

// The digit model is meant for drawing, the others for photos: switch the input to match.
function followModel() {
  selectTab(isDigitModel(currentModel()) ? "draw" : "photo");
  const m = drawModel();
  ui.drawModel.textContent = !m ? "" : isDigitModel(m) ? `It is read by the digit model ${m.name}.`
    : `No digit model is served here: it is sent to ${m.name}.`;
}

// ---------- tabs (WAI-ARIA tabs pattern: arrows move between tabs) ----------
function selectTab(name) {
  for (const [key, tab] of Object.entries(ui.tabs)) {
    const on = key === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    ui.panes[key].hidden = !on;
  }
  if (name !== "photo") stopCamera();
}
for (const [key, tab] of Object.entries(ui.tabs)) {
  tab.addEventListener("click", () => selectTab(key));
  tab.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    const other = key === "photo" ? "draw" : "photo";
    selectTab(other);
    ui.tabs[other].focus();
  });
}
ui.model.addEventListener("change", () => { stopLive(); followModel(); });

// ---------- predict (the server) ----------
// POST one picture; the answer's JSON, or throws with the server's one-line error.
async function postPredict(blob, filename, model, topK = 3) {
  const form = new FormData();
  form.append("file", blob, filename);
  const r = await fetch(`/predict?${new URLSearchParams({ model, top_k: String(topK) })}`, { method: "POST", body: form });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

// A photo or a drawing: the answer, or the error with no answer left from before (nor the picture, for a photo).
async function predict(blob, filename, model = ui.model.value) {
  hideError();
  ui.result.setAttribute("aria-busy", "true");
  ui.status.textContent = "Predicting…";
  try {
    const body = await postPredict(blob, filename, model);
    showResult(body, model);
    drawSkeleton(body.via === "landmarks" ? body.landmarks : null, ui.preview);
  } catch (e) {
    clearResult();
    ui.preview.hidden = true;  // an unreadable file's preview is a broken picture: none is better
    drawSkeleton(null);
    showError(e.message);
  } finally {
    ui.result.setAttribute("aria-busy", "false");
  }
}

// The hand's bones and joints over the picture or the video, in its own pixels (the canvas is stretched over it).
function drawSkeleton(points, over) {
  const c = ui.skeleton;
  const w = over && (over.videoWidth || over.naturalWidth), h = over && (over.videoHeight || over.naturalHeight);
  if (points && !w && over.tagName === "IMG") {  // the answer came before the picture was decoded
    over.addEventListener("load", () => drawSkeleton(points, over), { once: true });
    return;
  }
  if (!points || !w) { c.hidden = true; return; }
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const g = c.getContext("2d");
  g.clearRect(0, 0, w, h);
  const unit = Math.max(2, Math.round(Math.max(w, h) / 160));
  g.lineWidth = unit;
  g.strokeStyle = "#39ff88";
  g.beginPath();
  for (const [a, b] of BONES) { g.moveTo(points[a][0], points[a][1]); g.lineTo(points[b][0], points[b][1]); }
  g.stroke();
  g.fillStyle = "#ff3d7f";
  for (const [x, y] of points) { g.beginPath(); g.arc(x, y, unit * 1.6, 0, 2 * Math.PI); g.fill(); }
  c.hidden = false;
}

function showTop(top) {
  ui.top.replaceChildren(...top.map(([label, p]) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = shown(label);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.style.width = `${(p * 100).toFixed(1)}%`;
    bar.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(p * 100).toFixed(1)}%`;
    li.append(name, bar, pct);
    return li;
  }));
}

function showResult(r, model) {
  // below the model's confidence floor the page says so, and still lists the top 3
  const sure = r.confident !== false;
  ui.label.textContent = sure ? shown(r.label) : "not sure";
  ui.confidence.hidden = true;
  showTop(r.top);
  const pct = `${(r.probability * 100).toFixed(1)}%`;
  // which route answered: the hand's landmarks, or the pixels (and why: no hand found...)
  const via = r.via ? ` — via ${r.via}${r.reason ? ` (${r.reason})` : ""}` : "";
  ui.status.textContent = (sure ? `${model}: ${shown(r.label)} with probability ${pct}`
    : `${model}: not sure (best guess ${shown(r.label)}, ${pct})`) + via;
}

function clearResult() {
  ui.label.textContent = "–";
  ui.confidence.hidden = true;
  ui.top.replaceChildren();
  ui.status.textContent = "";
}

function showError(message) { ui.error.textContent = message; ui.error.hidden = false; }
function hideError() { ui.error.hidden = true; ui.error.textContent = ""; }

function showPreview(blob) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(blob);
  ui.preview.src = previewUrl;
  ui.preview.hidden = false;
  ui.stage.classList.remove("mirror");
}

// ---------- photo: file ----------
ui.file.addEventListener("change", () => {
  const f = ui.file.files[0];
  if (!f) return;
  stopLive();
  ui.video.hidden = true;
  ui.skeleton.hidden = true;
  showPreview(f);
  predict(f, f.name);
  ui.file.value = "";  // choosing the same file again fires "change" again
});

// ---------- photo: camera ----------
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) ui.camStart.hidden = ui.live.hidden = false;

// The camera on and shown (mirrored, like a mirror: the frames themselves are read unmirrored); false if refused.
async function startCamera() {
  if (!stream) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
    } catch (e) {
      showError(`Camera unavailable: ${e.message}`);
      return false;
    }
    ui.video.srcObject = stream;
  }
  ui.video.hidden = false;
  ui.preview.hidden = true;
  ui.skeleton.hidden = true;
  ui.stage.classList.add("mirror");
  ui.camStart.hidden = true;
  ui.camSnap.hidden = ui.camStop.hidden = false;
  return true;
}

ui.camStart.addEventListener("click", async () => {
  hideError();
  if (await startCamera()) ui.camSnap.focus();
});

// the camera's current frame as a blob, unmirrored (JPEG for live frames: ~10x smaller than PNG)
function grabFrame(type, quality) {
  const v = ui.video;
  if (!v.videoWidth) return Promise.resolve(null);
  const c = document.createElement("canvas");
  c.width = v.videoWidth;
  c.height = v.videoHeight;
  c.getContext("2d").drawImage(v, 0, 0);
  return new Promise((resolve) => c.toBlob(resolve, type, quality));
}

ui.camSnap.addEventListener("click", async () => {
  stopLive();
  const blob = await grabFrame("image/png");
  if (!blob) return;
  ui.video.hidden = true;
  showPreview(blob);
  predict(blob, "camera.png");
});

ui.camStop.addEventListener("click", stopCamera);

function stopCamera() {
  stopLive();
  if (!stream) return;
  for (const t of stream.getTracks()) t.stop();
  stream = null;
  ui.video.srcObject = null;
  ui.video.hidden = ui.camSnap.hidden = ui.camStop.hidden = ui.skeleton.hidden = true;
  ui.stage.classList.remove("mirror");
  ui.camStart.hidden = false;
}

// ---------- live spelling ----------
ui.live.addEventListener("click", () => (live ? stopLive() : startLive()));
ui.clear.addEventListener("click", () => {
  spelledBefore = "";
  if (live) live.clearText();  // the session goes on; what it spelled so far goes
  showSpelled("");
});

const joinText = (a, b) => (a && b ? `${a} ${b}` : a || b);
function showSpelled(text) { ui.spelled.textContent = text.toUpperCase(); }

async function startLive() {
  hideError();
  const model = currentModel();
  if (!model) return;
  ui.live.disabled = true;
  ui.route.hidden = false;
  ui.route.textContent = "Loading the hand model (once)…";
  let browser = null, why = "";
  const [cameraOn] = await Promise.all([startCamera(), loadBrowserRoute(model).then((b) => { browser = b; },
    (e) => { why = e.message; })]);
  ui.live.disabled = false;
  if (!cameraOn || currentModel() !== model) { ui.route.hidden = true; return; }
  ui.route.textContent = browser ? "Live: read in this browser; no frame leaves this device."
    : `Live: frames go to the server (POST /predict, 4 a second at most): the browser cannot read them here (${why})` +
      (readsJandZ(model.labels) ? "; J and Z are read only in the browser." : ".");
  ui.route.dataset.route = browser ? "browser" : "server";
  const labels = model.labels;
  const session = new LiveSession(ui.video, labels, {
    browser,
    serverRead: async () => {
      const blob = await grabFrame("image/jpeg", 0.85);
      if (!blob) return null;
      let r;
      try {
        r = await postPredict(blob, "frame.jpg", model.name, labels.length);  // every label's probability
      } catch (e) {  // a landmark model without a pixel model answers a hand-free frame with a 400
        if (/no hand found/.test(e.message)) return { probs: null, points: null };
        throw e;
      }
      const p = new Map(r.top);
      // no hand (the pixel model's guess at a frame of no hand): nothing for the decoder, as in the browser route
      const none = r.reason === "no hand found";
      return { probs: none ? null : labels.map((l) => p.get(l) ?? 0), points: r.via === "landmarks" ? r.landmarks : null };
    },
    view: {
      frame: showLiveFrame,
      letters: () => showSpelled(joinText(spelledBefore, session.text)),
      error: (e) => { showError(e.message); stopLive(); },
    },
  });
  ui.spellBox.hidden = false;
  ui.live.setAttribute("aria-pressed", "true");
  ui.live.textContent = "Stop spelling";
  ui.status.textContent = "";
  live = session;
  session.start();
}

function stopLive() {
  if (!live) return;
  const session = live;
  session.stop();
  spelledBefore = joinText(spelledBefore, session.text);
  showSpelled(spelledBefore);
  live = null;
  ui.live.setAttribute("aria-pressed", "false");
  ui.live.textContent = "Spell live";
  ui.route.hidden = true;
  ui.skeleton.hidden = true;
}

let lastFps = 0;  // ms: the frames/s line is redrawn 4 times a second, the rest every frame
function showLiveFrame(f) {
  if (!live) return;
  ui.label.textContent = f.letter === null ? "–" : shown(f.letter);
  ui.confidence.hidden = f.letter === null;
  ui.confidence.textContent = f.letter === null ? "" : `${(f.confidence * 100).toFixed(0)}%`;
  drawSkeleton(f.points, ui.video);
  const now = performance.now();
  if (now - lastFps >= 250) {
    lastFps = now;
    ui.fps.textContent = `${f.fps.toFixed(1)} frames/s`;
  }
  if (f.smoothed) {
    const order = f.smoothed.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]).slice(0, 3);
    showTop(order.map(([p, i]) => [live.labels[i], p]));
    ui.status.textContent = `${ui.model.value}: ${shown(f.letter)} (${(f.confidence * 100).toFixed(1)}%, smoothed)`;
  } else {
    ui.top.replaceChildren();
    ui.status.textContent = "No hand in view.";
  }
}

// ---------- draw ----------
const pad = drawingPad(ui.pad);
ui.padClear.addEventListener("click", pad.clear);
ui.predictDrawing.addEventListener("click", () => {
  const m = drawModel();
  ui.pad.toBlob((blob) => predict(blob, "drawing.png", m && m.name), "image/png");
});

loadModels();
