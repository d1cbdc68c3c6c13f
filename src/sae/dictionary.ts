// Dictionaries: how a site's activation x is written as sparse features plus an error term.
//
//   f = act(W_E (x - b_D) + b_E)        (b_D is not subtracted when centerInput is false)
//   x̂ = W_D f + b_D,   ε = x - x̂
//
// Decoder directions are stored as rows ([F, d]) so decoding is one row-major GEMM and a
// feature's direction is a contiguous slice. For a metric m with gradient g = ∂m/∂x at the site,
// ∂m/∂f = W_Dᵀ g (featureGradient) and ∂m/∂ε = g, because x = W_D f + b_D + ε.
//
// Dims: N rows (tokens), d input width (dIn), F dictionary width.

import { matmul } from '../kernels/gemm.ts';
import { decodeBF16, decodeF16, encodeBF16, encodeF16 } from '../io/float16.ts';

/**
 * How an SAE's encoder and decoder matrices are held in memory: float32, or half precision
 * (bfloat16 / IEEE float16 bits in a Uint16Array, half the bytes) converted to float32 one block
 * of rows at a time before each product. Biases and thresholds stay float32.
 */
export type WeightDtype = 'f32' | 'bf16' | 'f16';
export const WEIGHT_DTYPES: readonly WeightDtype[] = ['f32', 'bf16', 'f16'];

export type ActivationKind = 'relu' | 'jumprelu' | 'topk';
export type DictionaryKind = ActivationKind | 'identity';

export interface DictionaryOutput {
  features: Float32Array; // [N*F]
  reconstruction: Float32Array; // [N*d]
  error: Float32Array; // [N*d]
}

/** run's features (as CSR) and error, without its dense [N, F] and reconstruction outputs. */
export interface SparseDictionaryOutput {
  features: SparseRows;
  error: Float32Array; // [N*d]
}

/** What every consumer (circuits, attribution, metrics) needs from a dictionary. */
export interface Dictionary {
  readonly site: string;
  /** d: width of the site's activation. */
  readonly dIn: number;
  /** F: number of features. */
  readonly width: number;
  readonly kind: DictionaryKind;
  /** x [N*d] -> f [N*F]; `out` is reused when given. */
  encode(x: Float32Array, N: number, out?: Float32Array): Float32Array;
  /** f [N*F] -> x̂ [N*d]; takes a sparse path when few features are active. */
  decode(f: Float32Array, N: number, out?: Float32Array): Float32Array;
  run(x: Float32Array, N: number): DictionaryOutput;
  /** Equal to run's features and error; cheaper when few features are active. */
  runSparse(x: Float32Array, N: number): SparseDictionaryOutput;
  /** g [N*d] (∂m/∂x) -> ∂m/∂f [N*F]: W_Dᵀ g per row, i.e. g times the transposed [F, d] decoder rows. */
  featureGradient(g: Float32Array, N: number, out?: Float32Array): Float32Array;
  /** Feature i's unit decoder direction [d] (a view for SAEs; do not modify). */
  decoderRow(i: number): Float32Array;
}

export interface SaeParams {
  site: string;
  kind: ActivationKind;
  dIn: number;
  width: number;
  /** W_E [F, d] (rows: one feature's encoder direction); Uint16Array when dtype is bf16 or f16. */
  encoder: Float32Array | Uint16Array;
  encoderBias: Float32Array; // b_E [F]
  /** W_D as rows [F, d]; Uint16Array when dtype is bf16 or f16. */
  decoder: Float32Array | Uint16Array;
  decoderBias: Float32Array; // b_D [d]
  threshold?: Float32Array; // [F], jumprelu only
  k?: number; // topk only
  /** Subtract b_D from x before encoding (SAELens apply_b_dec_to_input); default true. */
  centerInput?: boolean;
  /** How encoder and decoder are held; default f32. */
  dtype?: WeightDtype;
}

// Rows of a half-precision matrix converted per product: about 4 MiB of float32 at a time.
const BLOCK_FLOATS = 1 << 20;
let blockRows = new Float32Array(0); // a converted block [Fb, d]
let blockOut = new Float32Array(0); // a product with it [N, Fb]

// Below this fraction of non-zero features, decoding sums the active rows instead of a dense GEMM
// (the GEMM runs ~30x faster per multiply-add than a JS loop, so the break-even is a few percent).
const SPARSE_DECODE_DENSITY = 1 / 32;

