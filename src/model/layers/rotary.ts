// Rotary position embeddings with the rotate-half convention, on the first R dims of each head
// (R = head_dim for Llama, Qwen and Gemma; R = floor(head_dim · rotary_pct) for GPT-NeoX).
// G head rows groups, T tokens, Dh head dim. Heads are laid out [G, T, Dh] (G = B·heads).
// Frequencies and angles are formed in float32 as Hugging Face does (visible at long positions).

import type { RotaryTable } from './attention.ts';

/** Llama 3's frequency rescaling (rope_scaling / rope_parameters with rope_type "llama3"). */
export interface Llama3Scaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  /** original_max_position_embeddings */
  originalContext: number;
}

const f32 = Math.fround;

/**
 * inv_freq [R/2] = 1 / theta^(2i/R) in float32, then with llama3 scaling: wavelengths 2π/inv_freq
 * longer than originalContext/lowFreqFactor are divided by factor, shorter than
 * originalContext/highFreqFactor kept, and those between interpolated smoothly:
 * (1 - s)·f/factor + s·f with s = (originalContext/wavelen - low) / (high - low).
 */
export function inverseFrequencies(
  R: number,
  theta: number,
  scaling: Llama3Scaling | null = null,
): Float32Array {
  const half = R >> 1;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f32(1 / f32(Math.pow(theta, f32((2 * i) / R))));
  if (!scaling) return inv;
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalContext: ctx } = scaling;
  const lowFreqWavelen = ctx / low;
  const highFreqWavelen = ctx / high;
  for (let i = 0; i < half; i++) {
    const f = inv[i];
    const wavelen = f32((2 * Math.PI) / f);
    if (wavelen > lowFreqWavelen) inv[i] = f32(f / factor);
    else if (wavelen >= highFreqWavelen) {
      const s = f32((f32(ctx / wavelen) - low) / (high - low));
      inv[i] = f32(f32(f32(1 - s) * f32(f / factor)) + f32(s * f));
    }
  }
  return inv;
}

/** cos, sin of float32(t · inv_freq_i) for positions 0..T-1: [T, R/2] each. */
export function rotaryTableFrom(T: number, invFreq: Float32Array): RotaryTable {
  const half = invFreq.length;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  for (let t = 0; t < T; t++)
    for (let i = 0; i < half; i++) {
      const angle = f32(t * invFreq[i]);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  return { cos, sin };
}

/**
 * x [G, T, Dh] in place: for each row at position P + t, the halves x1 = x[:R/2], x2 = x[R/2:R]
 * become x1 cos - x2 sin, x2 cos + x1 sin; dims R..Dh are left as they are.
 */
export function rotaryForward(
  x: Float32Array,
  G: number,
  T: number,
  Dh: number,
  R: number,
  rope: RotaryTable,
  P = 0,
): void {
  const half = R >> 1;
  const { cos, sin } = rope;
  for (let g = 0; g < G; g++)
    for (let t = 0; t < T; t++) {
      const o = (g * T + t) * Dh;
      const p = (P + t) * half;
      for (let i = 0; i < half; i++) {
        const x1 = x[o + i];
        const x2 = x[o + i + half];
        const c = cos[p + i];
        const s = sin[p + i];
        x[o + i] = x1 * c - x2 * s;
        x[o + i + half] = x2 * c + x1 * s;
      }
    }
}

/** dx [G, T, Dh] in place: the transpose of the rotation (rotation by minus the angle). */
export function rotaryBackward(
  dx: Float32Array,
  G: number,
  T: number,
  Dh: number,
  R: number,
  rope: RotaryTable,
  P = 0,
): void {
  const half = R >> 1;
  const { cos, sin } = rope;
  for (let g = 0; g < G; g++)
    for (let t = 0; t < T; t++) {
      const o = (g * T + t) * Dh;
      const p = (P + t) * half;
      for (let i = 0; i < half; i++) {
        const g1 = dx[o + i];
        const g2 = dx[o + i + half];
        const c = cos[p + i];
        const s = sin[p + i];
        dx[o + i] = g1 * c + g2 * s;
        dx[o + i + half] = g2 * c - g1 * s;
      }
    }
}
