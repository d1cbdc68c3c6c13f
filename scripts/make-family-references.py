#!/usr/bin/python3
"""Independent references for the generic TypeScript engine (test/model/family-reference.test.ts).

Each family's forward written here in plain PyTorch (no transformers package) from the semantics of
Hugging Face transformers' modeling_gpt2 / llama / qwen2 / qwen3 / gemma2:
  GPT2LMHeadModel   wte[ids] + wpe[pos]; blocks x + attn(ln_1 x), then + mlp(ln_2 .); Conv1D
                    y = x W + b with W [in, out]; c_attn output split q | k | v; scores / sqrt(head
                    dim); gelu_new (tanh); ln_f; head tied to wte.
  LlamaForCausalLM  RMSNorm w * (x rsqrt(mean x^2 + eps)); q/k/v/o projections (biases when
                    attention_bias), GQA (query head h reads kv head h // (H / KV)); rotary on the
                    whole head with rotate_half, inv_freq from rope_theta and llama3 scaling;
                    SwiGLU down(silu(gate) * up) (biases when mlp_bias); norm; lm_head.
  Qwen2ForCausalLM  Llama with q/k/v biases, no o_proj bias.
  Qwen3ForCausalLM  Llama with RMSNorm of each q and k head over head_dim before rotary.
  Gemma2ForCausalLM embed * float32 sqrt(d); RMSNorm x_hat * (1 + w); sandwich norms
                    (input -> attn -> post_attention -> +residual; pre_feedforward -> mlp ->
                    post_feedforward -> +residual); scores * query_pre_attn_scalar^-0.5, then
                    tanh(s / cap) * cap, then the mask, with a sliding window on even layers (key j
                    masked when j <= i - window); GeGLU with the tanh GELU; final logits
                    tanh(l / cap) * cap; tied head.
Rotary tables are formed in float32 as transformers does, then widened. Weights are float32 as
stored; the computation runs in float64 from them, and torch autograd gives the gradients.

Run: /usr/bin/python3 scripts/make-family-references.py   (Debian's python3-torch, CPU)
Writes test/fixtures/families/<family>/:
  config.json        as transformers writes it (qwen3 uses the 5.x rope_parameters layout)
  model.safetensors  Hugging Face tensor names and layouts (gpt2: the original, prefix-less names
                     with the attn.bias / attn.masked_bias buffers; tied heads have no lm_head)
  expected.json      ids (right-padded with 0), lengths, logits [B*T*V] flat, metric tokens,
                     site_gradients {site: flat} for embed, attn_z_L, attn_L, mlp_L, resid_L,
                     parameter_gradients {HF name: flat} for the embedding, layer 1 and the final
                     norm
The metric is the sum over examples of logits[b, len_b - 1, token_a] - logits[b, len_b - 1, token_b].
"""

import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "families")

IDS = [
    [3, 17, 25, 8, 0, 30, 12, 5, 9],
    [14, 2, 2, 27, 19, 6],
    [21, 11, 4],
]
TOKEN_A, TOKEN_B = 7, 13

LLAMA_SHAPE = {
    "vocab_size": 31,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 24,
    "max_position_embeddings": 16,
    "rms_norm_eps": 1e-5,
    "torch_dtype": "float32",
}

CONFIGS = {
    "gpt2": {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": 31,
        "n_embd": 16,
        "n_layer": 2,
        "n_head": 2,
        "n_inner": None,
        "n_positions": 16,
        "layer_norm_epsilon": 1e-5,
        "activation_function": "gelu_new",
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    },
    "llama": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        **LLAMA_SHAPE,
        "head_dim": 6,
        "hidden_act": "silu",
        "attention_bias": True,
        "mlp_bias": True,
        "tie_word_embeddings": False,
        # R 6, theta 100: wavelengths 6.3, 29, 135 against 32/4 = 8 and 32/1 = 32: three bands
        "rope_theta": 100.0,
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 4.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32,
        },
    },
    "qwen2": {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        **LLAMA_SHAPE,
        "hidden_act": "silu",
        "tie_word_embeddings": True,
        "rope_theta": 1000.0,
        "use_sliding_window": False,
    },
    "qwen3": {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        **LLAMA_SHAPE,
        "head_dim": 6,
        "hidden_act": "silu",
        "attention_bias": False,
        "tie_word_embeddings": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000.0},
    },
    "gemma2": {
        "architectures": ["Gemma2ForCausalLM"],
        "model_type": "gemma2",
        **LLAMA_SHAPE,
        "rms_norm_eps": 1e-6,
        "head_dim": 6,
        "hidden_activation": "gelu_pytorch_tanh",
        "query_pre_attn_scalar": 5,
        "sliding_window": 3,
        "attn_logit_softcapping": 2.0,
        "final_logit_softcapping": 5.0,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
    },
}


