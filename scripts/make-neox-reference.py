#!/usr/bin/python3
"""Independent reference for the TypeScript GPT-NeoX engine (test/model/gptneox.test.ts).

GPT-NeoX forward with Hugging Face GPTNeoXForCausalLM semantics, written here in plain PyTorch
(no transformers package): embed_in, per layer LN1 -> attention (qkv viewed per token as
[heads, 3, head_size], rotary on the first rotary_ndims dims with the half-split rotate_half,
scores / sqrt(head_size), causal mask, softmax) -> dense; LN2 -> dense_h_to_4h -> exact GELU ->
dense_4h_to_h; parallel (x + attn(ln1 x) + mlp(ln2 x)) or sequential residual; final_layer_norm;
embed_out without bias. Gradients come from torch autograd. The weights are float32 (as stored);
the computation runs in float64 from them, so the expected values are the exact function of those
weights (the rotary table is still formed in float32 as HF does, then widened).

Run: /usr/bin/python3 scripts/make-neox-reference.py   (torch 1.13, CPU)
Writes test/fixtures/neox-reference/<parallel|sequential>/:
  config.json    Hugging Face config keys
  weights.bin    little-endian float32 tensors back to back
  weights.json   {"tensors": [{"name", "shape", "offset" (in floats)}]} in weights.bin order
  expected.json  ids (right-padded with 0), lengths, logits [B*T*V] flat, metric tokens,
                 site_gradients {site: [B*T*d]}, parameter_gradients {HF name: flat}
The metric is sum over examples of logits[b, len_b - 1, token_a] - logits[b, len_b - 1, token_b].
"""

import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "neox-reference")

CONFIG = {
    "architectures": ["GPTNeoXForCausalLM"],
    "model_type": "gpt_neox",
    "vocab_size": 31,
    "hidden_size": 24,
    "num_hidden_layers": 2,
    "num_attention_heads": 3,
    "intermediate_size": 96,
    "rotary_pct": 0.5,
    "rotary_emb_base": 10000,
    "max_position_embeddings": 16,
    "layer_norm_eps": 1e-5,
    "attention_bias": True,
    "hidden_act": "gelu",
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
}

IDS = [
    [3, 17, 25, 8, 0, 30, 12, 5, 9],
    [14, 2, 2, 27, 19, 6],
    [21, 11, 4],
]
TOKEN_A, TOKEN_B = 7, 13
PARAMETERS_TO_CHECK = [
    "gpt_neox.embed_in.weight",
    "gpt_neox.layers.0.input_layernorm.bias",
    "gpt_neox.layers.0.attention.query_key_value.weight",
    "gpt_neox.layers.0.attention.query_key_value.bias",
    "gpt_neox.layers.1.attention.dense.weight",
    "gpt_neox.layers.1.post_attention_layernorm.weight",
    "gpt_neox.layers.1.mlp.dense_h_to_4h.weight",
    "gpt_neox.layers.1.mlp.dense_4h_to_h.bias",
    "gpt_neox.final_layer_norm.weight",
    "embed_out.weight",
]


def parameter_shapes(c):
    d, f, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    shapes = [("gpt_neox.embed_in.weight", [V, d])]
    for L in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{L}."
        shapes += [
            (p + "input_layernorm.weight", [d]),
            (p + "input_layernorm.bias", [d]),
            (p + "attention.query_key_value.weight", [3 * d, d]),
            (p + "attention.query_key_value.bias", [3 * d]),
            (p + "attention.dense.weight", [d, d]),
            (p + "attention.dense.bias", [d]),
            (p + "post_attention_layernorm.weight", [d]),
            (p + "post_attention_layernorm.bias", [d]),
            (p + "mlp.dense_h_to_4h.weight", [f, d]),
            (p + "mlp.dense_h_to_4h.bias", [f]),
            (p + "mlp.dense_4h_to_h.weight", [d, f]),
            (p + "mlp.dense_4h_to_h.bias", [d]),
        ]
    shapes += [
        ("gpt_neox.final_layer_norm.weight", [d]),
        ("gpt_neox.final_layer_norm.bias", [d]),
        ("embed_out.weight", [V, d]),
    ]
    return shapes


