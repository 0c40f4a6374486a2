// The drawing pad: a digit drawn with the mouse, a pen or a finger (pointer events), dark ink on white like a pen
// on paper; the server's digit preprocessing inverts it to MNIST's form.
export function drawingPad(canvas) {
  const ctx = canvas.getContext("2d");
  function clearPad() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  clearPad();
  ctx.lineWidth = 20;  // canvas pixels of 280: about a pen stroke at MNIST's 28x28 scale
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.strokeStyle = "#000";

  let drawing = false;
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true;
    canvas.setPointerCapture(e.pointerId);
    const [x, y] = point(e);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 0.01, y);  // a click alone leaves a dot
    ctx.stroke();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = point(e);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, () => { drawing = false; });
  return { clear: clearPad };
}
