#!/usr/bin/python3
"""Writes the small .npy/.npz files under test/fixtures/sae/npy/ that src/sae/npy.ts and the Gemma
Scope loader are tested on, with numpy's own writers (np.save, np.savez, np.savez_compressed), so
the TypeScript reader is checked against files it did not write.

Run:  python3 scripts/make-npy-fixtures.py   (numpy only; deterministic, re-running reproduces them)

  f4.npy, f2.npy, f8.npy       a (2, 3) array 0.5 * arange(6) - 1 in each float dtype
  scalar.npy, empty.npy        shape () and (0, 4)
  v2.npy                       the same (2, 3) array with a version 2.0 header
  fortran.npy                  a Fortran-ordered (2, 3) array          (must be refused)
  object.npy                   an object array (a pickle inside)       (must be refused; its
                               payload is a harmless list)
  big-endian.npy               >f4                                      (must be refused)
  int.npy                      <i4                                      (must be refused)
  structured.npy               a structured dtype [('a', '<f4')]        (must be refused)
  gemma-scope/params.npz       a d 4, F 6 JumpReLU in Gemma Scope's layout (np.savez)
  gemma-scope/compressed.npz   the same with np.savez_compressed
  gemma-scope/expected.json    x [3, 4] and the float64 features and reconstruction
                               f = pre * (pre > threshold), pre = x W_enc + b_enc, x_hat = f W_dec + b_dec
"""

import json
import os

import numpy as np
from numpy.lib import format as npformat

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "sae", "npy")
os.makedirs(os.path.join(OUT, "gemma-scope"), exist_ok=True)
base = (0.5 * np.arange(6) - 1).reshape(2, 3)

for name, dtype in [("f4", "<f4"), ("f2", "<f2"), ("f8", "<f8")]:
    np.save(os.path.join(OUT, f"{name}.npy"), base.astype(dtype))
np.save(os.path.join(OUT, "scalar.npy"), np.float32(2.5))
np.save(os.path.join(OUT, "empty.npy"), np.zeros((0, 4), dtype="<f4"))
with open(os.path.join(OUT, "v2.npy"), "wb") as f:
    npformat.write_array(f, base.astype("<f4"), version=(2, 0))
np.save(os.path.join(OUT, "fortran.npy"), np.asfortranarray(base.astype("<f4")))
np.save(os.path.join(OUT, "object.npy"), np.array([[1, 2], "x"], dtype=object), allow_pickle=True)
np.save(os.path.join(OUT, "big-endian.npy"), base.astype(">f4"))
np.save(os.path.join(OUT, "int.npy"), np.arange(6, dtype="<i4"))
np.save(os.path.join(OUT, "structured.npy"), np.zeros(2, dtype=[("a", "<f4")]))

rng = np.random.default_rng(17)
d, F, N = 4, 6, 3
W_enc = rng.normal(size=(d, F)).astype("<f4")
W_dec = (rng.normal(size=(F, d)) * 0.7).astype("<f4")  # rows deliberately not unit norm
b_enc = rng.normal(size=F).astype("<f4") * 0.3
b_dec = rng.normal(size=d).astype("<f4")
threshold = np.abs(rng.normal(size=F)).astype("<f4") * 0.5
x = rng.normal(size=(N, d)).astype("<f4")
arrays = dict(W_enc=W_enc, W_dec=W_dec, b_enc=b_enc, b_dec=b_dec, threshold=threshold)
np.savez(os.path.join(OUT, "gemma-scope", "params.npz"), **arrays)
np.savez_compressed(os.path.join(OUT, "gemma-scope", "compressed.npz"), **arrays)

pre = x.astype(np.float64) @ W_enc.astype(np.float64) + b_enc.astype(np.float64)
f = pre * (pre > threshold.astype(np.float64))
x_hat = f @ W_dec.astype(np.float64) + b_dec.astype(np.float64)
with open(os.path.join(OUT, "gemma-scope", "expected.json"), "w") as out:
    json.dump(
        {
            "N": N,
            "d": d,
            "F": F,
            "x": x.ravel().tolist(),
            "features": f.ravel().tolist(),
            "reconstruction": x_hat.ravel().tolist(),
            "decoderNorms": np.linalg.norm(W_dec.astype(np.float64), axis=1).tolist(),
        },
        out,
        indent=1,
    )
    out.write("\n")