// runSparse's scratch, shared by every SAE (used only within one synchronous call): the [N, F]
// pre-activations and the growing CSR entries.
let scratchPre = new Float32Array(0);
let scratchIndex = new Int32Array(0);
let scratchValue = new Float32Array(0);

export class SparseAutoencoder implements Dictionary {
  readonly site: string;
  readonly kind: ActivationKind;
  readonly dIn: number;
  readonly width: number;
  readonly dtype: WeightDtype;
  /** W_E or W_D as stored: float32, or half-precision bits. */
  private readonly encoderStore: Float32Array | Uint16Array;
  private readonly decoderStore: Float32Array | Uint16Array;
  readonly encoderBias: Float32Array;
  readonly decoderBias: Float32Array;
  readonly threshold: Float32Array | undefined;
  readonly k: number | undefined;
  readonly centerInput: boolean;
  private centered = new Float32Array(0); // scratch [N*d]

  constructor(p: SaeParams) {
    const { dIn: d, width: F } = p;
    const where = `SAE for site ${p.site}`;
    if (!Number.isInteger(d) || d <= 0 || !Number.isInteger(F) || F <= 0)
      throw new Error(`${where}: invalid size d ${d}, F ${F}`);
    const dtype = p.dtype ?? 'f32';
    if (!WEIGHT_DTYPES.includes(dtype))
      throw new Error(`${where}: dtype must be one of ${WEIGHT_DTYPES.join(', ')}, got ${dtype}`);
    const check = (
      name: string,
      a: Float32Array | Uint16Array | undefined,
      n: number,
      shape: string,
    ) => {
      if ((name === 'encoder' || name === 'decoder') && a)
        if ((dtype === 'f32') !== a instanceof Float32Array)
          throw new Error(
            `${where}: ${name} must be a ${dtype === 'f32' ? 'Float32Array' : `Uint16Array of ${dtype} bits`}`,
          );
      if (!a || a.length !== n)
        throw new Error(
          `${where}: ${name} has ${a?.length ?? 'no'} values, expected ${shape} = ${n}`,
        );
    };
    check('encoder', p.encoder, F * d, `[${F}, ${d}]`);
    check('encoderBias', p.encoderBias, F, `[${F}]`);
    check('decoder', p.decoder, F * d, `[${F}, ${d}]`);
    check('decoderBias', p.decoderBias, d, `[${d}]`);
    if (p.kind === 'jumprelu') check('threshold', p.threshold, F, `[${F}]`);
    if (p.kind === 'topk' && !(Number.isInteger(p.k) && p.k! >= 1 && p.k! <= F))
      throw new Error(`${where}: topk needs an integer k in 1..${F}, got ${p.k}`);
    this.site = p.site;
    this.kind = p.kind;
    this.dIn = d;
    this.width = F;
    this.dtype = dtype;
    this.encoderStore = p.encoder;
    this.encoderBias = p.encoderBias;
    this.decoderStore = p.decoder;
    this.decoderBias = p.decoderBias;
    this.threshold = p.kind === 'jumprelu' ? p.threshold : undefined;
    this.k = p.kind === 'topk' ? p.k : undefined;
    this.centerInput = p.centerInput ?? true;
  }

  /** W_E [F, d] in float32 (a float32 dictionary only: products on a half one go per block). */
  get encoder(): Float32Array {
    return this.float32(this.encoderStore, 'encoder');
  }

  /** W_D [F, d] in float32 (a float32 dictionary only). */
  get decoder(): Float32Array {
    return this.float32(this.decoderStore, 'decoder');
  }

  private float32(store: Float32Array | Uint16Array, name: string): Float32Array {
    if (store instanceof Float32Array) return store;
    throw new Error(
      `${this.site}: the dictionary is held in ${this.dtype}, and this needs its float32 ${name} ` +
        '(load it in f32: without --dtype)',
    );
  }

  /** Bytes of its encoder and decoder as held. */
  get weightBytes(): number {
    return this.encoderStore.byteLength + this.decoderStore.byteLength;
  }

