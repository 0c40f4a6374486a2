// handsign page: pick a model, send a photo (file or camera) or a drawing to POST /predict, show the top 3.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  model: $("model"), file: $("file"), preview: $("preview"), video: $("video"), skeleton: $("skeleton"),
  camStart: $("camera-start"), camSnap: $("camera-snap"), camLive: $("camera-live"), camStop: $("camera-stop"),
  liveRate: $("live-rate"),
  pad: $("pad"), predictDrawing: $("predict-drawing"), clear: $("clear"),
  result: $("result"), label: $("label"), top: $("top"), status: $("status"), error: $("error"),
  tabs: { photo: $("tab-photo"), draw: $("tab-draw") }, panes: { photo: $("pane-photo"), draw: $("pane-draw") },
};
let models = [];
let stream = null;      // the camera's MediaStream while it is on
let previewUrl = null;  // object URL of the picture shown, revoked when replaced
let live = null;        // live mode: {timer, busy, frames, since} while the camera keeps predicting

// The bones between MediaPipe's 21 hand landmarks (handsign/hands/landmarks.py BONES).
const BONES = [[0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [5, 9], [9, 10], [10, 11],
  [11, 12], [9, 13], [13, 14], [14, 15], [15, 16], [13, 17], [0, 17], [17, 18], [18, 19], [19, 20]];
const LIVE_INTERVAL_MS = 250;  // at most 4 frames a second, and never two requests at once

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
  return `${m.labels.length} ${kind}`;
}

const isDigitModel = (m) => m && (m.task === "mnist" || (m.preprocess && m.preprocess.fit === "digit"));
const currentModel = () => models.find((m) => m.name === ui.model.value);

// The digit model is meant for drawing, the others for photos: switch the input to match.
function followModel() { selectTab(isDigitModel(currentModel()) ? "draw" : "photo"); }

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
ui.model.addEventListener("change", followModel);

// ---------- predict ----------
// over: the element the skeleton is drawn on (the photo, or the video in live mode)
async function predict(blob, filename, over = ui.preview) {
  const form = new FormData();
  form.append("file", blob, filename);
  const params = new URLSearchParams({ model: ui.model.value, top_k: "3" });
  hideError();
  ui.result.setAttribute("aria-busy", "true");
  if (!live) ui.status.textContent = "Predicting…";
  try {
    const r = await fetch(`/predict?${params}`, { method: "POST", body: form });
    const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
    if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
    showResult(body);
    drawSkeleton(body, over);
  } catch (e) {
    ui.status.textContent = "";
    drawSkeleton(null, over);
    showError(e.message);
  } finally {
    ui.result.setAttribute("aria-busy", "false");
  }
}

// The hand's bones and joints over the picture, in the picture's own pixels (the canvas is stretched
// over the shown picture, so its size is the picture's natural size).
function drawSkeleton(r, over) {
  const c = ui.skeleton;
  const points = r && r.via === "landmarks" ? r.landmarks : null;
  const w = over.videoWidth || over.naturalWidth, h = over.videoHeight || over.naturalHeight;
  if (points && !w && over.tagName === "IMG") {  // the answer came before the picture was decoded
    over.addEventListener("load", () => drawSkeleton(r, over), { once: true });
    return;
  }
  if (!points || !w) { c.hidden = true; return; }
  c.width = w;
  c.height = h;
  const g = c.getContext("2d");
  g.clearRect(0, 0, w, h);
  const unit = Math.max(2, Math.round(Math.max(w, h) / 160));
  g.lineWidth = unit;
  g.strokeStyle = "#39ff88";
  g.beginPath();
  for (const [a, b] of BONES) { g.moveTo(...points[a]); g.lineTo(...points[b]); }
  g.stroke();
  g.fillStyle = "#ff3d7f";
  for (const [x, y] of points) { g.beginPath(); g.arc(x, y, unit * 1.6, 0, 2 * Math.PI); g.fill(); }
  c.hidden = false;
}

