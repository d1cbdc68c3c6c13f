"""PyTorch CPU baseline for `npm run bench`'s engine numbers: the same Pythia-70M-shaped GPT-NeoX
(random weights), batch 32 x 16, forward and forward+backward of a last-token logit difference
with gradients kept at every site. Run with Debian's python3-torch:
    /usr/bin/python3 bench/pytorch_baseline.py
Not part of the product or the tests; it only gives the engine a reference point on this machine."""
import math, os, resource, statistics, time
import torch

torch.set_num_threads(int(os.environ.get("SFC_THREADS", os.cpu_count())))
torch.manual_seed(0)
d, L, H, V, f, T, B = 512, 6, 8, 50304, 2048, 16, 32
hs, rot = d // H, int(d // H * 0.25)

def lin(o, i, bias=True):
    return torch.nn.Linear(i, o, bias=bias)

class Layer(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.ln1, s.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        s.qkv, s.dense, s.up, s.down = lin(3 * d, d), lin(d, d), lin(f, d), lin(d, f)

    def attn(s, x):
        q, k, v = s.qkv(x).view(B, T, H, 3, hs).permute(3, 0, 2, 1, 4)
        inv = 10000 ** (-torch.arange(0, rot, 2).float() / rot)
        ang = torch.outer(torch.arange(T).float(), inv)
        cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
        def rope(x):
            r, p = x[..., :rot], x[..., rot:]
            rh = torch.cat([-r[..., rot // 2:], r[..., : rot // 2]], -1)
            return torch.cat([r * cos + rh * sin, p], -1)
        q, k = rope(q), rope(k)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        return s.dense((att @ v).transpose(1, 2).reshape(B, T, d))

    def forward(s, h, sites):
        a = s.attn(s.ln1(h)); m = s.down(torch.nn.functional.gelu(s.up(s.ln2(h))))
        for t in (a, m):
            if t.requires_grad: t.retain_grad()
            sites.append(t)
        h = h + a + m
        if h.requires_grad: h.retain_grad()
        sites.append(h)
        return h

emb, layers, lnf, out = torch.nn.Embedding(V, d), [Layer() for _ in range(L)], torch.nn.LayerNorm(d), lin(V, d, False)
for p in [*emb.parameters(), *out.parameters()] + [p for l in layers for p in l.parameters()]:
    torch.nn.init.normal_(p, std=0.02)
ids = torch.randint(0, V, (B, T))

def run(backward):
    sites = []
    h = emb(ids)
    if backward: h.retain_grad()
    sites.append(h)
    for l in layers: h = l(h, sites)
    logits = out(lnf(h))
    if backward:
        m = (logits[:, -1, 1] - logits[:, -1, 2]).sum()
        m.backward()
    return logits

def timeit(backward, reps=7):
    ts = []
    for i in range(reps + 2):
        t = time.perf_counter()
        if backward: run(True)
        else:
            with torch.no_grad(): run(False)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts[2:])

a = torch.randn(4096, 512); b = torch.randn(512, 8192)
t = time.perf_counter(); [a @ b for _ in range(5)]; g = 5 * 2 * 4096 * 512 * 8192 / (time.perf_counter() - t) / 1e9
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
print(f"sgemm [4096x512]x[512x8192]: {g:.1f} GFLOP/s")
print(f"forward {timeit(False):.3f} s, forward+backward {timeit(True):.3f} s (batch {B}x{T})")
print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
