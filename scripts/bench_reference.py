#!/usr/bin/python3
"""PyTorch reference timings for bench/run.sh (docs/benchmarks.md): the same problems as the
C benchmarks, one per invocation so that each reports its own peak RSS.

  bench_reference.py train --batch 4096 [--steps 7]       one C-MCR training step (clap-clip)
  bench_reference.py aggregate --nq 16384 --nm 65536       blocked full-softmax memory aggregation
  bench_reference.py project --model M.safetensors --inp X.npy --out Y.npy
  bench_reference.py retrieval --nq 10000 --ng 1000000     blocked matmul + top-10 + rank of the truth

Every command takes --threads (torch.set_num_threads) and prints a line
"RESULT bench=... impl=pytorch ... sec=S rate=R rss_kib=K core=C". The projector modules are
those of scripts/reference_train.py (imported). Run with Debian's python3-torch: /usr/bin/python3.
"""
import argparse
import ctypes
import json
import math
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_train as ref  # noqa: E402


def blas_core():
    """OpenBLAS kernel set of the library torch loaded (same soname, so the same handle)."""
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if "libopenblas" in path:
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return lib.openblas_get_corename().decode()
            except OSError:
                pass
    return "none"


def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def unit_rows(n, d, gen):
    return F.normalize(torch.rand(n, d, generator=gen) - 0.5, dim=1)


def result(**kw):
    kw.setdefault("impl", "pytorch")
    kw.update(rss_kib=rss_kib(), core=blas_core(), threads=torch.get_num_threads())
    print("RESULT " + " ".join(f"{k}={v}" for k, v in kw.items()), flush=True)


def infonce(za, zb, tau):
    return ref.infonce(za, zb, tau)


def bench_train(a):
    """The step of cmcr's trainer: gather a batch of the four inputs, N(0, sigma2) noise and
    re-normalise, both heads on the four inputs, native + pseudo InfoNCE + lambda * intra,
    backward, Adam (torch.optim.Adam, no weight decay). --bf16-autocast runs the forward and the
    loss under CPU autocast to bfloat16 (PyTorch's mixed precision: bf16 matmul inputs and
    results, BatchNorm and normalisation in bf16), the reference for cmcr's --precision bf16
    (which keeps everything but the products' inputs in float32)."""
    D, H, O, B = 512, 1024, 512, a.batch
    tau, sigma2, lam = 0.01, 0.004, 0.1
    gen = torch.Generator().manual_seed(1)
    n = 3 * B
    data = [unit_rows(n, D, gen) for _ in range(4)]  # s_A, x_A, s_B, y_B
    rss_data = rss_kib()
    head_a, head_b = ref.TwoLayer(D, H, O), ref.TwoLayer(D, H, O)
    params = list(head_a.parameters()) + list(head_b.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    perm = torch.randperm(n, generator=gen)
    std = math.sqrt(sigma2)
    times, loss = [], None
    for k in range(a.steps + 1):
        t0 = time.perf_counter()
        idx = perm[(k % 3) * B:(k % 3 + 1) * B]
        inp = [F.normalize(x[idx] + torch.randn(B, D) * std, dim=1) for x in data]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16_autocast):
            z = [F.normalize(head_a(inp[0]), dim=1), F.normalize(head_a(inp[1]), dim=1),
                 F.normalize(head_b(inp[2]), dim=1), F.normalize(head_b(inp[3]), dim=1)]
            native = infonce(z[0], z[2], tau)
            pseudo = infonce(z[1], z[3], tau)
            intra = (z[0] - z[1]).norm(dim=1).mean() + (z[2] - z[3]).norm(dim=1).mean()
            loss = native + pseudo + lam * intra
        opt.zero_grad()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if k > 0:
            times.append(dt)
    med = statistics.median(times)
    nparams = sum(p.numel() for p in params)
    base = 4 * n * D * 4 + 3 * nparams * 4
    print(f"pytorch train step batch {B}{' (bf16 autocast)' if a.bf16_autocast else ''}: median {med:.4f} s over {a.steps} steps (min {min(times):.4f}, max "
          f"{max(times):.4f}), {B / med:.0f} samples/s, loss {loss.item():.4f}, peak RSS {rss_kib() / 1024:.1f} MiB "
          f"({rss_data / 1024:.1f} MiB after generating the data)")
    result(bench="train", impl="pytorch-bf16-autocast" if a.bf16_autocast else "pytorch", batch=B, sec=f"{med:.6f}", rate=f"{B / med:.2f}", base_bytes=base)


