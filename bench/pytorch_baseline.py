"""PyTorch CPU baseline for `npm run bench`'s engine numbers, doing the work bench/engine.ts does:
Pythia-70M-shaped GPT-NeoX (parallel residual, rotary 0.25, exact GELU), random N(0, 0.02)
weights (layer-norm gains 1, biases 0), batch 32 x 16, token ids (i*7919+13) mod V.
  forward:          every layer at every position, logits at the last token only (B rows).
  forward+backward: the same forward keeping what autograd needs, then the gradient of
                    sum_b logit[b,1] - logit[b,2] at the last token with respect to every site
                    (embed, attn_L, mlp_L, resid_L); no parameter gradients (weights have
                    requires_grad False); the top layer's MLP backward runs on the B last rows
                    only, as the engine's does (the metric's gradient is zero at the other rows).
Timing as the engine's: 2 untimed warm-up runs, 9 timed runs, median and best.
bench/engine.ts runs it with Debian's python (/usr/bin/python3 + python3-torch) and the same
thread count (SFC_THREADS) and reads the JSON line it prints last. Standalone:
    SFC_THREADS=2 /usr/bin/python3 bench/pytorch_baseline.py
Not part of the product or the tests; it only gives the engine a reference point on this machine."""
import json, math, os, resource, statistics, sys, time

threads = int(os.environ.get("SFC_THREADS") or os.cpu_count())
# OpenBLAS (under torch's sgemm) reads its own thread count when it loads.
os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
os.environ["OMP_NUM_THREADS"] = str(threads)
import torch  # noqa: E402

torch.set_num_threads(threads)
torch.manual_seed(0)
d, L, H, V, f, T, B = 512, 6, 8, 50304, 2048, 16, 32
hs, rot = d // H, int(d // H * 0.25)
WARMUP, RUNS = 2, 9
F = torch.nn.functional


def normal(*shape):
    return torch.randn(*shape) * 0.02


class Layer:
    def __init__(s):
        s.ln1_w, s.ln1_b, s.ln2_w, s.ln2_b = torch.ones(d), torch.zeros(d), torch.ones(d), torch.zeros(d)
        s.qkv_w, s.qkv_b = normal(3 * d, d), torch.zeros(3 * d)
        s.dense_w, s.dense_b = normal(d, d), torch.zeros(d)
        s.up_w, s.up_b = normal(f, d), torch.zeros(f)
        s.down_w, s.down_b = normal(d, f), torch.zeros(d)

    def attn(s, x):
        q, k, v = F.linear(F.layer_norm(x, (d,), s.ln1_w, s.ln1_b), s.qkv_w, s.qkv_b).view(B, T, H, 3, hs).permute(3, 0, 2, 1, 4)
        q, k = rope(q), rope(k)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        att = att.masked_fill(MASK, float("-inf")).softmax(-1)
        return F.linear((att @ v).transpose(1, 2).reshape(B, T, d), s.dense_w, s.dense_b)

    def mlp(s, x):
        return F.linear(F.gelu(F.linear(F.layer_norm(x, (d,), s.ln2_w, s.ln2_b), s.up_w, s.up_b)), s.down_w, s.down_b)


inv = 10000 ** (-torch.arange(0, rot, 2).float() / rot)
ang = torch.outer(torch.arange(T).float(), inv)
COS, SIN = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
MASK = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)


def rope(x):
    r, p = x[..., :rot], x[..., rot:]
    rh = torch.cat([-r[..., rot // 2:], r[..., : rot // 2]], -1)
    return torch.cat([r * COS + rh * SIN, p], -1)


embed_in, layers = normal(V, d), [Layer() for _ in range(L)]
lnf_w, lnf_b, embed_out = torch.ones(d), torch.zeros(d), normal(V, d)
ids = torch.tensor([(i * 7919 + 13) % V for i in range(B * T)]).view(B, T)
# Weights are plain tensors with requires_grad False: autograd computes no parameter gradients.


def run(backward):
    sites = []

    def site(t):
        if backward:
            t.retain_grad()
        sites.append(t)
        return t

    h = F.embedding(ids, embed_in)
    if backward:
        h.requires_grad_(True)  # the leaf whose gradient is the embed site's
    site(h)
    for i, l in enumerate(layers):
        a = site(l.attn(h))
        if backward and i == L - 1:
            # The top layer's MLP: the last rows with gradients, the others without.
            with torch.no_grad():
                m_rest = l.mlp(h[:, :-1])
            m = site(torch.cat([m_rest, l.mlp(h[:, -1:])], 1))
        else:
            m = site(l.mlp(h))
        h = site(h + a + m)
    last = F.layer_norm(h[:, -1], (d,), lnf_w, lnf_b)
    logits = F.linear(last, embed_out)  # [B, V]: last token only
    if backward:
        (logits[:, 1] - logits[:, 2]).sum().backward()
        assert all(s.grad is not None for s in sites) and len(sites) == 1 + 3 * L
    return logits


def time_runs(backward):
    ts = []
    for i in range(WARMUP + RUNS):
        t = time.perf_counter()
        if backward:
            run(True)
        else:
            with torch.no_grad():
                run(False)
        ts.append(time.perf_counter() - t)
    ts = sorted(ts[WARMUP:])
    return {"median": ts[RUNS // 2], "best": ts[0]}


forward = time_runs(False)
forward_backward = time_runs(True)
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
print(json.dumps({
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    "forward": forward,
    "forward_backward": forward_backward,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