def tensor_shapes(family, c):
    """HF tensor names and shapes of each checkpoint (what transformers' state_dict holds)."""
    V = c["vocab_size"]
    if family == "gpt2":
        d, f, P = c["n_embd"], 4 * c["n_embd"], c["n_positions"]
        shapes = [("wte.weight", [V, d]), ("wpe.weight", [P, d])]
        for L in range(c["n_layer"]):
            p = f"h.{L}."
            shapes += [
                (p + "ln_1.weight", [d]),
                (p + "ln_1.bias", [d]),
                (p + "attn.c_attn.weight", [d, 3 * d]),
                (p + "attn.c_attn.bias", [3 * d]),
                (p + "attn.c_proj.weight", [d, d]),
                (p + "attn.c_proj.bias", [d]),
                (p + "ln_2.weight", [d]),
                (p + "ln_2.bias", [d]),
                (p + "mlp.c_fc.weight", [d, f]),
                (p + "mlp.c_fc.bias", [f]),
                (p + "mlp.c_proj.weight", [f, d]),
                (p + "mlp.c_proj.bias", [d]),
            ]
        shapes += [("ln_f.weight", [d]), ("ln_f.bias", [d])]
        return shapes
    d, f = c["hidden_size"], c["intermediate_size"]
    H, KV = c["num_attention_heads"], c["num_key_value_heads"]
    Dh = c.get("head_dim", d // H)
    qkv_bias = family == "qwen2" or c.get("attention_bias", False)
    o_bias = family != "qwen2" and c.get("attention_bias", False)
    mlp_bias = c.get("mlp_bias", False)
    shapes = [("model.embed_tokens.weight", [V, d])]
    for L in range(c["num_hidden_layers"]):
        p = f"model.layers.{L}."
        shapes += [
            (p + "input_layernorm.weight", [d]),
            (p + "self_attn.q_proj.weight", [H * Dh, d]),
            (p + "self_attn.k_proj.weight", [KV * Dh, d]),
            (p + "self_attn.v_proj.weight", [KV * Dh, d]),
            (p + "self_attn.o_proj.weight", [d, H * Dh]),
        ]
        if qkv_bias:
            shapes += [
                (p + "self_attn.q_proj.bias", [H * Dh]),
                (p + "self_attn.k_proj.bias", [KV * Dh]),
                (p + "self_attn.v_proj.bias", [KV * Dh]),
            ]
        if o_bias:
            shapes += [(p + "self_attn.o_proj.bias", [d])]
        if family == "qwen3":
            shapes += [(p + "self_attn.q_norm.weight", [Dh]), (p + "self_attn.k_norm.weight", [Dh])]
        shapes += [(p + "post_attention_layernorm.weight", [d])]
        if family == "gemma2":
            shapes += [
                (p + "pre_feedforward_layernorm.weight", [d]),
                (p + "post_feedforward_layernorm.weight", [d]),
            ]
        shapes += [
            (p + "mlp.gate_proj.weight", [f, d]),
            (p + "mlp.up_proj.weight", [f, d]),
            (p + "mlp.down_proj.weight", [d, f]),
        ]
        if mlp_bias:
            shapes += [
                (p + "mlp.gate_proj.bias", [f]),
                (p + "mlp.up_proj.bias", [f]),
                (p + "mlp.down_proj.bias", [d]),
            ]
    shapes += [("model.norm.weight", [d])]
    if not c["tie_word_embeddings"]:
        shapes += [("lm_head.weight", [V, d])]
    return shapes


def random_weights(family, c, seed):
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in tensor_shapes(family, c):
        noise = torch.randn(shape, generator=g, dtype=torch.float32)
        is_norm = "norm" in name or ".ln_" in name or name.startswith("ln_")
        if is_norm and name.endswith("weight"):
            # Gemma's norms multiply by (1 + w): keep them near 1 as well
            t = (0.0 if family == "gemma2" else 1.0) + 0.2 * noise
        elif name.endswith("bias"):
            t = 0.1 * noise
        elif "wte" in name or "wpe" in name or "embed_tokens" in name:
            t = noise
        else:
            t = 0.3 * noise
        weights[name] = t
    return weights


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary_tables(c, R, T):
    """cos, sin [T, R] in float32 as transformers forms them, widened to float64."""
    params = c.get("rope_parameters") or c.get("rope_scaling") or {}
    theta = params.get("rope_theta", c.get("rope_theta", 10000.0))
    inv_freq = 1.0 / (theta ** (torch.arange(0, R, 2, dtype=torch.int64).float() / R))
    if params.get("rope_type", params.get("type", "default")) == "llama3":
        factor = params["factor"]
        low, high = params["low_freq_factor"], params["high_freq_factor"]
        context = params["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        low_freq_wavelen, high_freq_wavelen = context / low, context / high
        divided = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth = (context / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * divided / factor + smooth * divided
        medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
        inv_freq = torch.where(medium, smoothed, divided)
    freqs = torch.arange(T).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().double(), emb.sin().double()


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def forward(family, c, w, ids):
    """ids [B, T] -> logits [B, T, V] and the sites (gradients retained)."""
    B, T = ids.shape
    sites = {}

    def site(name, t):
        t.retain_grad()
        sites[name] = t
        return t

    def linear(x, name, bias):
        return torch.nn.functional.linear(x, w[name + ".weight"], w[name + ".bias"] if bias else None)

    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    neg = torch.tensor(torch.finfo(torch.float64).min, dtype=torch.float64)

    def attend(q, k, v, scale, softcap=None, window=None):
        """q [B, H, T, Dh], k, v [B, KV, T, Dh] -> heads' outputs concatenated [B, T, H*Dh]."""
        H, KV = q.shape[1], k.shape[1]
        k = k.repeat_interleave(H // KV, dim=1)  # query head h reads kv head h // (H / KV)
        v = v.repeat_interleave(H // KV, dim=1)
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale
        if softcap is not None:
            scores = torch.tanh(scores / softcap) * softcap
        mask = causal
        if window is not None:
            mask = mask & ~torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=-window)
        scores = torch.where(mask, scores, neg)
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
        return out.permute(0, 2, 1, 3).reshape(B, T, -1)

    if family == "gpt2":
        d, H = c["n_embd"], c["n_head"]
        S = d // H
        eps = c["layer_norm_epsilon"]

        def ln(x, p):
            return torch.nn.functional.layer_norm(x, (d,), w[p + ".weight"], w[p + ".bias"], eps)

        def conv1d(x, p):
            return x @ w[p + ".weight"] + w[p + ".bias"]

        h = site("embed", w["wte.weight"][ids] + w["wpe.weight"][torch.arange(T)])
        for L in range(c["n_layer"]):
            p = f"h.{L}."
            qkv = conv1d(ln(h, p + "ln_1"), p + "attn.c_attn")
            q, k, v = (t.view(B, T, H, S).permute(0, 2, 1, 3) for t in qkv.split(d, dim=-1))
            z = site(f"attn_z_{L}", attend(q, k, v, 1 / math.sqrt(S)))
            a = site(f"attn_{L}", conv1d(z, p + "attn.c_proj"))
            mid = h + a
            m = site(f"mlp_{L}", conv1d(gelu_tanh(conv1d(ln(mid, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj"))
            h = site(f"resid_{L}", mid + m)
        logits = ln(h, "ln_f") @ w["wte.weight"].T
        return logits, sites

    d, H, KV = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    Dh = c.get("head_dim", d // H)
    eps = c["rms_norm_eps"]
    gemma = family == "gemma2"
    qkv_bias = family == "qwen2" or c.get("attention_bias", False)
    o_bias = family != "qwen2" and c.get("attention_bias", False)
    mlp_bias = c.get("mlp_bias", False)
    cos, sin = rotary_tables(c, Dh, T)

    def rms(x, name):
        x_hat = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return x_hat * (1 + w[name]) if gemma else w[name] * x_hat

    def heads(x, n):
        return x.view(B, T, n, Dh).permute(0, 2, 1, 3)

    h = w["model.embed_tokens.weight"][ids]
    if gemma:
        h = h * torch.tensor(d**0.5, dtype=torch.float32).double()
    h = site("embed", h)
    for L in range(c["num_hidden_layers"]):
        p = f"model.layers.{L}."
        x = rms(h, p + "input_layernorm.weight")
        q = heads(linear(x, p + "self_attn.q_proj", qkv_bias), H)
        k = heads(linear(x, p + "self_attn.k_proj", qkv_bias), KV)
        v = heads(linear(x, p + "self_attn.v_proj", qkv_bias), KV)
        if family == "qwen3":
            q = rms(q, p + "self_attn.q_norm.weight")
            k = rms(k, p + "self_attn.k_norm.weight")
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if gemma:
            window = c["sliding_window"] if L % 2 == 0 else None
            z = attend(q, k, v, c["query_pre_attn_scalar"] ** -0.5, c["attn_logit_softcapping"], window)
        else:
            z = attend(q, k, v, Dh**-0.5)
        z = site(f"attn_z_{L}", z)
        a = linear(z, p + "self_attn.o_proj", o_bias)
        if gemma:
            a = rms(a, p + "post_attention_layernorm.weight")
        a = site(f"attn_{L}", a)
        mid = h + a
        x = rms(mid, p + ("pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight"))
        act = gelu_tanh if gemma else torch.nn.functional.silu
        gated = act(linear(x, p + "mlp.gate_proj", mlp_bias)) * linear(x, p + "mlp.up_proj", mlp_bias)
        m = linear(gated, p + "mlp.down_proj", mlp_bias)
        if gemma:
            m = rms(m, p + "post_feedforward_layernorm.weight")
        m = site(f"mlp_{L}", m)
        h = site(f"resid_{L}", mid + m)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    logits = rms(h, "model.norm.weight") @ head.T
    if gemma:
        cap = c["final_logit_softcapping"]
        logits = torch.tanh(logits / cap) * cap
    return logits, sites


def write_safetensors(path, tensors):
    """The safetensors layout: u64 header length, JSON header, then the tensors' bytes."""
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def floats(t):
    # 8 significant digits: more than the float32 engine can match
    return [float("%.8g" % v) for v in t.detach().reshape(-1).tolist()]


def write_family(family, seed):
    c = CONFIGS[family]
    stored = random_weights(family, c, seed)
    w = {name: t.double().requires_grad_(True) for name, t in stored.items()}
    lengths = [len(s) for s in IDS]
    T = max(lengths)
    ids = torch.tensor([s + [0] * (T - len(s)) for s in IDS], dtype=torch.long)
    logits, sites = forward(family, c, w, ids)
    metric = sum(logits[b, n - 1, TOKEN_A] - logits[b, n - 1, TOKEN_B] for b, n in enumerate(lengths))
    metric.backward()

    out = os.path.join(OUT, family)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    checkpoint = dict(stored)
    if family == "gpt2":
        # buffers the original GPT-2 checkpoints carry, which the engine must ignore
        for L in range(c["n_layer"]):
            P = c["n_positions"]
            checkpoint[f"h.{L}.attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
            checkpoint[f"h.{L}.attn.masked_bias"] = torch.tensor(-1e4)
    write_safetensors(os.path.join(out, "model.safetensors"), checkpoint)
    outside_layers = {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias", "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    checked = [n for n in stored if ".1." in n or n in outside_layers]
    expected = {
        "ids": ids.tolist(),
        "lengths": lengths,
        "logits": floats(logits),
        "metric": {"token_a": TOKEN_A, "token_b": TOKEN_B, "value": float(metric)},
        "site_gradients": {s: floats(t.grad) for s, t in sites.items()},
        "parameter_gradients": {p: floats(w[p].grad) for p in checked},
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
        f.write("\n")
    print(f"{family}: metric {float(metric):.6f}, {len(stored)} tensors, wrote {out}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    for i, family in enumerate(CONFIGS):
        write_family(family, seed=100 + i)
