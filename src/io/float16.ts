// IEEE 754 half precision (F16) and bfloat16 (BF16) <-> float32, bit-exact.
// Decoding is exact (every F16/BF16 value is an f32); encoding rounds to nearest, ties to even.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

let f16Table: Float32Array | undefined;

/** The f32 value of a half-precision bit pattern (subnormals, ±inf and NaN included). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** All 65536 half values, built on first use so decoding a tensor is one lookup per element. */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** Half-precision bit pattern nearest to x (ties to even); overflow gives ±inf, NaN stays NaN. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 255) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e >= 1) {
    // Normal half; a rounding carry out of the mantissa correctly bumps the exponent (up to inf).
    let half = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
    return sign | half;
  }
  // Subnormal half (unit 2^-24): below 2^-25 everything rounds to zero.
  if (e < -10) return sign;
  const m = mant | 0x800000;
  const shift = 14 - e;
  let half = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && half & 1)) half++;
  return sign | half;
}

/** bf16 bits are the top 16 bits of an f32, so decoding is a shift. */
export function bf16BitsToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

/** bfloat16 bit pattern nearest to x (ties to even, as torch's .bfloat16()); NaN stays NaN. */
export function f32ToBF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return ((u >>> 16) | 0x40) & 0xffff; // quiet NaN
  // Adding 0x7fff plus the kept part's lowest bit rounds to nearest, ties to even; a carry moves
  // into the exponent (up to inf), as it should.
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

// bits [n] -> out [n]
export function decodeF16(bits: Uint16Array, out: Float32Array): void {
  const table = halfTable();
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
}

// bits [n] -> out [n]
export function decodeBF16(bits: Uint16Array, out: Float32Array): void {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
}

// values [n] -> out [n]
export function encodeF16(values: Float32Array, out: Uint16Array): void {
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]);
}

// values [n] -> out [n]: f32ToBF16Bits on the float32 bits in place, without a round trip through
// a number per value (a 32768 × 512 matrix in ~0.1 s instead of ~1 s).
export function encodeBF16(values: Float32Array, out: Uint16Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    out[i] =
      (u & 0x7f800000) === 0x7f800000 && u & 0x7fffff
        ? ((u >>> 16) | 0x40) & 0xffff
        : ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  }
}
