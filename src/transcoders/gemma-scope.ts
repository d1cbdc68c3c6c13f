// Gemma Scope transcoder releases as per-layer JumpReLU transcoders: a release folder holds
// layer_L/width_W/average_l0_K/params.npz (np.savez) with W_enc [d, F] (stored input-major, so
// transposed here to our [F, d]), W_dec [F, d], b_enc [F], b_dec [d], threshold [F]. A transcoder
// reads the MLP's normalised input and predicts its output, as ours do, with no skip.

import fs from 'node:fs';
import path from 'node:path';
import { openNpz } from '../sae/npy.ts';
import { GEMMA_SCOPE_PARAMS } from '../sae/formats.ts';
import { checkTranscoder, type Transcoder } from './transcoder.ts';

/** Which params.npz per layer when a release holds several widths or L0s. */
export interface GemmaScopeChoice {
  /** The width folder's suffix, e.g. "16k" for width_16k. */
  width?: string;
  /** Take the average_l0_K nearest this K. */
  l0?: number;
}

/** True when `dir` looks like a Gemma Scope release: layer_0/ holding width_* folders. */
export function isGemmaScopeRelease(dir: string): boolean {
  const layer0 = path.join(dir, 'layer_0');
  return (
    fs.existsSync(layer0) &&
    fs.statSync(layer0).isDirectory() &&
    fs.readdirSync(layer0).some((f) => f.startsWith('width_'))
  );
}

const list = (dir: string, re: RegExp) =>
  fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => re.test(f))
        .sort()
    : [];

/** The params.npz of one layer, chosen by `choice`; errors list the choices when ambiguous. */
export function gemmaScopeFile(
  release: string,
  layer: number,
  choice: GemmaScopeChoice = {},
): string {
  const layerDir = path.join(release, `layer_${layer}`);
  const widths = list(layerDir, /^width_/);
  if (widths.length === 0) throw new Error(`${layerDir}: no width_W folders`);
  let width: string;
  if (choice.width !== undefined) {
    width = `width_${choice.width}`;
    if (!widths.includes(width))
      throw new Error(`${layerDir}: no ${width} (has ${widths.join(', ')})`);
  } else if (widths.length === 1) width = widths[0];
  else throw new Error(`${layerDir}: several widths (${widths.join(', ')}); choose one`);
  const widthDir = path.join(layerDir, width);
  const l0s = list(widthDir, /^average_l0_\d+$/).map((f) => Number(f.slice('average_l0_'.length)));
  if (l0s.length === 0) throw new Error(`${widthDir}: no average_l0_K folders`);
  let l0: number;
  if (l0s.length === 1) l0 = l0s[0];
  else if (choice.l0 !== undefined)
    l0 = l0s.reduce((best, k) =>
      Math.abs(k - choice.l0!) < Math.abs(best - choice.l0!) ? k : best,
    );
  else
    throw new Error(
      `${widthDir}: several L0s (${l0s.map((k) => `average_l0_${k}`).join(', ')}); choose a target L0`,
    );
  const file = path.join(widthDir, `average_l0_${l0}`, GEMMA_SCOPE_PARAMS);
  if (!fs.existsSync(file)) throw new Error(`${file}: missing`);
  return file;
}

/** One params.npz as layer `layer`'s JumpReLU transcoder. */
export function loadGemmaScopeTranscoder(file: string, layer: number): Transcoder {
  const npz = openNpz(file);
  const read = (name: string, want: number[]) => {
    if (!npz.has(name))
      throw new Error(
        `${file}: no array ${name}; a Gemma Scope transcoder holds W_enc, W_dec, b_enc, b_dec, threshold (found: ${npz.names().join(', ')})`,
      );
    const { shape } = npz.header(name);
    if (shape.length !== want.length || shape.some((s, i) => s !== want[i]))
      throw new Error(`${file}: array ${name} has shape (${shape}), expected (${want})`);
    return npz.read(name).data;
  };
  if (!npz.has('W_enc')) read('W_enc', [0, 0]);
  const shape = npz.header('W_enc').shape;
  if (shape.length !== 2 || shape[0] === 0 || shape[1] === 0)
    throw new Error(`${file}: array W_enc has shape (${shape}), expected (d, F) with d, F > 0`);
  const [d, F] = shape;
  const stored = read('W_enc', [d, F]);
  const encoder = new Float32Array(F * d);
  for (let j = 0; j < d; j++) for (let i = 0; i < F; i++) encoder[i * d + j] = stored[j * F + i];
  const tc: Transcoder = {
    layer,
    dIn: d,
    width: F,
    activation: 'jumprelu',
    threshold: read('threshold', [F]),
    encoder,
    encoderBias: read('b_enc', [F]),
    decoder: read('W_dec', [F, d]),
    decoderBias: read('b_dec', [d]),
  };
  checkTranscoder(tc, file);
  return tc;
}

/** Every layer_L of a release (L = 0, 1, ... while the folder exists). */
export function loadGemmaScopeTranscoders(
  release: string,
  choice: GemmaScopeChoice = {},
): { files: string[]; transcoders: Transcoder[] } {
  const files: string[] = [];
  for (let L = 0; fs.existsSync(path.join(release, `layer_${L}`)); L++)
    files.push(gemmaScopeFile(release, L, choice));
  if (files.length === 0) throw new Error(`${release}: no layer_0 folder (a Gemma Scope release)`);
  return { files, transcoders: files.map((f, L) => loadGemmaScopeTranscoder(f, L)) };
}