def bench_aggregate(a):
    """out = normalize(softmax(q . M^T / tau) M), queries in blocks, full softmax over the
    whole memory for each block (the method's full-softmax aggregation)."""
    gen = torch.Generator().manual_seed(3)
    q = torch.rand(a.nq, a.dim, generator=gen) - 0.5
    m = torch.rand(a.nm, a.dim, generator=gen) - 0.5
    out = torch.empty(a.nq, a.dim)
    if a.query_block <= 0:
        a.query_block = min(1024, max(64, 2 ** 28 // a.nm))
    times = []
    with torch.no_grad():
        for _ in range(a.reps):
            t0 = time.perf_counter()
            mn = F.normalize(m, dim=1)
            for i in range(0, a.nq, a.query_block):
                qb = F.normalize(q[i:i + a.query_block], dim=1)
                s = qb @ mn.T
                w = torch.softmax(s.div_(a.tau_mem), dim=1)
                del s
                out[i:i + a.query_block] = F.normalize(w @ mn, dim=1)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    gflop = 4.0 * a.nq * a.nm * a.dim / 1e9
    print(f"pytorch aggregate nq={a.nq} nm={a.nm} dim={a.dim} query block {a.query_block}: {med:.3f} s "
          f"(median of {a.reps}), {gflop / med:.1f} GFLOP/s, {a.nq / med:.0f} queries/s, "
          f"peak RSS {rss_kib() / 1024:.1f} MiB")
    result(bench="aggregate", nq=a.nq, nm=a.nm, sec=f"{med:.6f}", rate=f"{a.nq / med:.2f}", gflop=f"{gflop:.3f}")


def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for k, v in header.items():
            if k == "__metadata__":
                continue
            dt = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "I32": np.int32}[v["dtype"]]
            f.seek(base + v["data_offsets"][0])
            raw = f.read(v["data_offsets"][1] - v["data_offsets"][0])
            out[k] = torch.from_numpy(np.frombuffer(raw, dtype=dt).reshape(v["shape"]).copy())
    return out


def bench_project(a):
    """normalize(f(normalize(x))) with BatchNorm in eval mode, blocks of rows from an mmap'd
    .npy, written to an .npy opened with open_memmap (flushed), like `cmcr project`."""
    t0 = time.perf_counter()
    sd = load_safetensors(a.model)
    side = "Head_A" if a.side == "a" else "Head_B"
    w1 = sd[f"{side}.net1.0.weight"]
    head = ref.TwoLayer(w1.shape[1], w1.shape[0], sd[f"{side}.net2.0.weight"].shape[0])
    head.load_state_dict({k[len(side) + 1:]: v for k, v in sd.items() if k.startswith(side + ".")}, strict=True)
    head.eval()
    x = np.load(a.inp, mmap_mode="r")
    rows = x.shape[0]
    y = np.lib.format.open_memmap(a.out, mode="w+", dtype=np.float32, shape=(rows, head.net2[0].out_features))
    with torch.no_grad():
        for i in range(0, rows, a.block):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + a.block]))
            y[i:i + a.block] = F.normalize(head(F.normalize(xb, dim=1)), dim=1).numpy()
    y.flush()
    del y
    sec = time.perf_counter() - t0
    print(f"pytorch project {rows} rows: {sec:.3f} s, {rows / sec:.0f} rows/s, peak RSS {rss_kib() / 1024:.1f} MiB")
    result(bench="project", rows=rows, sec=f"{sec:.6f}", rate=f"{rows / sec:.2f}")


