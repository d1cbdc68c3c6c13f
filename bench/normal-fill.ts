// Fast deterministic N(0, scale²) fills for benchmark weights (xorshift + Box-Muller): the
// project's Rng is clear but too slow for the ~100M samples a Pythia-shaped bench needs.

export function normalFill(t: Float32Array, scale: number, seed: number): void {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  for (let i = 0; i < t.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const a = 2 * Math.PI * uniform();
    t[i] = scale * r * Math.cos(a);
    if (i + 1 < t.length) t[i + 1] = scale * r * Math.sin(a);
  }
}

/**
 * Uniform fills with standard deviation `std` (±std·√3), for the billions of values of a
 * Gemma-2-shaped bench, where Box-Muller's log/cos/sin per pair took minutes: the cost of the
 * products does not depend on the distribution.
 */
export function uniformFill(t: Float32Array, std: number, seed: number): void {
  let s = seed >>> 0 || 1;
  const scale = (2 * std * Math.sqrt(3)) / 4294967296;
  const shift = std * Math.sqrt(3);
  for (let i = 0; i < t.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    t[i] = s * scale - shift;
  }
}
