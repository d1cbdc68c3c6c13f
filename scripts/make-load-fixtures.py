#!/usr/bin/python3
"""Writes test/fixtures/load/: a safetensors file built by Python with values computed by torch,
as an independent writer for test/io/safetensors.test.ts. Run: /usr/bin/python3 scripts/make-load-fixtures.py

torch-written.safetensors holds F32, F16 and BF16 tensors (torch does the conversions), plus a BOOL
and an I64 tensor like the buffers some Pythia checkpoints carry. The header is written by hand with
json.dumps and deliberately NOT padded, to check readers do not rely on alignment.
torch-written.expected.json holds each tensor's exact values as f32->f64 floats, and pairs of
(f32 source value, torch's f16 bit pattern) for checking our F16 rounding against torch's.

tiny-pythia-bf16/ is a model folder shaped like a Pythia checkpoint on the Hub: a config.json with
the usual extra keys, BF16 weights, and the BOOL/F32 buffers (attention.bias, attention.masked_bias,
rotary_emb.inv_freq) old Pythia checkpoints carry; tiny-pythia-bf16.expected.json has its values.
"""
import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "load")


def raw_bytes(t):
    # bf16 has no numpy dtype: reinterpret its bits as int16 first.
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().tobytes()
    return t.contiguous().numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, tensors, metadata):
    st_dtype = {
        torch.float32: "F32",
        torch.float16: "F16",
        torch.bfloat16: "BF16",
        torch.bool: "BOOL",
        torch.int64: "I64",
    }
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    for name, t in tensors:
        b = raw_bytes(t)
        header[name] = {"dtype": st_dtype[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(3, 5, generator=g) * 3
    specials = torch.tensor([0.0, -0.0, 1.0, -2.0, 65504.0, 1e-7, 2.0**-24, 3.0e-5, float("inf"), float("-inf")])
    tensors = [
        ("f32.matrix", base.clone()),
        ("f16.matrix", base.half()),
        ("bf16.matrix", base.bfloat16()),
        ("f16.specials", specials.half()),
        ("bf16.specials", specials.bfloat16()),
        ("f32.scalar", torch.tensor(2.5)),
        ("f32.empty", torch.zeros(0, 4)),
        ("layers.0.attention.bias", torch.tril(torch.ones(4, 4, dtype=torch.bool)).view(1, 1, 4, 4)),
        ("steps", torch.tensor([7, 8], dtype=torch.int64)),
    ]
    write_safetensors(os.path.join(OUT, "torch-written.safetensors"), tensors, {"format": "pt", "writer": "make-load-fixtures.py"})

    expected = {}
    for name, t in tensors:
        if t.dtype in (torch.float32, torch.float16, torch.bfloat16):
            # json cannot hold inf; encode it as a string.
            vals = [v if np.isfinite(v) else ("inf" if v > 0 else "-inf") for v in t.float().flatten().tolist()]
            expected[name] = {"shape": list(t.shape), "values": vals}

    # f32 -> f16 rounding by torch: random values across the whole range plus ties and edge cases.
    src = torch.cat([
        torch.randn(400, generator=g) * 10.0 ** torch.randint(-8, 5, (400,), generator=g).float(),
        torch.tensor([65504.0, 65519.99, 65520.0, 1e6, -1e6, 2.0**-25, 2.0**-25 * 1.0001, 2.0**-24 * 1.5,
                      2.0**-24 * 2.5, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 6.1035156e-05, 6.09e-05, -0.0, 0.0]),
    ]).float()
    expected["f16_rounding"] = {
        "source": src.tolist(),
        "bits": [b & 0xFFFF for b in src.half().view(torch.int16).tolist()],
    }
    with open(os.path.join(OUT, "torch-written.expected.json"), "w") as f:
        json.dump(expected, f)
    write_tiny_pythia(g)
    print("wrote", OUT)


def write_tiny_pythia(g):
    V, d, L, H, f, T = 13, 8, 2, 2, 32, 16
    config = {
        "architectures": ["GPTNeoXForCausalLM"],
        "bos_token_id": 0,
        "eos_token_id": 0,
        "hidden_act": "gelu",
        "hidden_size": d,
        "initializer_range": 0.02,
        "intermediate_size": f,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": T,
        "model_type": "gpt_neox",
        "num_attention_heads": H,
        "num_hidden_layers": L,
        "rotary_emb_base": 10000,
        "rotary_pct": 0.25,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.24.0",
        "use_cache": True,
        "use_parallel_residual": True,
        "vocab_size": V,
    }
    shapes = {"gpt_neox.embed_in.weight": [V, d]}
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": [d], p + "input_layernorm.bias": [d],
            p + "post_attention_layernorm.weight": [d], p + "post_attention_layernorm.bias": [d],
            p + "attention.query_key_value.weight": [3 * d, d], p + "attention.query_key_value.bias": [3 * d],
            p + "attention.dense.weight": [d, d], p + "attention.dense.bias": [d],
            p + "mlp.dense_h_to_4h.weight": [f, d], p + "mlp.dense_h_to_4h.bias": [f],
            p + "mlp.dense_4h_to_h.weight": [d, f], p + "mlp.dense_4h_to_h.bias": [d],
        })
    shapes.update({"gpt_neox.final_layer_norm.weight": [d], "gpt_neox.final_layer_norm.bias": [d], "embed_out.weight": [V, d]})
    params = [(name, torch.randn(*shape, generator=g).bfloat16()) for name, shape in shapes.items()]
    rot = int((d // H) * 0.25)
    buffers = []
    for i in range(L):
        p = f"gpt_neox.layers.{i}.attention."
        buffers += [
            (p + "bias", torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T)),
            (p + "masked_bias", torch.tensor(-1e9)),
            (p + "rotary_emb.inv_freq", 1.0 / (10000 ** (torch.arange(0, rot, 2).float() / rot))),
        ]
    folder = os.path.join(OUT, "tiny-pythia-bf16")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
    # Sorted by name, as the Hub's files are, so params and buffers interleave.
    write_safetensors(os.path.join(folder, "model.safetensors"), sorted(params + buffers, key=lambda nt: nt[0]), {"format": "pt"})
    with open(os.path.join(OUT, "tiny-pythia-bf16.expected.json"), "w") as fh:
        json.dump({name: t.float().flatten().tolist() for name, t in params}, fh)


if __name__ == "__main__":
    main()
