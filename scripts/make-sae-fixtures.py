#!/usr/bin/python3
"""Writes the small SAE files under test/fixtures/sae/ that the TypeScript loaders are tested on.

Run with Debian's python3-torch:  /usr/bin/python3 scripts/make-sae-fixtures.py
Every file is deterministic (fixed seed), so re-running it reproduces the committed fixtures.

One dictionary (d 4, F 6, decoder columns deliberately NOT unit norm) is written
  - as dictionary_learning `ae.pt` files made by the real torch.save, in four storage flavours:
      resid_out_layer0  F32, contiguous
      attn_out_layer0   F32, decoder.weight a transposed (non-contiguous) view, encoder.weight a
                        view into a bigger storage (non-zero storage offset)
      embed             F16 storages
      mlp_out_layer0    BF16 storages
  - as SAELens folders (cfg.json + a safetensors file written by hand here; no safetensors package):
      standard, standard with apply_b_dec_to_input false, jumprelu, topk
and expected.json holds, for a fixed input batch x, the features and reconstructions computed here
in float64 from the values actually stored (after F16/BF16 rounding), in the file's own
parameterisation (before any decoder normalisation by the loader).

bad/ holds files every loader must refuse: corrupt and truncated zips, a truncated pickle, and
hostile pickles whose globals are os.system / builtins.eval (never executed by anyone: we only
write their bytes).
"""

import io
import json
import os
import pickle
import shutil
import struct
import zipfile

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "sae")
D, F = 4, 6


def make_dictionary():
    g = torch.Generator().manual_seed(1234)
    enc_w = torch.randn(F, D, generator=g)  # [F, d]
    enc_b = torch.randn(F, generator=g) * 0.3
    dec_dirs = torch.randn(D, F, generator=g)
    dec_dirs = dec_dirs / dec_dirs.norm(dim=0, keepdim=True)
    col_norms = torch.tensor([0.5, 2.0, 1.5, 0.8, 3.0, 1.25])
    dec_w = dec_dirs * col_norms  # [d, F], columns with the norms above
    bias = torch.randn(D, generator=g) * 0.2  # b_D
    threshold = torch.tensor([0.05, 0.4, 0.0, 0.3, 0.1, 0.2])
    x = torch.randn(3, D, generator=g) * 1.5
    return dict(enc_w=enc_w, enc_b=enc_b, dec_w=dec_w, bias=bias, threshold=threshold, x=x)


def forward(p, kind, x, center=True, k=None):
    """Truth in float64 from the stored values: f = act(W_E (x - b_D) + b_E), x_hat = W_D f + b_D."""
    enc_w, enc_b, dec_w, bias = (p[n].double() for n in ("enc_w", "enc_b", "dec_w", "bias"))
    x = x.double()
    pre = ((x - bias) if center else x) @ enc_w.T + enc_b
    if kind == "relu":
        f = torch.relu(pre)
    elif kind == "jumprelu":
        f = torch.relu(pre) * (pre > p["threshold"].double())
    elif kind == "topk":
        top = torch.topk(pre, k, dim=-1)
        f = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    x_hat = f @ dec_w.T + bias
    return f, x_hat


def rounded(p, dtype):
    return {n: t.to(dtype).to(torch.float32) for n, t in p.items()}


def state_dict(p, dtype=torch.float32):
    return {
        "bias": p["bias"].to(dtype).clone(),
        "encoder.weight": p["enc_w"].to(dtype).clone(),
        "encoder.bias": p["enc_b"].to(dtype).clone(),
        "decoder.weight": p["dec_w"].to(dtype).clone(),
    }


