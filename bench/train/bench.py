"""PyTorch side of the training benchmark: the same MFN and MCTN as
src/train/models/{lstm,mfn,mctn}.rs (same equations, same sizes, same losses, AdamW with
gradient-norm clipping 0.8), one training step = forward + backward + optimiser step.

    python bench.py mfn|mctn [steps] [warmup]

Sizes from the environment like examples/train_bench.rs (BENCH_HIDDEN 256, BENCH_T 64,
BENCH_BATCH 16, BENCH_DV 128, BENCH_DA 96); BENCH_THREADS (default 1) sets torch's
intra-op threads. Prints one JSON line.
"""

import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def env(name, default):
    return int(os.environ.get(name, default))


class Lstm(nn.Module):
    """Masked unrolled LSTM, gates (i, f, g, o), input projection for all frames at once."""

    def __init__(self, d_in, h):
        super().__init__()
        self.h = h
        self.input = nn.Linear(d_in, 4 * h)
        self.recurrent = nn.Linear(h, 4 * h, bias=False)
        with torch.no_grad():
            self.input.bias[h : 2 * h] = 1.0

    def forward(self, x, mask=None):
        _, t, _ = x.shape
        xp = self.input(x)
        hs, cs = [], []
        h = c = None
        for s in range(t):
            g = xp[:, s] if h is None else xp[:, s] + self.recurrent(h)
            gi, gf, gg, go = g.chunk(4, 1)
            ig = torch.sigmoid(gi) * torch.tanh(gg)
            cn = ig if c is None else torch.sigmoid(gf) * c + ig
            hn = torch.sigmoid(go) * torch.tanh(cn)
            if mask is not None:
                m = mask[:, s : s + 1]
                if h is None:
                    hn, cn = m * hn, m * cn
                else:
                    hn = h + m * (hn - h)
                    cn = c + m * (cn - c)
            h, c = hn, cn
            hs.append(h)
            cs.append(c)
        return torch.stack(hs, 1), torch.stack(cs, 1)


class Mfn(nn.Module):
    def __init__(self, dv, da, h, m, p=0.2):
        super().__init__()
        self.h, self.m = h, m
        self.lstm_v, self.lstm_a = Lstm(dv, h), Lstm(da, h)
        cs = 4 * h
        self.att1, self.att2 = nn.Linear(cs, h), nn.Linear(h, cs)
        self.prop1, self.prop2 = nn.Linear(cs, h), nn.Linear(h, m)
        self.gate_att = nn.Linear(cs, 2 * h)
        self.gate_mem = nn.Linear(m, 2 * h, bias=False)
        self.gamma1, self.gamma2 = nn.Linear(h, m), nn.Linear(h, m)
        self.head = nn.Linear(2 * h + m, h)
        self.va, self.expr = nn.Linear(h, 2), nn.Linear(h, 8)
        self.drop = nn.Dropout(p)

    def forward(self, v, a, vm, am):
        b, t, _ = v.shape
        v = v * vm.unsqueeze(2)
        a = a * am.unsqueeze(2)
        hv, cv = self.lstm_v(v, vm)
        ha, ca = self.lstm_a(a, am)
        c = torch.cat([cv, ca], 2)
        c_prev = F.pad(c[:, :-1], (0, 0, 1, 0))
        cstar = torch.cat([c_prev, c], 2)
        mlp = lambda l1, l2, x: l2(self.drop(F.relu(l1(x))))
        att = torch.softmax(mlp(self.att1, self.att2, cstar), 2)
        attended = cstar * att
        proposal = torch.tanh(mlp(self.prop1, self.prop2, attended))
        gate_in = self.gate_att(attended)
        mems, mem = [], None
        for s in range(t):
            pre = gate_in[:, s] if mem is None else gate_in[:, s] + self.gate_mem(mem)
            h1, h2 = self.drop(F.relu(pre)).chunk(2, 1)
            g2 = torch.sigmoid(self.gamma2(h2))
            pt = proposal[:, s]
            mem = g2 * pt if mem is None else torch.sigmoid(self.gamma1(h1)) * mem + g2 * pt
            mems.append(mem)
        z = torch.cat([hv, ha, torch.stack(mems, 1)], 2)
        hid = self.drop(F.relu(self.head(z)))
        return torch.tanh(self.va(hid)), self.expr(hid), None


