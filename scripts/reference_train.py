#!/usr/bin/python3
"""PyTorch reference of one C-MCR training run, for the parity test (tests/test_train_parity.c).

Writes a small safetensors state file with: the inputs (overlap and memories), the initial
projector weights (official state_dict keys), the noise of every step (so randomness is
shared), the pseudo embeddings, the loss terms and every gradient of step 1, the losses of
10 optimizer steps, and the final weights and BatchNorm statistics.

Run with Debian's python3-torch:  /usr/bin/python3 scripts/reference_train.py OUT.safetensors
The method follows docs/method.md; the projector modules mirror the released C-MCR heads
(two-layer: net1 = Linear+BN+ReLU, net2 = Linear+BN; one-layer: net = Linear+BN+ReLU).
"""
import argparse
import json
import math
import struct
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N, DA, DB, HID, OUT, MA, MB, STEPS = 32, 12, 10, 24, 8, 40, 50, 10
CFG = dict(tau=0.05, tau_mem=0.05, sigma2=0.004, lambda_intra=0.1, lr=1e-2, warmup_steps=3, min_lr=1e-4,
           weight_decay=0.05, beta1=0.9, beta2=0.999, eps=1e-8, momentum=0.1)


class TwoLayer(nn.Module):
    def __init__(self, din, hid, dout):
        super().__init__()
        self.net1 = nn.Sequential(nn.Linear(din, hid), nn.BatchNorm1d(hid), nn.ReLU())
        self.net2 = nn.Sequential(nn.Linear(hid, dout), nn.BatchNorm1d(dout))

    def forward(self, x):
        return self.net2(self.net1(x))


class OneLayer(nn.Module):
    def __init__(self, din, dout):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(din, dout), nn.BatchNorm1d(dout), nn.ReLU())

    def forward(self, x):
        return self.net(x)


class Heads(nn.Module):
    def __init__(self, layers):
        super().__init__()
        if layers == 2:
            self.Head_A, self.Head_B = TwoLayer(DA, HID, OUT), TwoLayer(DB, HID, OUT)
        else:
            self.Head_A, self.Head_B = OneLayer(DA, OUT), OneLayer(DB, OUT)


def aggregate(queries, memory, tau_mem):
    q, m = F.normalize(queries, dim=1), F.normalize(memory, dim=1)
    w = torch.softmax(q @ m.T / tau_mem, dim=1)
    return F.normalize(w @ m, dim=1)


def infonce(za, zb, tau):
    logits = za @ zb.T / tau
    target = torch.arange(za.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def lr_at(step, total):
    """Same schedule as cmcr_train_lr: linear warm-up, then cosine from lr to min_lr."""
    lr, w, lo = CFG["lr"], CFG["warmup_steps"], CFG["min_lr"]
    if w > 0 and step <= w:
        return lr * step / w
    progress = max(0.0, (step - 1 - w) / (total - w))
    return lo + (lr - lo) * 0.5 * (1 + math.cos(math.pi * progress))


def write_safetensors(path, tensors, meta):
    header, offset, blobs = OrderedDict(), 0, []
    if meta:
        header["__metadata__"] = meta
    for name, arr in tensors.items():
        arr = np.array(arr, order="C")  # keeps 0-d arrays 0-d (ascontiguousarray would not)
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[arr.dtype]
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def run(layers, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    data = {k: torch.randn(*shape, generator=gen) for k, shape in
            [("overlap_a", (N, DA)), ("overlap_b", (N, DB)), ("memory_a", (MA, DA)), ("memory_b", (MB, DB))]}
    model = Heads(layers)
    out = OrderedDict((k, v.numpy().copy()) for k, v in data.items())
    for k, v in model.state_dict().items():
        out["init." + k] = v.numpy().copy()
    sa, sb = F.normalize(data["overlap_a"], dim=1), F.normalize(data["overlap_b"], dim=1)
    xa, yb = aggregate(data["overlap_a"], data["memory_a"], CFG["tau_mem"]), aggregate(
        data["overlap_b"], data["memory_b"], CFG["tau_mem"])
    out["pseudo_a"], out["pseudo_b"] = xa.numpy(), yb.numpy()
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() == 2)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": CFG["weight_decay"]},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=CFG["lr"], betas=(CFG["beta1"], CFG["beta2"]), eps=CFG["eps"])
    std = math.sqrt(CFG["sigma2"])
    losses = []
    for step in range(STEPS):
        bases = [sa, xa, sb, yb]
        noise = [torch.randn(b.shape, generator=gen) * std for b in bases]
        for k, n in enumerate(noise):
            out[f"noise.{step}.{k}"] = n.numpy()
        inp = [F.normalize(b + n, dim=1) for b, n in zip(bases, noise)]
        z = [F.normalize(model.Head_A(inp[0]), dim=1), F.normalize(model.Head_A(inp[1]), dim=1),
             F.normalize(model.Head_B(inp[2]), dim=1), F.normalize(model.Head_B(inp[3]), dim=1)]
        native = infonce(z[0], z[2], CFG["tau"])
        pseudo = infonce(z[1], z[3], CFG["tau"])
        intra = (z[0] - z[1]).norm(dim=1).mean() + (z[2] - z[3]).norm(dim=1).mean()
        loss = native + pseudo + CFG["lambda_intra"] * intra
        opt.zero_grad()
        loss.backward()
        if step == 0:
            out["loss1"] = np.array([loss.item(), native.item(), pseudo.item(), intra.item()], dtype=np.float32)
            for n, p in model.named_parameters():
                out["grad." + n] = p.grad.numpy().copy()
        # Every Linear feeds a BatchNorm, so its bias has an exactly zero gradient; autograd
        # returns rounding noise (~1e-9) that Adam would amplify into lr-sized random steps.
        # cmcr keeps the exact zero; so does this reference (see train.c, head_backward).
        for n, p in model.named_parameters():
            if n.endswith(".0.bias"):
                p.grad.zero_()
        lr = lr_at(step + 1, STEPS)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(loss.item())
    out["losses"] = np.array(losses, dtype=np.float32)
    for k, v in model.state_dict().items():
        out["final." + k] = v.numpy().copy()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output .safetensors")
    ap.add_argument("--layers", type=int, default=2, choices=[1, 2])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tensors = run(args.layers, args.seed)
    meta = {k: repr(v) for k, v in CFG.items()}
    meta.update(N=str(N), steps=str(STEPS), layers=str(args.layers), torch=torch.__version__)
    write_safetensors(args.out, tensors, meta)
    print(f"wrote {args.out}: {len(tensors)} tensors, losses {tensors['losses']}")


if __name__ == "__main__":
    main()
