// Streams of activation vectors for training dictionaries.
//
// Every random choice here comes from an Rng derived from (seed, purpose, counter), so a stream's
// whole state is a few counters plus the buffered vectors: checkpoints save exactly that, and a
// resumed run continues the same stream bit for bit.
//
// Dims: n vectors, d width, T context length (tokens per window), W windows per forward pass.

import { Rng } from '../random.ts';
import type { LanguageModel } from '../model/language-model.ts';
import type { BufferJson, SourceJson, WindowStreamJson } from './checkpoint-file.ts';

/**
 * What a source needs to continue exactly where it was (JSON plus optional buffered vectors).
 * The JSON's types are those checkpoint-file.ts validates a saved one against.
 */
export interface SourceState {
  json: SourceJson;
  arrays?: Record<string, Float32Array>;
}

export interface ActivationSource {
  /** d: width of each vector. */
  readonly dIn: number;
  /** Writes the next n vectors into out [n*d]. */
  next(out: Float32Array, n: number): void;
  saveState(): SourceState;
  loadState(state: SourceState): void;
}

/** An Rng for one purpose and counter of a seeded run (e.g. the shuffle of epoch 3). */
export function derivedRng(seed: number, purpose: number, counter: number): Rng {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(purpose + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 15), 0x27d4eb2f) ^ Math.imul(counter + 1, 0x165667b1);
  h = Math.imul(h ^ (h >>> 13), 0x85ebca6b);
  return new Rng((h ^ (h >>> 16)) >>> 0);
}

// Purposes, so that different uses of one seed never share a stream.
export const RNG_EPOCH = 1;
export const RNG_BUFFER = 2;
export const RNG_INIT = 3;
export const RNG_RESAMPLE = 4;

function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Vectors from memory, drawn without replacement in a fresh random order each epoch. */
export class ArraySource implements ActivationSource {
  readonly dIn: number;
  private readonly count: number;
  private epoch = 0;
  private cursor = 0;
  private order: Int32Array;

  // data [count*d]
  constructor(
    private readonly data: Float32Array,
    d: number,
    private readonly seed = 0,
  ) {
    if (!Number.isInteger(d) || d <= 0 || data.length === 0 || data.length % d !== 0)
      throw new Error(`ArraySource: ${data.length} values do not form rows of width ${d}`);
    this.dIn = d;
    this.count = data.length / d;
    this.order = permutation(this.count, derivedRng(seed, RNG_EPOCH, 0));
  }

  next(out: Float32Array, n: number): void {
    const d = this.dIn;
    for (let r = 0; r < n; r++) {
      if (this.cursor === this.count) {
        this.epoch++;
        this.cursor = 0;
        this.order = permutation(this.count, derivedRng(this.seed, RNG_EPOCH, this.epoch));
      }
      const src = this.order[this.cursor++] * d;
      out.set(this.data.subarray(src, src + d), r * d);
    }
  }

  saveState(): SourceState {
    return { json: { kind: 'array', epoch: this.epoch, cursor: this.cursor } };
  }

  loadState(state: SourceState): void {
    const s = state.json;
    if (s.kind !== 'array')
      throw new Error(`the saved data stream is a ${s.kind} source, not an array of vectors`);
    const { epoch, cursor } = s;
    if (cursor > this.count)
      throw new Error(
        `the saved data stream is at vector ${cursor} of an epoch, but the data holds ${this.count}`,
      );
    this.epoch = epoch;
    this.cursor = cursor;
    this.order = permutation(this.count, derivedRng(this.seed, RNG_EPOCH, epoch));
  }
}

/**
 * A shuffling buffer over a producer of chunks (e.g. all tokens of a few forward passes): holds
 * about `capacity` vectors; when fewer than half are unread it tops up with whole chunks and
 * reshuffles, so consecutive vectors come from many different contexts.
 */
export class ShuffledBuffer {
  private readonly buffer: Float32Array; // [capacity*d]
  private order: Int32Array = new Int32Array(0); // positions in serving order
  private filled = 0;
  private pos = 0;
  private refills = 0;

  constructor(
    readonly dIn: number,
    readonly capacity: number,
    private readonly chunkSize: number,
    private readonly produce: (out: Float32Array) => void, // fills out [chunkSize*d]
    private readonly seed: number,
  ) {
    if (chunkSize <= 0 || chunkSize * 2 > capacity)
      throw new Error(
        `ShuffledBuffer: chunks of ${chunkSize} vectors need a capacity of at least ${2 * chunkSize}, got ${capacity}`,
      );
    this.buffer = new Float32Array(capacity * dIn);
  }

  private refill(): void {
    const d = this.dIn;
    // Move the unread vectors to the front, then append whole chunks while they fit.
    const unread = this.order.subarray(this.pos);
    const kept = new Float32Array(unread.length * d);
    unread.forEach((p, i) => kept.set(this.buffer.subarray(p * d, (p + 1) * d), i * d));
    this.buffer.set(kept);
    let filled = unread.length;
    while (filled + this.chunkSize <= this.capacity) {
      this.produce(this.buffer.subarray(filled * d, (filled + this.chunkSize) * d));
      filled += this.chunkSize;
    }
    this.filled = filled;
    this.order = permutation(filled, derivedRng(this.seed, RNG_BUFFER, this.refills++));
    this.pos = 0;
  }

  next(out: Float32Array, n: number): void {
    const d = this.dIn;
    for (let r = 0; r < n; r++) {
      if (this.filled - this.pos < this.capacity / 2) this.refill();
      const p = this.order[this.pos++];
      out.set(this.buffer.subarray(p * d, (p + 1) * d), r * d);
    }
  }

