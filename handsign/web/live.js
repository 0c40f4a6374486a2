// Live spelling: camera frames -> letter probabilities -> the fingerspelling decoder (spell.js) -> letters.
//
// Two routes read a frame. In this browser (the default where it can run): MediaPipe's hand landmarker in
// WebAssembly (hands.js) -> the 102 features (features.js) -> the landmark model (landmark_model.js); no frame
// leaves the device, and every frame the camera delivers is read while the page keeps up. On the server (where
// WebAssembly, the files or the model's weights are missing): a JPEG of the frame to POST /predict, one request at
// a time, at most 4 a second. Either way the decoder gets (ms, probabilities or null, motion in palm sizes/s).
//
// For benchmarks and tests, each frame read dispatches a "handsign-frame" event on document, detail:
// {route, t, latencyMs (frame available -> its letter shown), since ("capture" | "presentation" | "callback": which
// clock `t` is), hand, letter, confidence, labels (26 where the motion reader adds j and z, else 24)}.

import { handFeatures, handSpeed } from "./features.js";
import { createLandmarker, largestHand } from "./hands.js";
import { LandmarkModel } from "./landmark_model.js";
import { MotionReader } from "./motion.js";
import { StreamDecoder } from "./spell.js";

const SERVER_INTERVAL_MS = 250;  // the server route: at most 4 frames a second, never two requests at once
const FPS_WINDOW_MS = 1000;      // frames read per second: counted over the last second

// {landmarker, model} for a served model's entry of GET /models, loaded once per model; throws with the reason
// the page cannot read this model in the browser.
const loaded = new Map();
export function loadBrowserRoute(entry) {
  if (!entry.browser) return Promise.reject(new Error(entry.browser_note || "no in-browser weights"));
  if (!loaded.has(entry.name)) {
    const p = Promise.all([createLandmarker("VIDEO"), LandmarkModel.load(entry.browser), loadMotionModel()])
      .then(([landmarker, model, motion]) => ({ landmarker, model, motion }));
    p.catch(() => loaded.delete(entry.name));  // a failure is retried on the next start
    loaded.set(entry.name, p);
  }
  return loaded.get(entry.name);
}

// The J/Z motion reader's weights (handsign/bundled/motion.json), or null: the page then spells the 24 static
// letters alone (a missing file must not stop live spelling).
const MOTION_URL = "/vendor/motion.json";
async function loadMotionModel() {
  try {
    const r = await fetch(MOTION_URL);
    return r.ok ? await r.json() : null;
  } catch (e) {
    return null;
  }
}

// J and Z are read beside a model of the ASL letters: it has their handshapes (I, Y, D) and no j or z of its own.
export function readsJandZ(labels) {
  return ["i", "y", "d"].every((x) => labels.includes(x)) && !labels.includes("j") && !labels.includes("z");
}

// A running session. read(frameTimeMs) -> Promise<{probs (per label) | null, points | null, left}>;
// view: {frame(info), letters(text), error(e)}. browser: the route's engine or null (server route).
export class LiveSession {
  constructor(video, labels, { browser = null, serverRead = null, view }) {
    this.video = video;
    this.labels = labels;
    this.browser = browser;
    this.serverRead = serverRead;
    this.view = view;
    this.route = browser ? "browser" : "server";
    // in the browser, the motion reader adds j and z (it needs each frame's landmarks and handedness)
    this.motion = browser && browser.motion && readsJandZ(labels) ? new MotionReader(labels, browser.motion) : null;
    if (this.motion) this.labels = this.motion.labels;
    this.decoder = new StreamDecoder(this.labels);
    this.running = false;
    this.times = [];      // ms, frames read within the last FPS_WINDOW_MS
    this.prev = null;     // {t, points} of the last frame with a hand (for the motion)
    this.lastT = -Infinity;
    this.lastTs = -1;     // the landmarker's timestamps must increase strictly
    this.textFrom = 0;    // decoder.text before this index was cleared
  }

  // What this session spelled (since clearText).
  get text() { return this.decoder.text.slice(this.textFrom).trimStart(); }

  clearText() { this.textFrom = this.decoder.text.length; }

  get fps() {
    const n = this.times.length;
    return n < 2 ? 0 : (1000 * (n - 1)) / (this.times[n - 1] - this.times[0]);
  }

  start() {
    this.running = true;
    if (this.browser) this.nextVideoFrame();
    else this.serverTick();
  }

