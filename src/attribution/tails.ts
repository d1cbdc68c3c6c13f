// The model from a site onward. Patching one site leaves everything below it clean, so the
// forward passes of attribution only need the layers above: `tail(L)` is a model holding layers
// L..end whose own `embed` site is fed (by a hook) the full model's resid_{L-1} (or embed for
// L = 0). Its head can be cut to the metric's vocabulary, so a logit difference costs 2 columns of
// embed_out instead of V. The weights are shared with the full model, not copied. With a metric
// that reads a residual site (a probe), the tails stop at that site's layer.
// B rows, T tokens, d model dim, V' the metric's vocabulary.

import type { Batch, SiteHook } from '../model/gptneox.ts';
import { siteRef, type LanguageModel } from '../model/language-model.ts';

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
   * attn_z_L, and attn_L of a sequential or sandwich block (its MLP reads it), are instead
   * computed inside tail(L) (inner attn_z_0, attn_0), fed `input`.
   */
  addedTo: string | null;
}

export class Tails {
  readonly model: LanguageModel;
  readonly vocab: Int32Array | undefined;
  /** Layers the tails run up to (exclusive): numLayers, or the readout's layer + 1. */
  readonly end: number;
  readonly readout: string | undefined;
  private tails = new Map<number, LanguageModel>();
  private spans = new Map<string, LanguageModel>();

  constructor(model: LanguageModel, vocab?: Int32Array, readout?: string) {
    this.model = model;
    this.vocab = vocab;
    const V = model.shape.vocabSize;
    this.end = model.shape.numLayers;
    this.readout = readout;
    if (readout !== undefined) {
      const ref = siteRef(model, readout);
      if (ref.kind !== 'embed' && ref.kind !== 'resid')
        throw new Error(`metric readout: expected embed or a resid_L site, got ${readout}`);
      this.end = ref.kind === 'embed' ? 0 : ref.layer + 1;
    }
    vocab?.forEach((id) => {
      if (!(id >= 0 && id < V))
        throw new Error(`metric vocabulary: token id ${id} is outside the model's [0, ${V})`);
    });
  }

  /** Where a full-model site sits in the tails. */
  locate(site: string): SiteInTail {
    const ref = siteRef(this.model, site);
    const L = ref.layer;
    if (ref.kind === 'embed') return { start: 0, inner: 'embed', input: null, addedTo: null };
    if (ref.kind === 'resid') return { start: L + 1, inner: 'embed', input: null, addedTo: null };
    if (ref.kind === 'mlp' || (ref.kind === 'attn' && this.model.wiring === 'parallel'))
      return { start: L + 1, inner: 'embed', input: null, addedTo: `resid_${L}` };
    return {
      start: L,
      inner: `${ref.kind}_0`,
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
  tail(start: number): LanguageModel {
    if (start > this.end)
      throw new Error(`tails: layer ${start} is above the metric's readout (layers < ${this.end})`);
    let t = this.tails.get(start);
    if (!t) {
      t = this.build(start, this.end - start);
      this.tails.set(start, t);
    }
    return t;
  }

  /** Layers start..start+count-1 alone (their head is never run: use logits 'none'). */
  span(start: number, count: number): LanguageModel {
    const key = `${start}:${count}`;
    let t = this.spans.get(key);
    if (!t) {
      t = this.build(start, count);
      this.spans.set(key, t);
    }
    return t;
  }

  /** Token ids -> embedding rows [B*T*d], as the full model's embed site computes them. */
  embed(batch: Batch): Float32Array {
    return this.model.embed(batch);
  }

  /** A batch for a tail: the same shape and lengths with ids 0 (the tail's embed is hooked). */
  static inputBatch(rows: number, seqLen: number, lengths: number[]): Batch {
    return { ids: new Int32Array(rows * seqLen), batchSize: rows, seqLen, lengths };
  }

  /** Hook that replaces the tail's embed by `x` [B*T*d]. */
  static feed(x: Float32Array): SiteHook {
    return () => x;
  }

  private build(start: number, count: number): LanguageModel {
    return this.model.slice(start, count, this.vocab);
  }
}