  /** Rows i0..i1-1 of a stored [F, d] matrix in float32: a view when float32, else converted. */
  private rows(store: Float32Array | Uint16Array, i0: number, i1: number, out?: Float32Array) {
    const d = this.dIn;
    if (store instanceof Float32Array) return store.subarray(i0 * d, i1 * d);
    const n = (i1 - i0) * d;
    if (!out) {
      if (blockRows.length < n) blockRows = new Float32Array(n);
      out = blockRows;
    }
    const view = out.subarray(0, n);
    (this.dtype === 'bf16' ? decodeBF16 : decodeF16)(store.subarray(i0 * d, i1 * d), view);
    return view;
  }

  /** Features per converted block of a half-precision matrix. */
  private get blockSize(): number {
    return Math.max(1, Math.floor(BLOCK_FLOATS / this.dIn));
  }

  /** out [N, F] = a [N, d] · Wᵀ for a stored W [F, d]. */
  private timesRowsT(
    store: Float32Array | Uint16Array,
    a: Float32Array,
    N: number,
    out: Float32Array,
  ) {
    const { dIn: d, width: F } = this;
    if (store instanceof Float32Array) return matmul(a, store, out, N, F, d, { transB: true });
    const Fb = this.blockSize;
    for (let i0 = 0; i0 < F; i0 += Fb) {
      const i1 = Math.min(F, i0 + Fb);
      const w = i1 - i0;
      if (blockOut.length < N * w) blockOut = new Float32Array(N * Fb);
      const part = blockOut.subarray(0, N * w);
      matmul(a, this.rows(store, i0, i1), part, N, w, d, { transB: true });
      for (let n = 0; n < N; n++) out.set(part.subarray(n * w, (n + 1) * w), n * F + i0);
    }
  }

  /** out [N, d] = f [N, F] · W for a stored W [F, d]. */
  private timesRows(
    store: Float32Array | Uint16Array,
    f: Float32Array,
    N: number,
    out: Float32Array,
  ) {
    const { dIn: d, width: F } = this;
    if (store instanceof Float32Array) return matmul(f, store, out, N, d, F);
    const Fb = this.blockSize;
    for (let i0 = 0; i0 < F; i0 += Fb) {
      const i1 = Math.min(F, i0 + Fb);
      const w = i1 - i0;
      if (blockOut.length < N * w) blockOut = new Float32Array(N * Fb);
      const part = blockOut.subarray(0, N * w);
      for (let n = 0; n < N; n++) part.set(f.subarray(n * F + i0, n * F + i1), n * w);
      matmul(part, this.rows(store, i0, i1), out, N, d, w, { accumulate: i0 > 0 });
    }
  }

  /** x [N*d] -> pre-activations z = W_E (x - b_D) + b_E, [N*F]. */
  preActivations(x: Float32Array, N: number, out?: Float32Array): Float32Array {
    const F = this.width;
    const pre = this.encoderProduct(x, N, out ?? new Float32Array(N * F));
    const bE = this.encoderBias;
    for (let n = 0; n < N; n++) {
      const row = n * F;
      for (let i = 0; i < F; i++) pre[row + i] += bE[i];
    }
    return pre;
  }

  /** x [N*d] -> W_E (x - b_D) [N*F], without b_E. */
  private encoderProduct(x: Float32Array, N: number, pre: Float32Array): Float32Array {
    const d = this.dIn;
    checkRows(x, N, d, `${this.site}: encode input`);
    let input = x;
    if (this.centerInput) {
      if (this.centered.length < N * d) this.centered = new Float32Array(N * d);
      input = this.centered.subarray(0, N * d);
      const b = this.decoderBias;
      for (let n = 0; n < N; n++) {
        const row = n * d;
        for (let j = 0; j < d; j++) input[row + j] = x[row + j] - b[j];
      }
    }
    this.timesRowsT(this.encoderStore, input, N, pre);
    return pre;
  }

  /** Applies the activation in place: z [N*F] -> f [N*F]. */
  activate(z: Float32Array, N: number): Float32Array {
    const F = this.width;
    if (this.kind === 'relu') {
      for (let i = 0; i < N * F; i++) if (!(z[i] > 0)) z[i] = 0;
    } else if (this.kind === 'jumprelu') {
      // SAELens: relu(z) · 1[z > θ]
      const th = this.threshold!;
      for (let n = 0; n < N; n++) {
        const row = n * F;
        for (let i = 0; i < F; i++) if (!(z[row + i] > th[i] && z[row + i] > 0)) z[row + i] = 0;
      }
    } else {
      topKRows(z, N, F, this.k!);
    }
    return z;
  }