  // Stops reading; returns the letters still held (the decoder's finish).
  stop() {
    this.running = false;
    clearTimeout(this.timer);
    if (this.video.cancelVideoFrameCallback && this.frameHandle) this.video.cancelVideoFrameCallback(this.frameHandle);
    const added = this.decoder.finish();
    this.view.letters(this.text);
    return added;
  }

  // Browser route: one read per frame the camera delivers (requestVideoFrameCallback), or per animation frame.
  nextVideoFrame() {
    if (!this.running) return;
    if (this.video.requestVideoFrameCallback) {
      this.frameHandle = this.video.requestVideoFrameCallback((now, meta) => {
        const since = meta.captureTime ? "capture" : meta.presentationTime ? "presentation" : "callback";
        this.browserFrame(meta.captureTime || meta.presentationTime || now, since);
      });
    } else {
      requestAnimationFrame((now) => this.browserFrame(now, "callback"));
    }
  }

  browserFrame(t, since) {
    if (!this.running) return;
    try {
      if (this.video.readyState >= 2 && this.video.videoWidth) {
        this.readImage(this.video, this.video.videoWidth, this.video.videoHeight, t, since);
      }
    } catch (e) {
      this.view.error(e);
      return;
    }
    this.nextVideoFrame();
  }

  // The browser route on one frame at t (ms): `image` (the video, or any picture the landmarker takes, e.g. an
  // ImageBitmap), width x height pixels -> the landmarker -> the largest hand -> features -> the model -> frame().
  // A method of its own so that tests/test_web_clip_agreement.py feeds a clip through the page's own chain.
  readImage(image, width, height, t, since) {
    const ts = Math.max(Math.round(t), this.lastTs + 1);
    this.lastTs = ts;
    const result = this.browser.landmarker.detectForVideo(image, ts);
    const hand = largestHand(result, width, height);
    const probs = hand ? this.browser.model.probs(handFeatures(hand.points, hand.left)) : null;
    this.frame(t, since, probs, hand && hand.points, hand && hand.left);
  }

  // Server route: a JPEG of the frame to POST /predict, then the next one no sooner than SERVER_INTERVAL_MS.
  async serverTick() {
    if (!this.running) return;
    const t = performance.now();
    try {
      const r = await this.serverRead();
      if (this.running && r) this.frame(t, "callback", r.probs, r.points);
    } catch (e) {
      this.view.error(e);
    }
    if (this.running) this.timer = setTimeout(() => this.serverTick(), Math.max(0, SERVER_INTERVAL_MS - (performance.now() - t)));
  }

  // One frame read: motion, the decoder, the view, the event.
  frame(t, since, probs, points, left = false) {
    t = Math.max(t, this.lastT);  // the decoder's clock must not go back (two clocks across a fallback)
    this.lastT = t;
    if (this.motion) probs = this.motion.push(t, points || null, !!left, probs);  // + j, z; null without a hand
    let motion = null;  // no previous hand: treated as still by the decoder
    if (points && points[0].length === 3 && this.prev) motion = handSpeed(this.prev.points, points, t - this.prev.t);
    if (points) this.prev = { t, points };  // kept across frames without a hand, as LetterStream (stream.py) does
    const added = this.decoder.push(t, probs, motion);
    const now = performance.now();
    this.times.push(now);
    while (this.times.length > 2 && now - this.times[0] > FPS_WINDOW_MS) this.times.shift();
    const s = this.decoder.smoothed;  // what the decoder sees: probabilities smoothed over time
    let k = -1;
    if (s) { k = 0; for (let i = 1; i < s.length; i++) if (s[i] > s[k]) k = i; }
    // left, probs: the hand's handedness (mediapipe.solutions' naming) and this frame's evidence as the decoder got
    // it (with j, z where the motion reader is on)
    const info = { route: this.route, hand: !!points, points, left: !!left, probs, smoothed: s,
                   letter: k < 0 ? null : this.labels[k], confidence: k < 0 ? null : s[k], fps: this.fps, added };
    this.view.frame(info);
    if (added.length) this.view.letters(this.text);
    const latencyMs = performance.now() - t;
    document.dispatchEvent(new CustomEvent("handsign-frame", { detail: {
      route: this.route, t, since, latencyMs, hand: info.hand, letter: info.letter, confidence: info.confidence,
      labels: this.labels.length } }));
  }
}