def write_dl(folder, sd):
    path = os.path.join(ROOT, "dictionary_learning", folder, "10_6")
    os.makedirs(path, exist_ok=True)
    torch.save(sd, os.path.join(path, "ae.pt"))
    config = {
        "trainer": {
            "dict_class": "AutoEncoder",
            "activation_dim": D,
            "dict_size": F,
            "lm_name": "fixture",
            "submodule_name": folder,
        }
    }
    with open(os.path.join(path, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
    return os.path.join(path, "ae.pt")


def write_safetensors(path, tensors):
    """Hand-written safetensors: u64 header length, JSON header, raw little-endian F32 bytes."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for b in blobs:
            fh.write(b)


def write_saelens(folder, p, architecture, hook_name, center=True, k=None, old_style_topk=False):
    path = os.path.join(ROOT, "saelens", folder)
    os.makedirs(path, exist_ok=True)
    tensors = {
        "W_enc": p["enc_w"].T.contiguous(),  # [d_in, d_sae]
        "b_enc": p["enc_b"],
        "W_dec": p["dec_w"].T.contiguous(),  # [d_sae, d_in]
        "b_dec": p["bias"],
    }
    if architecture == "jumprelu":
        tensors["threshold"] = p["threshold"]
    write_safetensors(os.path.join(path, "sae_weights.safetensors"), tensors)
    cfg = {
        "architecture": "standard" if old_style_topk else architecture,
        "d_in": D,
        "d_sae": F,
        "dtype": "float32",
        "device": "cpu",
        "model_name": "fixture",
        "hook_name": hook_name,
        "hook_layer": 0,
        "hook_head_index": None,
        "apply_b_dec_to_input": center,
        "normalize_activations": "none",
        "activation_fn_str": "topk" if architecture == "topk" else "relu",
    }
    if architecture == "topk":
        if old_style_topk:
            cfg["activation_fn_kwargs"] = {"k": k}
        else:
            cfg["k"] = k
    with open(os.path.join(path, "cfg.json"), "w") as fh:
        json.dump(cfg, fh, indent=2)


def zip_with_pickle(path, pickle_bytes, extra=None):
    """A torch.save-shaped zip (archive/data.pkl, archive/version) around arbitrary pickle bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/version", "3\n")
        for name, data in (extra or {}).items():
            z.writestr(name, data)


def write_bad(good_ae_pt):
    bad = os.path.join(ROOT, "bad")
    os.makedirs(bad, exist_ok=True)
    good = open(good_ae_pt, "rb").read()
    # A zip cut in half: the central directory at the end is gone.
    open(os.path.join(bad, "truncated-zip.pt"), "wb").write(good[: len(good) // 2])
    # A zip whose central directory is damaged (its first entry's signature overwritten).
    damaged = bytearray(good)
    central = damaged.find(b"PK\x01\x02")
    damaged[central : central + 4] = b"JUNK"
    open(os.path.join(bad, "corrupt-zip.pt"), "wb").write(bytes(damaged))
    # Not a zip at all (the pre-1.6 torch.save format is a bare pickle stream).
    open(os.path.join(bad, "not-a-zip.pt"), "wb").write(pickle.dumps({"a": 1}, protocol=2))
    # One flipped bit inside a tensor's bytes: only the CRC-32 can tell.
    flipped = bytearray(good)
    flipped[flipped.find(b"ae/data/1") + len("ae/data/1") + 40] ^= 0x01
    open(os.path.join(bad, "flipped-bit.pt"), "wb").write(bytes(flipped))
    # A real state-dict pickle cut before STOP (its storages all present).
    with zipfile.ZipFile(good_ae_pt) as z:
        pkl_name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        pkl = z.read(pkl_name)
        storages = {"archive/" + n.split("/", 1)[1]: z.read(n) for n in z.namelist() if "/data/" in n}
    zip_with_pickle(os.path.join(bad, "truncated-pickle.pt"), pkl[: len(pkl) * 2 // 3], storages)
    # Hostile pickles: unpickling them would run a shell command / eval. Bytes written by hand for
    # GLOBAL 'os system' (protocol 2), and by the pickle module for STACK_GLOBAL (protocol 4).
    os_system = b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03."
    zip_with_pickle(os.path.join(bad, "hostile-os-system.pt"), os_system)

    class Eval:
        def __reduce__(self):
            return (eval, ("print('pwned')",))

    zip_with_pickle(os.path.join(bad, "hostile-eval.pt"), pickle.dumps(Eval(), protocol=4))
    # A state dict whose tensor points at a storage record that the zip does not hold.
    sd_bytes = io.BytesIO()
    torch.save({"bias": torch.zeros(4)}, sd_bytes)
    with zipfile.ZipFile(io.BytesIO(sd_bytes.getvalue())) as z:
        pkl_name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        zip_with_pickle(os.path.join(bad, "missing-storage.pt"), z.read(pkl_name))


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    p = make_dictionary()
    x = p["x"]

    resid = write_dl("resid_out_layer0", state_dict(p))

    # Non-contiguous flavour: decoder.weight is the transpose of a contiguous [F, d] tensor, and
    # encoder.weight is rows 2..7 of an [8, d] tensor (storage offset 2*d).
    sd = state_dict(p)
    sd["decoder.weight"] = p["dec_w"].T.contiguous().T
    big = torch.zeros(8, D)
    big[2:8] = p["enc_w"]
    sd["encoder.weight"] = big[2:8]
    assert not sd["decoder.weight"].is_contiguous() and sd["encoder.weight"].storage_offset() == 2 * D
    write_dl("attn_out_layer0", sd)

    write_dl("embed", state_dict(p, torch.float16))
    write_dl("mlp_out_layer0", state_dict(p, torch.bfloat16))

    write_saelens("standard", p, "standard", "blocks.0.hook_resid_post")
    write_saelens("no-centering", p, "standard", "blocks.0.hook_resid_pre", center=False)
    write_saelens("jumprelu", p, "jumprelu", "blocks.0.hook_mlp_out")
    write_saelens("topk", p, "topk", "blocks.0.hook_attn_out", k=2)
    write_saelens("topk-old-style", p, "topk", "blocks.1.hook_attn_out", k=2, old_style_topk=True)

    write_bad(resid)

    def entry(params, kind, center=True, k=None):
        f, x_hat = forward(params, kind, x, center, k)
        return {
            "features": f.flatten().tolist(),
            "reconstruction": x_hat.flatten().tolist(),
            "decoderNorms": params["dec_w"].double().norm(dim=0).tolist(),
        }

    expected = {
        "N": x.shape[0],
        "d": D,
        "F": F,
        "x": x.flatten().tolist(),
        "k": 2,
        "threshold": p["threshold"].tolist(),
        "f32": entry(p, "relu"),
        "f16": entry(rounded(p, torch.float16), "relu"),
        "bf16": entry(rounded(p, torch.bfloat16), "relu"),
        "noCentering": entry(p, "relu", center=False),
        "jumprelu": entry(p, "jumprelu"),
        "topk": entry(p, "topk", k=2),
        "params": {n: t.flatten().tolist() for n, t in p.items() if n != "x"},
    }
    with open(os.path.join(ROOT, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1)
    print("wrote", ROOT)


if __name__ == "__main__":
    main()