  encode(x: Float32Array, N: number, out?: Float32Array): Float32Array {
    return this.activate(this.preActivations(x, N, out), N);
  }

  decode(f: Float32Array, N: number, out?: Float32Array): Float32Array {
    const { dIn: d, width: F } = this;
    checkRows(f, N, F, `${this.site}: decode input`);
    const xHat = out ?? new Float32Array(N * d);
    let nonzero = 0;
    for (let i = 0; i < N * F; i++) if (f[i] !== 0) nonzero++;
    const b = this.decoderBias;
    if (nonzero < N * F * SPARSE_DECODE_DENSITY) {
      const half = !(this.decoderStore instanceof Float32Array);
      const row = half ? new Float32Array(d) : null;
      for (let n = 0; n < N; n++) {
        const o = n * d;
        xHat.set(b, o);
        for (let i = 0; i < F; i++) {
          const a = f[n * F + i];
          if (a === 0) continue;
          // A half-precision row is converted first; a float32 one read in place.
          const W = row ? this.rows(this.decoderStore, i, i + 1, row) : this.decoder;
          const r = row ? 0 : i * d;
          for (let j = 0; j < d; j++) xHat[o + j] += a * W[r + j];
        }
      }
    } else {
      this.timesRows(this.decoderStore, f, N, xHat);
      for (let n = 0; n < N; n++) {
        const o = n * d;
        for (let j = 0; j < d; j++) xHat[o + j] += b[j];
      }
    }
    return xHat;
  }

  run(x: Float32Array, N: number): DictionaryOutput {
    const features = this.encode(x, N);
    const reconstruction = this.decode(features, N);
    const error = new Float32Array(N * this.dIn);
    for (let i = 0; i < error.length; i++) error[i] = x[i] - reconstruction[i];
    return { features, reconstruction, error };
  }

  runSparse(x: Float32Array, N: number): SparseDictionaryOutput {
    const { dIn: d, width: F } = this;
    if (scratchPre.length < N * F) scratchPre = new Float32Array(N * F);
    const z = scratchPre.subarray(0, N * F);
    // relu and jumprelu: bias, activation and CSR in one pass over [N, F] (same float32 values
    // as encode); topk needs whole rows first.
    const features =
      this.kind === 'topk'
        ? toSparseRows(this.encode(x, N, z), N, F)
        : this.activeFeatures(this.encoderProduct(x, N, z), N);
    const { rowStart, index, value } = features;
    const error = new Float32Array(N * d);
    if (index.length < N * F * SPARSE_DECODE_DENSITY) {
      // decode's sparse path over the CSR: the same sums in the same order.
      const row = this.decoderStore instanceof Float32Array ? null : new Float32Array(d);
      const xHat = new Float32Array(d);
      for (let n = 0; n < N; n++) {
        xHat.set(this.decoderBias);
        for (let e = rowStart[n]; e < rowStart[n + 1]; e++) {
          const a = value[e];
          const W = row ? this.rows(this.decoderStore, index[e], index[e] + 1, row) : this.decoder;
          const r = row ? 0 : index[e] * d;
          for (let j = 0; j < d; j++) xHat[j] += a * W[r + j];
        }
        for (let j = 0; j < d; j++) error[n * d + j] = x[n * d + j] - xHat[j];
      }
    } else {
      z.fill(0);
      for (let n = 0; n < N; n++)
        for (let e = rowStart[n]; e < rowStart[n + 1]; e++) z[n * F + index[e]] = value[e];
      const xHat = this.decode(z, N);
      for (let i = 0; i < N * d; i++) error[i] = x[i] - xHat[i];
    }
    return { features, error };
  }

