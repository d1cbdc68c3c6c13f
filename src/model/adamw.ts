// AdamW (Loshchilov & Hutter) with PyTorch's torch.optim.AdamW semantics: decoupled weight decay
// p -= lr * weightDecay * p, then the bias-corrected Adam step. Works on any list of parameters.

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export class AdamW {
  readonly params: Float32Array[];
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Steps taken so far. */
  t = 0;
  /** First and second moments, one per parameter: SAE training resets rows of them and checkpoints them. */
  readonly m: Float32Array[];
  readonly v: Float32Array[];

  constructor(params: Float32Array[], opts: AdamWOptions) {
    this.params = params;
    this.lr = opts.lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
  }

  /** grads[i] has the shape of params[i]; lr overrides the learning rate for this and later steps. */
  step(grads: Float32Array[], lr?: number): void {
    if (grads.length !== this.params.length) {
      throw new Error(`AdamW.step: ${grads.length} gradients for ${this.params.length} parameters`);
    }
    grads.forEach((g, i) => {
      if (g.length !== this.params[i].length) {
        throw new Error(
          `AdamW.step: gradient ${i} has ${g.length} values, parameter has ${this.params[i].length}`,
        );
      }
    });
    if (lr !== undefined) this.lr = lr;
    this.t++;
    const { beta1, beta2, eps } = this;
    const stepSize = this.lr / (1 - Math.pow(beta1, this.t));
    const correction2 = Math.sqrt(1 - Math.pow(beta2, this.t));
    const decay = 1 - this.lr * this.weightDecay;
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i];
      const g = grads[i];
      const m = this.m[i];
      const v = this.v[i];
      for (let j = 0; j < p.length; j++) {
        const gj = g[j];
        const mj = beta1 * m[j] + (1 - beta1) * gj;
        const vj = beta2 * v[j] + (1 - beta2) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        p[j] = p[j] * decay - (stepSize * mj) / (Math.sqrt(vj) / correction2 + eps);
      }
    }
  }
}