  saveState(): { json: BufferJson; arrays: Record<string, Float32Array> } {
    const d = this.dIn;
    // Only the unread vectors matter; store them in serving order.
    const unread = this.order.subarray(this.pos);
    const vectors = new Float32Array(unread.length * d);
    unread.forEach((p, i) => vectors.set(this.buffer.subarray(p * d, (p + 1) * d), i * d));
    return { json: { refills: this.refills }, arrays: { buffer: vectors } };
  }

  loadState(state: { json: BufferJson; arrays?: Record<string, Float32Array> }): void {
    const vectors = state.arrays?.buffer ?? new Float32Array(0);
    this.buffer.set(vectors);
    this.filled = vectors.length / this.dIn;
    this.order = new Int32Array(this.filled).map((_, i) => i);
    this.pos = 0;
    this.refills = state.json.refills;
  }
}

/** Token documents packed end to end (EOS between them) and cut into windows of T tokens. */
export class WindowStream {
  private epoch = 0;
  private doc = 0; // index into this epoch's document order
  private offset = 0; // tokens of the current document already used
  private order: Int32Array;

  constructor(
    private readonly documents: number[][],
    readonly T: number,
    private readonly eosId: number | undefined,
    private readonly seed: number,
    /** Shuffle the document order each epoch (training); false keeps file order (evaluation). */
    private readonly shuffle = true,
  ) {
    const tokens = documents.reduce((n, doc) => n + doc.length, 0);
    if (tokens === 0) throw new Error('the corpus holds no tokens');
    if (!Number.isInteger(T) || T < 1)
      throw new Error(`context length ${T} must be a positive integer`);
    this.order = this.epochOrder();
  }

  private epochOrder(): Int32Array {
    return this.shuffle
      ? permutation(this.documents.length, derivedRng(this.seed, RNG_EPOCH, this.epoch))
      : new Int32Array(this.documents.length).map((_, i) => i);
  }

  /** Fills window [T] with the next T tokens of the stream. */
  nextWindow(window: Int32Array): void {
    for (let t = 0; t < this.T;) {
      if (this.doc === this.documents.length) {
        this.epoch++;
        this.doc = 0;
        this.order = this.epochOrder();
      }
      const tokens = this.documents[this.order[this.doc]];
      if (this.offset < tokens.length) {
        window[t++] = tokens[this.offset++];
      } else {
        // End of the document: its EOS (if any) occupies offset === length.
        if (this.eosId !== undefined && this.offset === tokens.length) {
          window[t++] = this.eosId;
          this.offset++;
        }
        if (this.eosId === undefined || this.offset > tokens.length) {
          this.doc++;
          this.offset = 0;
        }
      }
    }
  }

  saveState(): WindowStreamJson {
    return { epoch: this.epoch, doc: this.doc, offset: this.offset };
  }

  loadState(s: WindowStreamJson): void {
    if (s.doc > this.documents.length)
      throw new Error(
        `the saved data stream is at document ${s.doc} of an epoch, but the corpus holds ${this.documents.length}`,
      );
    this.epoch = s.epoch;
    this.doc = s.doc;
    this.offset = s.offset;
    this.order = this.epochOrder();
  }
}

export interface ModelSourceOptions {
  model: LanguageModel;
  site: string;
  /** Token ids, one array per document. */
  documents: number[][];
  /** Tokens per context window (default 64). */
  ctx?: number;
  /** Token placed between documents (e.g. <|endoftext|>); none when undefined. */
  eosId?: number;
  /** Windows run per forward pass (default 8). */
  windowsPerForward?: number;
  /** Windows whose activations the shuffling buffer holds (default 64). */
  bufferWindows?: number;
  seed?: number;
}

/** Activations at one site of a model running over a tokenised corpus, through a shuffled buffer. */
export class ModelActivationSource implements ActivationSource {
  readonly dIn: number;
  private readonly windows: WindowStream;
  private readonly buffer: ShuffledBuffer;

  constructor(o: ModelSourceOptions) {
    const { model, site } = o;
    if (!model.sites.includes(site))
      throw new Error(`unknown site "${site}"; the model has ${model.sites.join(', ')}`);
    const T = o.ctx ?? 64;
    if (T > model.shape.maxPositions)
      throw new Error(
        `--ctx ${T} is longer than the model's ${model.shape.maxPositions} positions`,
      );
    const W = o.windowsPerForward ?? 8;
    const bufferWindows = Math.max(o.bufferWindows ?? 64, 2 * W);
    const seed = o.seed ?? 0;
    this.dIn = model.siteWidth(site);
    this.windows = new WindowStream(o.documents, T, o.eosId, seed);
    const d = this.dIn;
    const ids = new Int32Array(W * T);
    const lengths = new Array<number>(W).fill(T);
    this.buffer = new ShuffledBuffer(
      d,
      bufferWindows * T,
      W * T,
      (out) => {
        for (let w = 0; w < W; w++) this.windows.nextWindow(ids.subarray(w * T, (w + 1) * T));
        model.forward(
          { ids, batchSize: W, seqLen: T, lengths },
          {
            logits: 'none',
            hooks: {
              [site]: (act) => {
                out.set(act.subarray(0, W * T * d));
              },
            },
          },
        );
      },
      seed,
    );
  }

  next(out: Float32Array, n: number): void {
    this.buffer.next(out, n);
  }

  saveState(): SourceState {
    const b = this.buffer.saveState();
    return {
      json: { kind: 'model', windows: this.windows.saveState(), buffer: b.json },
      arrays: b.arrays,
    };
  }

  loadState(state: SourceState): void {
    const j = state.json;
    if (j.kind !== 'model')
      throw new Error(`the saved data stream is an ${j.kind} source, not a model's activations`);
    this.windows.loadState(j.windows);
    this.buffer.loadState({ json: j.buffer, arrays: state.arrays });
  }
}