def masked_mse(x, y, mask):
    per_frame = ((x - y) ** 2).mean(2)
    return (per_frame * mask).sum() / mask.sum().clamp_min(1.0)


class Mctn(nn.Module):
    def __init__(self, dv, da, h, p=0.2, wt=0.5, wc=0.5):
        super().__init__()
        self.embed_v, self.embed_a = nn.Linear(dv, h), nn.Linear(da, h)
        self.encoder, self.decoder = Lstm(h, h), Lstm(h, h)
        self.to_audio, self.to_visual = nn.Linear(h, da), nn.Linear(h, dv)
        self.regressor = Lstm(h, h)
        self.head = nn.Linear(h, h)
        self.va, self.expr = nn.Linear(h, 2), nn.Linear(h, 8)
        self.drop = nn.Dropout(p)
        self.wt, self.wc = wt, wc

    def forward(self, v, a, vm, am):
        v = v * vm.unsqueeze(2)
        e, _ = self.encoder(self.embed_v(v), vm)
        aux = None
        if self.training:
            a_hat = self.to_audio(self.decoder(e)[0])
            e_a, _ = self.encoder(self.embed_a(a_hat), vm)
            v_hat = self.to_visual(self.decoder(e_a)[0])
            aux = self.wt * masked_mse(a_hat, a, vm * am) + self.wc * masked_mse(v_hat, v, vm)
        r, _ = self.regressor(self.drop(e))
        hid = self.drop(F.relu(self.head(r)))
        return torch.tanh(self.va(hid)), self.expr(hid), aux


def ccc_loss(pred, target, valid, eps=1e-8):
    w = valid.unsqueeze(2)
    n = w.sum().clamp_min(eps)
    mp = (pred * w).sum((0, 1)) / n
    my = (target * w).sum((0, 1)) / n
    dp, dy = pred - mp, target - my
    vp = (dp * dp * w).sum((0, 1)) / n
    vy = (dy * dy * w).sum((0, 1)) / n
    cov = (dp * dy * w).sum((0, 1)) / n
    ccc = 2 * cov / (vp + vy + (mp - my) ** 2 + eps)
    return 1 - ccc.mean()


def cross_entropy(logits, target, valid, smoothing):
    c = logits.shape[2]
    q = target * (1 - smoothing) + smoothing / c
    per_frame = -(q * torch.log_softmax(logits, 2)).sum(2)
    return (per_frame * valid).sum() / valid.sum().clamp_min(1.0)


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "mfn"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    h, t, b = env("BENCH_HIDDEN", 256), env("BENCH_T", 64), env("BENCH_BATCH", 16)
    dv, da = env("BENCH_DV", 128), env("BENCH_DA", 96)
    threads = env("BENCH_THREADS", 1)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Mfn(dv, da, h, h) if which == "mfn" else Mctn(dv, da, h)
    model.train()
    visual, audio = torch.randn(b, t, dv), torch.randn(b, t, da)
    mask = torch.ones(b, t)
    va = torch.tanh(torch.randn(b, t, 2))
    idx = torch.arange(b * t)
    expr = F.one_hot((idx * 7 + idx // 5) % 8, 8).float().reshape(b, t, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-5, weight_decay=1e-4)
    start = time.perf_counter()
    last = float("nan")
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        p_va, p_expr, aux = model(visual, audio, mask, mask)
        loss = ccc_loss(p_va, va, mask) + cross_entropy(p_expr, expr, mask, 0.1)
        if aux is not None:
            loss = loss + aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.8)
        opt.step()
        last = loss.item()
    secs = time.perf_counter() - start
    print(json.dumps({
        "framework": f"pytorch-{torch.__version__}", "model": which, "hidden": h, "t": t,
        "batch": b, "dv": dv, "da": da, "steps": steps, "threads": threads,
        "seconds": round(secs, 4), "seq_per_s": round(b * steps / secs, 3), "loss": round(last, 5),
    }))


if __name__ == "__main__":
    main()