def random_weights(c, seed):
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in parameter_shapes(c):
        noise = torch.randn(shape, generator=g, dtype=torch.float32)
        if "norm" in name and name.endswith("weight"):
            t = 1 + 0.2 * noise
        elif name.endswith("bias"):
            t = 0.1 * noise
        elif "embed" in name:
            t = noise
        else:
            t = 0.3 * noise
        weights[name] = t
    return weights


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(c, w, ids):
    """ids [B, T] -> logits [B, T, V] and the site tensors (with retained gradients)."""
    B, T = ids.shape
    d, H = c["hidden_size"], c["num_attention_heads"]
    S = d // H
    R = int(S * c["rotary_pct"])
    eps = c["layer_norm_eps"]
    sites = {}

    def site(name, t):
        t.retain_grad()
        sites[name] = t
        return t

    def ln(x, prefix):
        return torch.nn.functional.layer_norm(x, (d,), w[prefix + ".weight"], w[prefix + ".bias"], eps)

    def linear(x, prefix, bias=True):
        return torch.nn.functional.linear(x, w[prefix + ".weight"], w[prefix + ".bias"] if bias else None)

    # Rotary tables as Hugging Face builds them, in float32.
    inv_freq = 1.0 / (c["rotary_emb_base"] ** (torch.arange(0, R, 2).float() / R))
    t = torch.arange(T).float()
    freqs = torch.einsum("i,j->ij", t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().double(), emb.sin().double()  # [T, R]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))

    def attention(x, prefix):
        qkv = linear(x, prefix + ".query_key_value").view(B, T, H, 3 * S)
        q = qkv[..., :S].permute(0, 2, 1, 3)
        k = qkv[..., S : 2 * S].permute(0, 2, 1, 3)
        v = qkv[..., 2 * S :].permute(0, 2, 1, 3)
        q = torch.cat((q[..., :R] * cos + rotate_half(q[..., :R]) * sin, q[..., R:]), dim=-1)
        k = torch.cat((k[..., :R] * cos + rotate_half(k[..., :R]) * sin, k[..., R:]), dim=-1)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(S)
        scores = torch.where(causal, scores, torch.tensor(torch.finfo(scores.dtype).min))
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, T, d)
        return linear(out, prefix + ".dense")

    def mlp(x, prefix):
        h = torch.nn.functional.gelu(linear(x, prefix + ".dense_h_to_4h"))
        return linear(h, prefix + ".dense_4h_to_h")

    h = site("embed", w["gpt_neox.embed_in.weight"][ids])
    for L in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{L}"
        a = site(f"attn_{L}", attention(ln(h, p + ".input_layernorm"), p + ".attention"))
        if c["use_parallel_residual"]:
            m = site(f"mlp_{L}", mlp(ln(h, p + ".post_attention_layernorm"), p + ".mlp"))
            h = m + a + h
        else:
            mid = a + h
            m = site(f"mlp_{L}", mlp(ln(mid, p + ".post_attention_layernorm"), p + ".mlp"))
            h = m + mid
        h = site(f"resid_{L}", h)
    logits = linear(ln(h, "gpt_neox.final_layer_norm"), "embed_out", bias=False)
    return logits, sites


def floats(t):
    # 9 significant digits: more than the float32 engine can match
    return [float("%.9g" % v) for v in t.detach().reshape(-1).tolist()]


def write_variant(name, parallel, seed):
    c = dict(CONFIG, use_parallel_residual=parallel)
    stored = random_weights(c, seed)
    w = {name: t.double().requires_grad_(True) for name, t in stored.items()}
    lengths = [len(s) for s in IDS]
    T = max(lengths)
    ids = torch.tensor([s + [0] * (T - len(s)) for s in IDS], dtype=torch.long)
    logits, sites = forward(c, w, ids)
    metric = sum(logits[b, n - 1, TOKEN_A] - logits[b, n - 1, TOKEN_B] for b, n in enumerate(lengths))
    metric.backward()

    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    index, offset = [], 0
    with open(os.path.join(out, "weights.bin"), "wb") as f:
        for pname, shape in parameter_shapes(c):
            t = stored[pname].contiguous()
            f.write(t.numpy().astype("<f4").tobytes())
            index.append({"name": pname, "shape": shape, "offset": offset})
            offset += t.numel()
    with open(os.path.join(out, "weights.json"), "w") as f:
        json.dump({"format": "little-endian float32, back to back", "tensors": index}, f, indent=1)
        f.write("\n")
    expected = {
        "ids": ids.tolist(),
        "lengths": lengths,
        "logits": floats(logits),
        "metric": {"token_a": TOKEN_A, "token_b": TOKEN_B, "value": float(metric)},
        "site_gradients": {s: floats(t.grad) for s, t in sites.items()},
        "parameter_gradients": {p: floats(w[p].grad) for p in PARAMETERS_TO_CHECK},
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
        f.write("\n")
    print(f"{name}: metric {float(metric):.6f}, wrote {out}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    write_variant("parallel", True, seed=1234)
    write_variant("sequential", False, seed=5678)
