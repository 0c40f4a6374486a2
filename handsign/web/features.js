// Hand landmarks -> the 102 features of handsign/hands/features.py (FEATURES_VERSION 1), and hand_speed, the
// decoder's motion: the same definitions operation for operation, in doubles, so both give the same numbers on
// tests/fixtures/hands/features.json (tests/test_web_features.py runs both). The reasons for each block are in
// features.py's docstring. A point is [x, y, z] in the frame's pixels (z: MediaPipe's normalised z times the frame's
// width); left: the handedness as mediapipe.solutions names it (hands.js says why that is not the Tasks API's).

export const FEATURES_VERSION = 1;
export const WRIST = 0, THUMB_TIP = 4, INDEX_MCP = 5, MIDDLE_MCP = 9, PINKY_MCP = 17;
export const FINGERTIPS = [4, 8, 12, 16, 20];

const TIP_PAIRS = [];  // 10 fingertip-to-fingertip distances, in itertools.combinations order
for (let i = 0; i < FINGERTIPS.length; i++) {
  for (let j = i + 1; j < FINGERTIPS.length; j++) TIP_PAIRS.push([FINGERTIPS[i], FINGERTIPS[j]]);
}
const THUMB_TO = [];  // thumb tip to every other finger's joints: 12
for (let j = 5; j < 21; j++) if (!FINGERTIPS.includes(j)) THUMB_TO.push(j);
const CHAINS = [[0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [0, 9, 10, 11, 12], [0, 13, 14, 15, 16], [0, 17, 18, 19, 20]];
const JOINTS = CHAINS.flatMap((c) => [1, 2, 3].map((i) => [c[i - 1], c[i], c[i + 1]]));  // 15 bend angles

export const BLOCKS = Object.freeze({ points: 60, tip_distances: TIP_PAIRS.length, thumb_distances: THUMB_TO.length,
  bends: JOINTS.length, orientation: 2, palm_normal: 3 });
export const N_FEATURES = Object.values(BLOCKS).reduce((a, b) => a + b, 0);  // 102

const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const norm = (v) => Math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);  // as np.linalg.norm: sqrt of the sum
const dist = (a, b) => norm(sub(a, b));

function checkPoints(points) {
  if (!Array.isArray(points) || points.length !== 21 ||
      !points.every((p) => p.length === 3 && Array.prototype.every.call(p, Number.isFinite))) {
    throw new Error("hand points must be 21 finite [x, y, z]");
  }
}

// The canonical hand: left hands mirrored to right, the wrist at the origin, lengths in palm sizes, turned so the
// wrist -> middle knuckle line points up. Returns {p: 21 [x, y, z], angle: radians turned away}.
export function canonical(points, left) {
  checkPoints(points);
  const p = points.map((q) => [left ? -q[0] : Number(q[0]), Number(q[1]), Number(q[2])]);
  const w = p[WRIST].slice();
  for (const q of p) { q[0] -= w[0]; q[1] -= w[1]; q[2] -= w[2]; }
  const palm = (norm(p[INDEX_MCP]) + norm(p[MIDDLE_MCP]) + norm(p[PINKY_MCP])) / 3;
  const scale = Math.max(palm, 1e-6);
  for (const q of p) { q[0] /= scale; q[1] /= scale; q[2] /= scale; }
  // image y grows downwards: "up" is -y; the angle of the wrist -> middle knuckle line from up, clockwise
  const angle = Math.atan2(p[MIDDLE_MCP][0], -p[MIDDLE_MCP][1]);
  const c = Math.cos(angle), s = Math.sin(angle);
  for (const q of p) {
    const x = q[0], y = q[1];
    q[0] = c * x + s * y;  // turn by -angle: the middle knuckle goes to (0, -|.|)
    q[1] = -s * x + c * y;
  }
  return { p, angle };
}

// Angle at b of the path a-b-c, in radians (pi = straight).
function angleAt(a, b, c) {
  const u = sub(a, b), v = sub(c, b);
  const cos = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / Math.max(norm(u) * norm(v), 1e-9);
  return Math.acos(Math.min(1, Math.max(-1, cos)));
}

// 21 points [x, y, z] in pixels and the left-hand flag -> Float32Array(102), features.py's hand_features.
export function handFeatures(points, left) {
  const { p, angle } = canonical(points, left);
  const out = [];
  for (let j = 1; j < 21; j++) out.push(p[j][0], p[j][1], p[j][2]);
  for (const [a, b] of TIP_PAIRS) out.push(dist(p[a], p[b]));
  for (const j of THUMB_TO) out.push(dist(p[j], p[THUMB_TIP]));
  for (const [a, b, c] of JOINTS) out.push(angleAt(p[a], p[b], p[c]) / Math.PI);
  out.push(Math.sin(angle), Math.cos(angle));
  const i = p[INDEX_MCP], k = p[PINKY_MCP];  // palm facing: its sign flips between palm and back
  const n = [i[1] * k[2] - i[2] * k[1], i[2] * k[0] - i[0] * k[2], i[0] * k[1] - i[1] * k[0]];
  const len = Math.max(norm(n), 1e-9);
  out.push(n[0] / len, n[1] / len, n[2] / len);
  return Float32Array.from(out);
}

// Palm size in pixels: the mean wrist -> index, middle and pinky knuckle distance in 3-D.
export function palmSize(points) {
  return (dist(points[INDEX_MCP], points[WRIST]) + dist(points[MIDDLE_MCP], points[WRIST]) +
          dist(points[PINKY_MCP], points[WRIST])) / 3;
}

// How fast the hand moves between two frames, in palm sizes per second: the shift of the mean of its 21 points in
// the image plane over the mean palm size of the two frames (features.py's hand_speed). 0 when dtMs <= 0.
export function handSpeed(previous, points, dtMs) {
  if (!(dtMs > 0)) return 0.0;
  let ax = 0, ay = 0, bx = 0, by = 0;
  for (let j = 0; j < 21; j++) {
    ax += previous[j][0]; ay += previous[j][1];
    bx += points[j][0]; by += points[j][1];
  }
  const shift = Math.hypot(bx / 21 - ax / 21, by / 21 - ay / 21);
  const palm = Math.max(0.5 * (palmSize(previous) + palmSize(points)), 1e-6);
  return shift / palm / (dtMs / 1000.0);
}