  /** z = W_E (x - b_D) [N*F] -> CSR of act(z + b_E) (relu or jumprelu). */
  private activeFeatures(z: Float32Array, N: number): SparseRows {
    const F = this.width;
    const bE = this.encoderBias;
    const th = this.threshold;
    const rowStart = new Int32Array(N + 1);
    // Locals, not closures or module variables, in the hot loop: V8 keeps them in registers.
    let index = scratchIndex;
    let value = scratchValue;
    let e = 0;
    for (let n = 0; n < N; n++) {
      rowStart[n] = e;
      const row = n * F;
      for (let i = 0; i < F; i++) {
        const v = Math.fround(z[row + i] + bE[i]);
        if (!(v > 0) || (th !== undefined && !(v > th[i]))) continue;
        if (e === index.length) {
          index = grown(index, new Int32Array(Math.max(1024, 2 * e)));
          value = grown(value, new Float32Array(index.length));
        }
        index[e] = i;
        value[e++] = v;
      }
    }
    rowStart[N] = e;
    scratchIndex = index;
    scratchValue = value;
    return { rowStart, index: index.slice(0, e), value: value.slice(0, e) };
  }

  featureGradient(g: Float32Array, N: number, out?: Float32Array): Float32Array {
    const { dIn: d, width: F } = this;
    checkRows(g, N, d, `${this.site}: featureGradient input`);
    const dF = out ?? new Float32Array(N * F);
    this.timesRowsT(this.decoderStore, g, N, dF);
    return dF;
  }

  /** A view for a float32 dictionary, a fresh float32 copy for a half-precision one. */
  decoderRow(i: number): Float32Array {
    checkFeature(i, this.width, this.site);
    return this.rows(
      this.decoderStore,
      i,
      i + 1,
      this.half ? new Float32Array(this.dIn) : undefined,
    );
  }

  /** Feature i's encoder direction [d] (a view or a copy, as decoderRow). */
  encoderRow(i: number): Float32Array {
    checkFeature(i, this.width, this.site);
    return this.rows(
      this.encoderStore,
      i,
      i + 1,
      this.half ? new Float32Array(this.dIn) : undefined,
    );
  }

  private get half(): boolean {
    return this.dtype !== 'f32';
  }

  /**
   * The same dictionary with its encoder and decoder held in `dtype` (rounded to nearest, ties
   * to even); itself when it already is. Only from float32.
   */
  inPrecision(dtype: WeightDtype): SparseAutoencoder {
    if (dtype === this.dtype) return this;
    if (this.half)
      throw new Error(`${this.site}: converts from f32 only, the dictionary is ${this.dtype}`);
    const convert = (w: Float32Array) => {
      const bits = new Uint16Array(w.length);
      if (dtype === 'bf16') encodeBF16(w, bits);
      else encodeF16(w, bits);
      // float16 tops out at 65504: a larger weight would become infinite, not approximate.
      if (dtype === 'f16')
        for (let i = 0; i < bits.length; i++)
          if ((bits[i] & 0x7c00) === 0x7c00 && Number.isFinite(w[i]))
            throw new Error(
              `${this.site}: weight ${w[i]} is outside float16's range (|x| <= 65504); use --dtype bf16`,
            );
      return bits;
    };
    const { site, kind, dIn, width, encoderBias, decoderBias, threshold, k, centerInput } = this;
    return new SparseAutoencoder({
      ...{ site, kind, dIn, width, encoderBias, decoderBias, threshold, k, centerInput },
      encoder: convert(this.encoder),
      decoder: convert(this.decoder),
      dtype,
    });
  }

  /**
   * Rescales every decoder row to unit norm and scales the matching encoder row, encoder bias and
   * threshold by the same norm: reconstructions are unchanged, feature i's magnitude is multiplied
   * by its old decoder norm. Not for topk (rescaling would change which k features win).
   * Returns the old norms [F].
   */
  normalizeDecoder(): Float32Array {
    if (this.kind === 'topk')
      throw new Error(`${this.site}: a topk dictionary cannot be renormalised without changing it`);
    const { dIn: d, width: F } = this;
    const norms = new Float32Array(F);
    for (let i = 0; i < F; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += this.decoder[i * d + j] ** 2;
      const n = Math.sqrt(s);
      norms[i] = n;
      if (n === 0) continue; // an unused feature: leave it (it decodes to nothing either way)
      for (let j = 0; j < d; j++) {
        this.decoder[i * d + j] /= n;
        this.encoder[i * d + j] *= n;
      }
      this.encoderBias[i] *= n;
      if (this.threshold) this.threshold[i] *= n;
    }
    return norms;
  }
}

/** Features are the raw dimensions: encode and decode copy, the error is always zero. */
export class IdentityDictionary implements Dictionary {
  readonly kind = 'identity' as const;
  readonly width: number;
  constructor(
    readonly site: string,
    readonly dIn: number,
  ) {
    this.width = dIn;
  }

