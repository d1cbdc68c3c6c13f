// Dictionary load throughput: one Gemma-Scope-sized JumpReLU dictionary (F 16384 x d 2304, float32,
// ~302 MB) written in each on-disk layout we read (SAELens safetensors, Gemma Scope params.npz,
// dictionary_learning ae.pt), then loaded from the page cache. Reports GB/s of file bytes and the
// ratio to a plain fs.readFileSync of the same file in the same run (the machine's ceiling for
// getting those bytes into memory at all). SFC_BENCH_SAE_LOAD=small uses F 4096.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { loadAePt, loadGemmaScopeNpz, loadSaeLensFolder } from '../src/sae/formats.ts';
import { transpose } from '../src/sae/transpose.ts';
import { writeNpz } from '../src/sae/npy.ts';
import { buildTorchArchive, statePickle } from '../test/helpers/torch-files.ts';
import { normalFill } from './normal-fill.ts';

const F = process.env.SFC_BENCH_SAE_LOAD === 'small' ? 4096 : 16384;
const D = 2304;
const REPEATS = 3;

function seconds(run: () => unknown): number {
  const t0 = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Best of REPEATS (the first run also warms the page cache). */
function best(run: () => unknown): number {
  let t = Infinity;
  for (let i = 0; i < REPEATS; i++) t = Math.min(t, seconds(run));
  return t;
}

export function runSaeLoadBench(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-bench-sae-load-'));
  try {
    const wEnc = new Float32Array(D * F); // [d, F] as both SAELens and Gemma Scope store it
    const wDec = new Float32Array(F * D);
    normalFill(wEnc, 0.02, 1);
    normalFill(wDec, 0.02, 2);
    const bEnc = new Float32Array(F).fill(-0.01);
    const bDec = new Float32Array(D);
    const threshold = new Float32Array(F).fill(0.05);

    const saeLens = path.join(dir, 'saelens');
    fs.mkdirSync(saeLens);
    writeSafetensors(path.join(saeLens, 'sae_weights.safetensors'), [
      { name: 'W_enc', shape: [D, F], data: wEnc },
      { name: 'b_enc', shape: [F], data: bEnc },
      { name: 'W_dec', shape: [F, D], data: wDec },
      { name: 'b_dec', shape: [D], data: bDec },
      { name: 'threshold', shape: [F], data: threshold },
    ]);
    const cfg = { architecture: 'jumprelu', d_in: D, d_sae: F, apply_b_dec_to_input: false };
    fs.writeFileSync(
      path.join(saeLens, 'cfg.json'),
      JSON.stringify({ ...cfg, hook_name: 'blocks.0.hook_resid_post' }),
    );

    const npz = path.join(dir, 'gemma-scope-2b-pt-res', 'layer_0', 'width_16k', 'average_l0_100');
    fs.mkdirSync(npz, { recursive: true });
    const npzFile = path.join(npz, 'params.npz');
    writeNpz(npzFile, [
      { name: 'W_enc', shape: [D, F], data: wEnc },
      { name: 'W_dec', shape: [F, D], data: wDec },
      { name: 'b_enc', shape: [F], data: bEnc },
      { name: 'b_dec', shape: [D], data: bDec },
      { name: 'threshold', shape: [F], data: threshold },
    ]);

    // dictionary_learning stores encoder.weight [F, d] and decoder.weight [d, F].
    const aePt = path.join(dir, 'resid_out_layer0', '10_16384', 'ae.pt');
    fs.mkdirSync(path.dirname(aePt), { recursive: true });
    const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    fs.writeFileSync(
      aePt,
      buildTorchArchive(
        statePickle([
          { name: 'encoder.weight', storage: '0', numel: F * D, shape: [F, D] },
          { name: 'encoder.bias', storage: '1', numel: F, shape: [F] },
          { name: 'decoder.weight', storage: '2', numel: D * F, shape: [D, F] },
          { name: 'bias', storage: '3', numel: D, shape: [D] },
        ]),
        {
          '0': bytesOf(transpose(wEnc, D, F)),
          '1': bytesOf(bEnc),
          '2': bytesOf(transpose(wDec, F, D)),
          '3': bytesOf(bDec),
        },
      ),
    );

    const transposeSeconds = best(() => transpose(wEnc, D, F));
    console.log(
      `dictionary F ${F} x d ${D} float32; blocked transpose of W_enc [d, F]: ${(
        wEnc.byteLength /
        transposeSeconds /
        1e9
      ).toFixed(2)} GB/s`,
    );
    const cases: [string, string, () => unknown][] = [
      [
        'SAELens safetensors',
        path.join(saeLens, 'sae_weights.safetensors'),
        () => loadSaeLensFolder(saeLens),
      ],
      ['Gemma Scope params.npz', npzFile, () => loadGemmaScopeNpz(npzFile, 'resid_0')],
      ['dictionary_learning ae.pt', aePt, () => loadAePt(aePt, 'resid_0')],
    ];
    for (const [name, file, load] of cases) {
      const bytes = fs.statSync(file).size;
      const read = best(() => fs.readFileSync(file));
      const loadSeconds = best(load);
      console.log(
        `${name.padEnd(26)} ${(bytes / 1e6).toFixed(0)} MB: load ${(loadSeconds * 1e3).toFixed(0)} ms = ${(
          bytes /
          loadSeconds /
          1e9
        ).toFixed(
          2,
        )} GB/s; readFileSync ${(read * 1e3).toFixed(0)} ms = ${(bytes / read / 1e9).toFixed(2)} GB/s; load / read time ${(
          loadSeconds / read
        ).toFixed(2)}x`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) runSaeLoadBench();
