// The landmark model in the page: features (102) -> standardise -> [Linear -> ReLU] * hidden -> Linear -> softmax,
// a few matrix products in plain JavaScript over the weights handsign serves at GET /models/{name}/weights
// (handsign/infer/browser_model.py writes them: a safetensors file of float32 tensors). In doubles; the Python
// model runs in float32, so probabilities agree to ~1e-6 (tests/test_web_features.py).

const MAX_HEADER = 1 << 20;  // bytes; the weights' header is a few hundred

// A safetensors file (ArrayBuffer) -> {metadata, tensors: {name: {shape, data: Float32Array}}}; F32 only.
export function parseSafetensors(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength < 8) throw new Error("weights: too short to be a safetensors file");
  const n = Number(view.getBigUint64(0, true));
  if (n > MAX_HEADER || 8 + n > buffer.byteLength) throw new Error("weights: not a safetensors file");
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n)));
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [start, end] = t.data_offsets;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.dtype !== "F32" || end - start !== 4 * count || 8 + n + end > buffer.byteLength) {
      throw new Error(`weights: tensor ${name} is not ${count} float32 values`);
    }
    // a copy: the data may not be 4-byte aligned in the file (little-endian, as safetensors and x86/ARM)
    const data = new Float32Array(buffer.slice(8 + n + start, 8 + n + end));
    tensors[name] = { shape: t.shape, data };
  }
  return { metadata: header.__metadata__ || {}, tensors };
}

export class LandmarkModel {
  // weights: parseSafetensors' result for the handsign-landmark-mlp format.
  constructor({ metadata, tensors }) {
    if (metadata.format !== "handsign-landmark-mlp") throw new Error(`weights: format ${metadata.format}`);
    this.labels = JSON.parse(metadata.labels);
    this.featuresVersion = Number(metadata.features);
    this.mean = tensors.mean.data;
    this.std = tensors.std.data;
    this.layers = [];
    let width = this.mean.length;
    for (let i = 0; i < Number(metadata.layers); i++) {
      const w = tensors[`layers.${i}.weight`], b = tensors[`layers.${i}.bias`];
      if (!w || !b || w.shape[1] !== width || b.shape[0] !== w.shape[0]) throw new Error(`weights: layer ${i}`);
      this.layers.push({ w: w.data, b: b.data, out: w.shape[0], in: width });
      width = w.shape[0];
    }
    if (width !== this.labels.length) throw new Error("weights: outputs and labels differ");
  }

  static async load(url) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return new LandmarkModel(parseSafetensors(await r.arrayBuffer()));
  }

  get inFeatures() { return this.mean.length; }

  // features (102 numbers) -> Float64Array of probabilities over this.labels.
  probs(features) {
    if (features.length !== this.mean.length) throw new Error(`need ${this.mean.length} features`);
    let x = Float64Array.from(features, (v, i) => (v - this.mean[i]) / this.std[i]);
    this.layers.forEach(({ w, b, out, in: n }, l) => {
      const y = new Float64Array(out);
      for (let o = 0; o < out; o++) {  // y = W x + b, W row-major (out, in) as torch's Linear
        let s = b[o];
        const row = o * n;
        for (let i = 0; i < n; i++) s += w[row + i] * x[i];
        y[o] = l < this.layers.length - 1 && s < 0 ? 0 : s;  // ReLU between layers, not after the last
      }
      x = y;
    });
    let max = -Infinity;
    for (const v of x) max = Math.max(max, v);
    let sum = 0;
    const p = x.map((v) => { const e = Math.exp(v - max); sum += e; return e; });
    return p.map((v) => v / sum);
  }
}
