// What the attribution graph needs from whatever replaces the MLPs, per-layer transcoders or a
// cross-layer transcoder: each layer's features (pre-activations, activation, encoder rows), the
// decoder rows by which a layer-l feature writes into the MLP output of a layer t ≥ l, and the
// reconstruction of layer t's MLP output from the activations of layers 0..t.
// d model width, N rows, F features of a layer.

import {
  applyActivation,
  transcoderDecode,
  transcoderPreActivations,
  type Transcoder,
} from './transcoder.ts';
import {
  checkClt,
  cltActivate,
  cltDecode,
  cltPreActivations,
  type CrossLayerTranscoder,
} from './clt.ts';

export interface MlpReplacement {
  kind: 'transcoder_set' | 'cross_layer_transcoder';
  numLayers: number;
  dIn: number;
  width(l: number): number;
  /** W_enc·x + b_enc of layer l's features: x [N, d] -> [N, F]. */
  preActivations(l: number, x: Float32Array, N: number): Float32Array;
  /** The activation, in place on [N, F]. */
  activate(l: number, pre: Float32Array, N: number): Float32Array;
  /** Feature i's encoder row [d] (a copy). */
  encoderRow(l: number, i: number): Float32Array;
  /** The last layer whose MLP output layer l's features write to (l for per-layer transcoders). */
  lastTarget(l: number): number;
  /** Decoder rows of features `ids` of layer l into layer t's MLP output: [ids.length, d]. */
  decoderRows(l: number, t: number, ids: number[]): Float32Array;
  /** Layer t's MLP output from acts[0..t] ([N, F] each) and its own input x [N, d] (skip). */
  decode(t: number, acts: Float32Array[], x: Float32Array, N: number): Float32Array;
  /** Layer t's linear skip W_skip [d, d], if any. */
  skip(t: number): Float32Array | undefined;
}

export function transcoderSetReplacement(transcoders: Transcoder[]): MlpReplacement {
  const d = transcoders[0]?.dIn ?? 0;
  transcoders.forEach((tc, L) => {
    if (tc.layer !== L) throw new Error(`transcoder set: entry ${L} is layer ${tc.layer}`);
    if (tc.dIn !== d) throw new Error(`transcoder layer ${L}: width ${tc.dIn}, layer 0's ${d}`);
  });
  return {
    kind: 'transcoder_set',
    numLayers: transcoders.length,
    dIn: d,
    width: (l) => transcoders[l].width,
    preActivations: (l, x, N) => transcoderPreActivations(transcoders[l], x, N),
    activate: (l, pre, N) => applyActivation(transcoders[l], pre, N),
    encoderRow: (l, i) => transcoders[l].encoder.slice(i * d, (i + 1) * d),
    lastTarget: (l) => l,
    decoderRows(l, t, ids) {
      if (t !== l) throw new Error(`a per-layer transcoder of layer ${l} does not write to ${t}`);
      const out = new Float32Array(ids.length * d);
      ids.forEach((i, j) => out.set(transcoders[l].decoder.subarray(i * d, (i + 1) * d), j * d));
      return out;
    },
    decode: (t, acts, x, N) => transcoderDecode(transcoders[t], acts[t], x, N),
    skip: (t) => transcoders[t].skip,
  };
}

export function cltReplacement(clt: CrossLayerTranscoder): MlpReplacement {
  checkClt(clt);
  const { dIn: d, numLayers: n } = clt;
  return {
    kind: 'cross_layer_transcoder',
    numLayers: n,
    dIn: d,
    width: () => clt.width,
    preActivations: (l, x, N) => cltPreActivations(clt, l, x, N),
    activate: (l, pre, N) => cltActivate(clt, l, pre, N),
    encoderRow: (l, i) => clt.encoders[l].slice(i * d, (i + 1) * d),
    lastTarget: () => n - 1,
    decoderRows(l, t, ids) {
      if (!(t >= l && t < n)) throw new Error(`CLT layer ${l} does not write to layer ${t}`);
      const m = n - l;
      const rows = clt.decoders.rows(l, ids);
      const out = new Float32Array(ids.length * d);
      ids.forEach((_, j) =>
        out.set(rows.subarray((j * m + t - l) * d, (j * m + t - l + 1) * d), j * d),
      );
      return out;
    },
    decode: (t, acts, _x, N) => cltDecode(clt, t, acts, N),
    skip: () => undefined,
  };
}

/** Per-layer transcoders or a CLT, as the graph reads them. */
export function asMlpReplacement(t: Transcoder[] | CrossLayerTranscoder): MlpReplacement {
  return Array.isArray(t) ? transcoderSetReplacement(t) : cltReplacement(t);
}