  encode(x: Float32Array, N: number, out?: Float32Array): Float32Array {
    checkRows(x, N, this.dIn, `${this.site}: encode input`);
    const f = out ?? new Float32Array(N * this.dIn);
    f.set(x.subarray(0, N * this.dIn));
    return f;
  }

  decode(f: Float32Array, N: number, out?: Float32Array): Float32Array {
    return this.encode(f, N, out);
  }

  run(x: Float32Array, N: number): DictionaryOutput {
    return {
      features: this.encode(x, N),
      reconstruction: this.encode(x, N),
      error: new Float32Array(N * this.dIn),
    };
  }

  runSparse(x: Float32Array, N: number): SparseDictionaryOutput {
    checkRows(x, N, this.dIn, `${this.site}: encode input`);
    return { features: toSparseRows(x, N, this.dIn), error: new Float32Array(N * this.dIn) };
  }

  featureGradient(g: Float32Array, N: number, out?: Float32Array): Float32Array {
    return this.encode(g, N, out);
  }

  decoderRow(i: number): Float32Array {
    checkFeature(i, this.width, this.site);
    const e = new Float32Array(this.dIn);
    e[i] = 1;
    return e;
  }
}

function grown<A extends Int32Array | Float32Array>(old: A, bigger: A): A {
  bigger.set(old);
  return bigger;
}

/** Compressed sparse rows of a mostly-zero [N, F] feature matrix. */
export interface SparseRows {
  rowStart: Int32Array; // [N+1]: row n's entries are rowStart[n] .. rowStart[n+1]-1
  index: Int32Array; // feature ids
  value: Float32Array;
}

// f [N*F] -> CSR
export function toSparseRows(f: Float32Array, N: number, F: number): SparseRows {
  let nnz = 0;
  for (let i = 0; i < N * F; i++) if (f[i] !== 0) nnz++;
  const rowStart = new Int32Array(N + 1);
  const index = new Int32Array(nnz);
  const value = new Float32Array(nnz);
  let e = 0;
  for (let n = 0; n < N; n++) {
    rowStart[n] = e;
    for (let i = 0; i < F; i++) {
      const v = f[n * F + i];
      if (v !== 0) {
        index[e] = i;
        value[e++] = v;
      }
    }
  }
  rowStart[N] = e;
  return { rowStart, index, value };
}

/**
 * In place, per row of z [N*F]: keep the k largest values (ties: lower index wins), ReLU them,
 * zero the rest (SAELens TopK: top-k first, then ReLU).
 */
export function topKRows(z: Float32Array, N: number, F: number, k: number): void {
  const heap = new Int32Array(k); // min-heap of feature ids by value: the k largest seen so far
  const kept = new Float32Array(k);
  let base = 0; // offset of the current row
  // "a ranks below b": smaller value, or equal value and larger index.
  const below = (a: number, b: number) =>
    z[base + a] < z[base + b] || (z[base + a] === z[base + b] && a > b);
  const siftDown = (start: number) => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < k && below(heap[l], heap[m])) m = l;
      if (r < k && below(heap[r], heap[m])) m = r;
      if (m === i) return;
      const t = heap[i];
      heap[i] = heap[m];
      heap[m] = t;
      i = m;
    }
  };
  for (let n = 0; n < N; n++) {
    base = n * F;
    for (let i = 0; i < k; i++) heap[i] = i;
    for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i);
    for (let i = k; i < F; i++) {
      if (below(heap[0], i)) {
        heap[0] = i;
        siftDown(0);
      }
    }
    for (let j = 0; j < k; j++) kept[j] = Math.max(0, z[base + heap[j]]);
    z.fill(0, base, base + F);
    for (let j = 0; j < k; j++) z[base + heap[j]] = kept[j];
  }
}

function checkRows(a: Float32Array, N: number, width: number, what: string): void {
  if (!Number.isInteger(N) || N < 0 || a.length < N * width)
    throw new Error(
      `${what}: has ${a.length} values, expected N*${width} = ${N * width} for N = ${N}`,
    );
}

function checkFeature(i: number, F: number, site: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= F)
    throw new Error(`${site}: feature ${i} out of range 0..${F - 1}`);
}