function showResult(r) {
  // below the model's confidence floor the page says so, and still lists the top 3
  const sure = r.confident !== false;
  ui.label.textContent = sure ? r.label : "not sure";
  ui.top.replaceChildren(...r.top.map(([label, p]) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = label;
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
  const pct = `${(r.probability * 100).toFixed(1)}%`;
  // which route answered: the hand's landmarks, or the pixels (and why: no hand found...)
  const via = r.via ? ` — via ${r.via}${r.reason ? ` (${r.reason})` : ""}` : "";
  ui.status.textContent = (sure ? `${ui.model.value}: ${r.label} with probability ${pct}`
    : `${ui.model.value}: not sure (best guess ${r.label}, ${pct})`) + via;
}

function showError(message) { ui.error.textContent = message; ui.error.hidden = false; }
function hideError() { ui.error.hidden = true; ui.error.textContent = ""; }

function showPreview(blob) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(blob);
  ui.preview.src = previewUrl;
  ui.preview.hidden = false;
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
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) ui.camStart.hidden = false;

ui.camStart.addEventListener("click", async () => {
  hideError();
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
  } catch (e) {
    showError(`Camera unavailable: ${e.message}`);
    return;
  }
  ui.video.srcObject = stream;
  ui.video.hidden = false;
  ui.preview.hidden = true;
  ui.camStart.hidden = true;
  ui.skeleton.hidden = true;
  ui.camSnap.hidden = ui.camLive.hidden = ui.camStop.hidden = false;
  ui.camSnap.focus();
});

// the camera's current frame as a blob (JPEG for live frames: ~10x smaller than PNG)
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

// Live mode: keep predicting camera frames, one request at a time, a few a second.
ui.camLive.addEventListener("click", () => (live ? stopLive() : startLive()));

function startLive() {
  ui.video.hidden = false;
  ui.preview.hidden = true;
  live = { timer: null, busy: false, frames: 0, since: performance.now() };
  ui.camLive.setAttribute("aria-pressed", "true");
  ui.camLive.textContent = "Stop live";
  ui.liveRate.hidden = false;
  const tick = async () => {
    if (!live) return;
    if (!live.busy) {
      live.busy = true;
      const blob = await grabFrame("image/jpeg", 0.85);
      if (blob && live) await predict(blob, "frame.jpg", ui.video);
      if (live) {
        live.busy = false;
        live.frames += 1;
        const fps = live.frames / ((performance.now() - live.since) / 1000);
        ui.liveRate.textContent = `live: ${live.frames} frames, ${fps.toFixed(1)} per second`;
      }
    }
    if (live) live.timer = setTimeout(tick, LIVE_INTERVAL_MS);
  };
  tick();
}

function stopLive() {
  if (!live) return;
  clearTimeout(live.timer);
  live = null;
  ui.camLive.setAttribute("aria-pressed", "false");
  ui.camLive.textContent = "Live";
  ui.liveRate.hidden = true;
}

ui.camStop.addEventListener("click", stopCamera);

function stopCamera() {
  stopLive();
  if (!stream) return;
  for (const t of stream.getTracks()) t.stop();
  stream = null;
  ui.video.srcObject = null;
  ui.video.hidden = ui.camSnap.hidden = ui.camLive.hidden = ui.camStop.hidden = ui.skeleton.hidden = true;
  ui.camStart.hidden = false;
}

// ---------- draw ----------
// Dark ink on white, like a pen on paper; the server's digit preprocessing inverts it to MNIST's form.
const ctx = ui.pad.getContext("2d");
function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, ui.pad.width, ui.pad.height);
}
clearPad();
ctx.lineWidth = 20;  // canvas pixels of 280: about a pen stroke at MNIST's 28x28 scale
ctx.lineCap = ctx.lineJoin = "round";
ctx.strokeStyle = "#000";

let drawing = false;
const point = (e) => {
  const r = ui.pad.getBoundingClientRect();
  return [(e.clientX - r.left) * (ui.pad.width / r.width), (e.clientY - r.top) * (ui.pad.height / r.height)];
};
ui.pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  ui.pad.setPointerCapture(e.pointerId);
  const [x, y] = point(e);
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x + 0.01, y);  // a click alone leaves a dot
  ctx.stroke();
});
ui.pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const [x, y] = point(e);
  ctx.lineTo(x, y);
  ctx.stroke();
});
for (const type of ["pointerup", "pointercancel"]) ui.pad.addEventListener(type, () => { drawing = false; });

ui.clear.addEventListener("click", clearPad);
ui.predictDrawing.addEventListener("click", () => {
  ui.pad.toBlob((blob) => predict(blob, "drawing.png"), "image/png");
});

loadModels();
