// The hand landmarker in the page: MediaPipe Tasks Vision (@mediapipe/tasks-vision 0.10.21, WebAssembly) with the
// wheel's own palm and landmark models, every file served by handsign (handsign/serve/browser.py), none from a CDN.
//
//   const landmarker = await createLandmarker("VIDEO");          // or "IMAGE" (benchmarks/browser_agreement.py)
//   const hand = largestHand(landmarker.detectForVideo(video, tMs), video.videoWidth, video.videoHeight);
//   // -> {points: 21 [x, y, z] in the frame's pixels, left, handedness, score, hands} or null
//
// Handedness: the Tasks API names the real hand of an unmirrored picture ("Right" for a right hand facing the
// camera), mediapipe.solutions (the Python route, whose labels the model was trained with) names the hand as if the
// picture were mirrored ("Left" for that same hand). Swapped, the two agree on every one of the 322 Massey photos
// where both find a hand (benchmarks/browser_agreement.py). So `left` follows solutions: left = (Tasks says "Right").
// The frames go in unmirrored, as a photo (docs/spell.md).

export const VENDOR = "/vendor/tasks-vision";
export const TASK_URL = "/vendor/hand_landmarker.task";
// as the Python route's first attempt (handsign/hands/landmarks.py ATTEMPTS[0]): the full models, confidence 0.5.
// One hand, where Python looks for 2 and keeps the largest: with 2, VIDEO mode runs the palm detector on every frame
// looking for the second hand (12.5 frames/s against 16.8 with 1, benchmarks/browser_speed.py on a loaded 2-core CPU)
export const OPTIONS = Object.freeze({ numHands: 1, minHandDetectionConfidence: 0.5, minHandPresenceConfidence: 0.5,
  minTrackingConfidence: 0.5 });

// A HandLandmarker in runningMode "VIDEO" (tracks from frame to frame) or "IMAGE"; throws, saying what is
// missing, where the browser or the server cannot run it (the page then uses the server route).
export async function createLandmarker(runningMode = "VIDEO") {
  if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
  let vision;
  try {
    vision = await import(`${VENDOR}/vision_bundle.mjs`);
  } catch (e) {
    throw new Error(`MediaPipe Tasks Vision is not served here (${e.message}); run \`make install\``);
  }
  const fileset = await vision.FilesetResolver.forVisionTasks(`${VENDOR}/wasm`);
  return vision.HandLandmarker.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: TASK_URL, delegate: "CPU" }, runningMode, ...OPTIONS });
}

// The Tasks API's label -> the one the features and the model expect (mediapipe.solutions' naming, see above).
export const solutionsHandedness = (tasksLabel) => (tasksLabel === "Right" ? "Left" : "Right");

// A HandLandmarkerResult -> the largest hand (bounding-box area, as landmarks.py's detect) in pixels, or null.
export function largestHand(result, width, height) {
  const all = result.landmarks || [];
  let best = null;
  all.forEach((marks, i) => {
    const points = marks.map((q) => [q.x * width, q.y * height, q.z * width]);  // z scales with x
    const xs = points.map((q) => q[0]), ys = points.map((q) => q[1]);
    const extent = (Math.max(...xs) - Math.min(...xs)) * (Math.max(...ys) - Math.min(...ys));
    const category = ((result.handedness || result.handednesses || [])[i] || [])[0] || {};
    const handedness = solutionsHandedness(category.categoryName);
    if (best === null || extent > best.extent) {
      best = { extent, points, handedness, left: handedness === "Left", score: category.score ?? 0, hands: all.length };
    }
  });
  return best;
}
