// The model from a site onward. Patching one site leaves everything below it clean, so the
// forward passes of attribution only need the layers above: `tail(L)` is a GptNeoX holding layers
// L..end whose own `embed` site is fed (by a hook) the full model's resid_{L-1} (or embed for
// L = 0). Its head can be cut to the metric's vocabulary, so a logit difference costs 2 columns of
// embed_out instead of V. The weights are shared with the full model, not copied. With a metric
// that reads a residual site (a probe), the tails stop at that site's layer.
// B rows, T tokens, d model dim, V' the metric's vocabulary.

import type { GptNeoXConfig } from '../model/config.ts';
import { GptNeoX, type Batch, type SiteHook } from '../model/gptneox.ts';
import { embeddingForward } from '../model/layers/embedding.ts';
import { parseSite } from '../model/sites.ts';
import type { GptNeoXWeights } from '../model/weights.ts';

export interface SiteInTail {
  /** First layer of the tail: the site is computed inside it or fed to its input. */
  start: number;
  /** The site's name inside the tail ('embed' when the site is the tail's input). */
  inner: string;
  /** Full-model site whose clean activation feeds the tail's embed when the site is inside it. */
  input: string | null;
  /**
   * The residual site that the site is added straight into (mlp_L; attn_L with a parallel
   * residual: nothing else in the layer reads it). Then the tail after that residual is fed
   * resid_L,clean + (x - x_clean): no layer-L work is redone, and ∂m/∂x = ∂m/∂resid_L.
   */
  addedTo: string | null;
}

export class Tails {
  readonly model: GptNeoX;
  readonly vocab: Int32Array | undefined;
  /** Layers the tails run up to (exclusive): numLayers, or the readout's layer + 1. */
  readonly end: number;
  readonly readout: string | undefined;
  private tails = new Map<number, GptNeoX>();
  private layers = new Map<number, GptNeoX>();
  private head: Pick<GptNeoXWeights, 'embedIn' | 'embedOut'>;
  private headVocab: number;

  constructor(model: GptNeoX, vocab?: Int32Array, readout?: string) {
    this.model = model;
    this.vocab = vocab;
    const { vocabSize: V, hiddenSize: d } = model.config;
    this.end = model.config.numLayers;
    this.readout = readout;
    if (readout !== undefined) {
      const ref = parseSite(readout, model.config.numLayers);
      if (ref.kind !== 'embed' && ref.kind !== 'resid')
        throw new Error(`metric readout: expected embed or a resid_L site, got ${readout}`);
      this.end = ref.kind === 'embed' ? 0 : ref.layer + 1;
    }
    if (vocab) {
      vocab.forEach((id) => {
        if (!(id >= 0 && id < V))
          throw new Error(`metric vocabulary: token id ${id} is outside the model's [0, ${V})`);
      });
      const embedOut = new Float32Array(vocab.length * d); // [V', d]
      vocab.forEach((id, i) =>
        embedOut.set(model.weights.embedOut.subarray(id * d, (id + 1) * d), i * d),
      );
      // The tails never look their ids up (their embed is always hooked): a zero table suffices.
      this.head = { embedIn: new Float32Array(vocab.length * d), embedOut };
      this.headVocab = vocab.length;
    } else {
      this.head = { embedIn: model.weights.embedIn, embedOut: model.weights.embedOut };
      this.headVocab = V;
    }
  }

  /** Where a full-model site sits in the tails. */
  locate(site: string): SiteInTail {
    const ref = parseSite(site, this.model.config.numLayers);
    const L = ref.layer;
    if (ref.kind === 'embed') return { start: 0, inner: 'embed', input: null, addedTo: null };
    if (ref.kind === 'resid') return { start: L + 1, inner: 'embed', input: null, addedTo: null };
    if (ref.kind === 'mlp' || this.model.config.useParallelResidual)
      return { start: L + 1, inner: 'embed', input: null, addedTo: `resid_${L}` };
    return {
      start: L,
      inner: 'attn_0',
      input: L === 0 ? 'embed' : `resid_${L - 1}`,
      addedTo: null,
    };
  }

  /**
   * The readout site's name inside tail(start): its last residual, or its embed when it has no
   * layers. Null when the metric reads the logits.
   */
  readoutIn(start: number): string | null {
    if (this.readout === undefined) return null;
    return start < this.end ? `resid_${this.end - start - 1}` : 'embed';
  }

  /** Layers start..end and the (cut) head; start = end is the head alone. */
  tail(start: number): GptNeoX {
    if (start > this.end)
      throw new Error(`tails: layer ${start} is above the metric's readout (layers < ${this.end})`);
    let t = this.tails.get(start);
    if (!t) {
      t = this.build(start, this.end - start);
      this.tails.set(start, t);
    }
    return t;
  }

  /** Layer L alone (its head is never run: use logits 'none'). */
  layer(L: number): GptNeoX {
    let t = this.layers.get(L);
    if (!t) {
      t = this.build(L, 1);
      this.layers.set(L, t);
    }
    return t;
  }

  /** Token ids -> embedding rows [B*T*d], as the full model's embed site computes them. */
  embed(batch: Batch): Float32Array {
    const d = this.model.config.hiddenSize;
    const N = batch.batchSize * batch.seqLen;
    const out = new Float32Array(N * d);
    embeddingForward(out, batch.ids, this.model.weights.embedIn, N, d);
    return out;
  }

  /** A batch for a tail: the same shape and lengths with ids 0 (the tail's embed is hooked). */
  static inputBatch(rows: number, seqLen: number, lengths: number[]): Batch {
    return { ids: new Int32Array(rows * seqLen), batchSize: rows, seqLen, lengths };
  }

  /** Hook that replaces the tail's embed by `x` [B*T*d]. */
  static feed(x: Float32Array): SiteHook {
    return () => x;
  }

  private build(start: number, count: number): GptNeoX {
    const c = this.model.config;
    const w = this.model.weights;
    const config: GptNeoXConfig = { ...c, numLayers: count, vocabSize: this.headVocab };
    const weights: GptNeoXWeights = {
      embedIn: this.head.embedIn,
      layers: w.layers.slice(start, start + count),
      lnFinalWeight: w.lnFinalWeight,
      lnFinalBias: w.lnFinalBias,
      embedOut: this.head.embedOut,
    };
    return new GptNeoX(config, weights);
  }
}