def bench_retrieval(a):
    """For every query: scores against the whole gallery in blocks, top-10 indices and the rank
    of the ground-truth item (gallery row i for query i), as cmcr_eval_retrieval needs."""
    if a.query_block <= 0:
        a.query_block = 1024
    gen = torch.Generator().manual_seed(7)
    g = F.normalize(torch.rand(a.ng, a.dim, generator=gen) - 0.5, dim=1)
    q = F.normalize(g[:a.nq] + torch.rand(a.nq, a.dim, generator=gen) - 0.5, dim=1)
    t0 = time.perf_counter()
    hits = torch.zeros(3)
    ranks = torch.empty(a.nq, dtype=torch.int64)
    with torch.no_grad():
        for i in range(0, a.nq, a.query_block):
            qb = q[i:i + a.query_block]
            nb = qb.shape[0]
            truth = (qb * g[i:i + nb]).sum(dim=1, keepdim=True)
            top_v = torch.full((nb, 10), -math.inf)
            top_i = torch.zeros((nb, 10), dtype=torch.int64)
            above = torch.zeros(nb, dtype=torch.int64)
            own = torch.arange(i, i + nb)
            for j in range(0, a.ng, a.gallery_block):
                s = qb @ g[j:j + a.gallery_block].T
                gt = s > truth
                # the own item never ranks above itself (its matmul score may round above truth)
                mine = (own >= j) & (own < j + s.shape[1])
                gt[mine.nonzero()[:, 0], own[mine] - j] = False
                above += gt.sum(dim=1)
                v, ix = torch.topk(s, 10, dim=1)
                cv, ci = torch.cat([top_v, v], 1), torch.cat([top_i, ix + j], 1)
                top_v, sel = torch.topk(cv, 10, dim=1)
                top_i = torch.gather(ci, 1, sel)
            ranks[i:i + nb] = above + 1
            for k, kk in enumerate((1, 5, 10)):
                hits[k] += (ranks[i:i + nb] <= kk).sum()
    sec = time.perf_counter() - t0
    gflop = 2.0 * a.nq * a.ng * a.dim / 1e9
    r = (hits / a.nq).tolist()
    print(f"pytorch retrieval {a.nq} x {a.ng}: {sec:.2f} s, {gflop / sec:.1f} GFLOP/s, {a.nq / sec:.0f} queries/s, "
          f"R@1 {r[0]:.4f} R@5 {r[1]:.4f} R@10 {r[2]:.4f}, peak RSS {rss_kib() / 1024:.1f} MiB")
    result(bench="retrieval", nq=a.nq, ng=a.ng, sec=f"{sec:.6f}", rate=f"{a.nq / sec:.2f}", gflop=f"{gflop:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["train", "aggregate", "project", "retrieval"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--nq", type=int, default=16384)
    ap.add_argument("--nm", type=int, default=65536)
    ap.add_argument("--ng", type=int, default=1000000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--tau-mem", type=float, default=0.01)
    ap.add_argument("--query-block", type=int, default=0,
                    help="aggregate: 0 = min(1024, 2^28 / nm) so one block of scores is <= 1 GiB; retrieval: 1024")
    ap.add_argument("--gallery-block", type=int, default=16384)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--bf16-autocast", action="store_true",
                    help="train: forward and loss under torch.autocast(cpu, bfloat16), for comparison only")
    ap.add_argument("--model")
    ap.add_argument("--inp")
    ap.add_argument("--out")
    ap.add_argument("--side", default="a", choices=["a", "b"])
    ap.add_argument("--block", type=int, default=4096)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    {"train": bench_train, "aggregate": bench_aggregate, "project": bench_project,
     "retrieval": bench_retrieval}[a.what](a)


if __name__ == "__main__":
    main()
