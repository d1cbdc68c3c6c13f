// Element-wise sums of float32 values that are exact, so that any grouping of the terms (a single
// run, or shards merged in any order) gives the same bits. Mean ablation needs this: its means are
// rounded to float32, and a float64 sum reassociated across shards could move one by a float32
// step, which moves every score far beyond 1e-9.
//
// A float32 x with biased exponent e (0..254) is an integer multiple of 2^(e-150) below 2^(e-126).
// Bin j (0..8) holds multiples of U_j = 2^(32j-150). x, with j = e >> 5, is split into
// hi = trunc(x / U_{j+1}) * U_{j+1} (bin j+1, below 2^23 U_{j+1}) and lo = x - hi (bin j, below
// 2^32 U_j); both are exact. Each term puts at most one part below 2^32 U_j into bin j, so n terms
// keep the bin an integer multiple of U_j below n * 2^32 U_j: exact in float64 while n <= 2^21.
// Bins are allocated when first touched (activations usually span two or three).

const BINS = 9;
/** Terms per element before a bin could round: 2^53 / 2^32. */
export const MAX_EXACT_TERMS = 2 ** 21;
const UNIT = Array.from({ length: BINS }, (_, j) => 2 ** (32 * j - 150));
const INV_UNIT = UNIT.map((u) => 1 / u);

export class ExactSums {
  /** Bin j of every element, null until a term touches it. */
  readonly bins: (Float64Array | null)[] = new Array<Float64Array | null>(BINS).fill(null);

  constructor(readonly length: number) {}

  private bin(j: number): Float64Array {
    return (this.bins[j] ??= new Float64Array(this.length));
  }

  /**
   * Adds values[k] to element at + k for every k (values are float32, so every term is exact);
   * `bits` is the same memory viewed as Uint32 (for the exponents).
   */
  addFloat32(at: number, values: Float32Array, bits: Uint32Array, from: number, count: number) {
    for (let k = 0; k < count; k++) {
      const x = values[from + k];
      if (x === 0) continue;
      const e = (bits[from + k] >>> 23) & 0xff;
      if (e === 0xff) throw new Error(`exact sum: a term is ${x} (not finite)`);
      const j = e >>> 5;
      const hi = Math.trunc(x * INV_UNIT[j + 1]) * UNIT[j + 1];
      if (hi !== 0) this.bin(j + 1)[at + k] += hi;
      this.bin(j)[at + k] += x - hi;
    }
  }

  /** Adds another ExactSums of the same length (exact: both hold integer multiples per bin). */
  addSums(other: ExactSums): void {
    if (other.length !== this.length)
      throw new Error(`exact sum: lengths ${this.length} and ${other.length} differ`);
    other.bins.forEach((src, j) => {
      if (!src) return;
      const dst = this.bin(j);
      for (let i = 0; i < src.length; i++) dst[i] += src[i];
    });
  }

  /** The sum at element i as a float64 (bins added from the lowest, the same bits every time). */
  value(i: number): number {
    let s = 0;
    for (const b of this.bins) if (b) s += b[i];
    return s;
  }

  /** Bins as base64 of little-endian float64 (null for untouched bins). */
  toJSON(): { length: number; bins: (string | null)[] } {
    return {
      length: this.length,
      bins: this.bins.map((b) =>
        b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') : null,
      ),
    };
  }

  static fromJSON(value: { length: number; bins: (string | null)[] }, where: string): ExactSums {
    if (value.bins.length !== BINS)
      throw new Error(`${where}: expected ${BINS} bins, got ${value.bins.length}`);
    const sums = new ExactSums(value.length);
    value.bins.forEach((text, j) => {
      if (text === null) return;
      const bytes = Buffer.from(text, 'base64');
      if (bytes.length !== value.length * 8)
        throw new Error(
          `${where}: bin ${j} holds ${bytes.length} bytes, expected ${value.length * 8}`,
        );
      const b = new Float64Array(value.length);
      new Uint8Array(b.buffer).set(bytes);
      for (let i = 0; i < b.length; i++)
        if (!Number.isFinite(b[i]) || b[i] % UNIT[j] !== 0)
          throw new Error(`${where}: bin ${j} element ${i} is not a multiple of 2^${32 * j - 150}`);
      sums.bins[j] = b;
    });
    return sums;
  }
}
