#!/usr/bin/python3
"""PyTorch reference for cmcr's RoBERTa text tower of LAION-CLAP (src/encoders/roberta.c).

  clap_ref_roberta.py --out DIR --size small|full|tiny
  clap_ref_roberta.py --bench [--size full] [--batch 32] [--threads 2] [--runs 5]

Own nn.Module code (transformers is not used) with the semantics of Hugging Face's
RobertaModel in eval mode and CLAP's encode_text (pooler_output, then text_projection =
Linear -> ReLU -> Linear), and a state dict whose keys are exactly those of
630k-fusion-best.pt's text tower without "module.": text_branch.* (including the int64
buffer text_branch.embeddings.position_ids) and text_projection.{0,2}.*. Importable:
RobertaTower(SIZES[...]), init_weights(m, seed), save_safetensors(state, path).

Semantics (Hugging Face modeling_roberta.py, eager attention):
  the attention mask is the tokenizer's: 1 up to the row's last id that is not <pad> (1), 0
  after it (so a "<pad>" written in a prompt is attended to, as Hugging Face's tokenizer's
  attention_mask says); position ids = 1 + cumsum(ids != 1) * (ids != 1) (real tokens from 2,
  every id 1 takes 1: create_position_ids_from_input_ids);
  x = LayerNorm((word[ids] + token_type[0]) + position[pos]), eps 1e-5;
  each layer (post-LN): scores = q k^T / sqrt(64) + (1 - mask) * float32 min over keys,
  softmax; h = LN(x + dense(attn)); x = LN(h + dense(GELU(intermediate(h)))), exact GELU;
  pooled = tanh(pooler.dense(x[:, 0])); emb = proj2(relu(proj0(pooled))), NOT normalised.

--out DIR writes DIR/<size>/: model.safetensors (float32, keys as above), ids.npy (n x 77
int32: random lengths 2..77 including a full 77 and a "<s></s>" one, ids 3..vocab-1 between
<s> = 0 and </s> = 2, padded with 1), emb.npy (float32 reference) and emb_bf16.npy (the same
under PyTorch's bfloat16 CPU autocast, for reporting); edge_ids.npy / edge_emb.npy: a pad
between real tokens, a row of pads only, a row starting with a pad; bench_ids.npy: 32 prompts
of 8..12 tokens (the speed measurement).
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_common import save_safetensors  # noqa: E402  (one writer for every fixture)

CONTEXT = 77
PAD = 1
SIZES = {
    # width 128: two heads of 64; embed 96 (not 512) so that sizes read from shapes are tested
    "small": dict(vocab=50265, positions=514, width=128, layers=2, mlp=512, embed=96, types=1),
    # the fuzz seed's header (fuzz/make_seeds.sh): 8 K weights
    "tiny": dict(vocab=16, positions=79, width=64, layers=1, mlp=64, embed=8, types=1),
    "full": dict(vocab=50265, positions=514, width=768, layers=12, mlp=3072, embed=512, types=1),  # roberta-base
}


class Named(nn.Module):
    """An empty module: only a place in the state dict's key hierarchy."""


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        w, mlp = c["width"], c["mlp"]
        self.attention = Named()
        self.attention.self = Named()
        for k in ("query", "key", "value"):
            setattr(self.attention.self, k, nn.Linear(w, w))
        self.attention.output = Named()
        self.attention.output.dense = nn.Linear(w, w)
        self.attention.output.LayerNorm = nn.LayerNorm(w, eps=1e-5)
        self.intermediate = Named()
        self.intermediate.dense = nn.Linear(w, mlp)
        self.output = Named()
        self.output.dense = nn.Linear(mlp, w)
        self.output.LayerNorm = nn.LayerNorm(w, eps=1e-5)
        self.heads = w // 64

    def forward(self, x, add_mask):
        n, t, w = x.shape
        h, d = self.heads, w // self.heads
        s = self.attention.self
        q, k, v = (f(x).view(n, t, h, d).permute(0, 2, 1, 3) for f in (s.query, s.key, s.value))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + add_mask
        a = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).reshape(n, t, w)
        o = self.attention.output
        x = o.LayerNorm(o.dense(a) + x)
        i = nn.functional.gelu(self.intermediate.dense(x))
        return self.output.LayerNorm(self.output.dense(i) + x)


class RobertaTower(nn.Module):
    """text_branch (RobertaModel) + text_projection: ids (n x 77) -> n x embed."""

    def __init__(self, c):
        super().__init__()
        w = c["width"]
        tb = self.text_branch = Named()
        tb.embeddings = Named()
        tb.embeddings.word_embeddings = nn.Embedding(c["vocab"], w)
        tb.embeddings.position_embeddings = nn.Embedding(c["positions"], w)
        tb.embeddings.token_type_embeddings = nn.Embedding(c["types"], w)
        tb.embeddings.LayerNorm = nn.LayerNorm(w, eps=1e-5)
        # in the real checkpoint, unused by the forward (positions come from the ids)
        tb.embeddings.register_buffer("position_ids", torch.arange(c["positions"]).expand((1, -1)).clone())
        tb.encoder = Named()
        tb.encoder.layer = nn.ModuleList(Layer(c) for _ in range(c["layers"]))
        tb.pooler = Named()
        tb.pooler.dense = nn.Linear(w, w)
        self.text_projection = nn.Sequential(nn.Linear(w, c["embed"]), nn.ReLU(), nn.Linear(c["embed"], c["embed"]))

    def forward(self, ids):
        ids = ids.long()
        e = self.text_branch.embeddings
        real = (ids != PAD).int()
        pos = torch.cumsum(real, dim=1).type_as(real) * real + PAD
        last = torch.where(real.bool(), torch.arange(ids.shape[1]), torch.full_like(ids, -1)).max(dim=1).values
        mask = (torch.arange(ids.shape[1])[None, :] <= last[:, None]).int()
        x = e.word_embeddings(ids) + e.token_type_embeddings(torch.zeros_like(ids))
        x = e.LayerNorm(x + e.position_embeddings(pos.long()))
        add_mask = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.text_branch.encoder.layer:
            x = layer(x, add_mask)
        pooled = torch.tanh(self.text_branch.pooler.dense(x[:, 0]))
        return self.text_projection(pooled)


def init_weights(m, seed):
    """Deterministic random weights at roberta-base's scales (std 0.02), LayerNorms near 1/0, the
    pooler and projection at 1/sqrt(inputs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "LayerNorm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            elif name.startswith(("text_projection", "text_branch.pooler")) and name.endswith("weight"):
                # unit-scale outputs, so that the 1e-4 tolerance is a tight one
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))


def prompt(rng, length, vocab):
    """<s> ids </s> padded with 1 to 77: length real tokens (>= 2)."""
    row = np.full(CONTEXT, PAD, dtype=np.int32)
    row[0] = 0
    row[1:length - 1] = rng.integers(3, vocab, length - 2)
    row[length - 1] = 2
    return row


def batch(rng, lengths, vocab):
    return np.stack([prompt(rng, n, vocab) for n in lengths])


def edge_ids(rng, vocab):
    """Pads where the tokenizer never puts them: cmcr must still match Hugging Face."""
    inner = prompt(rng, 12, vocab)
    inner[4] = inner[7] = PAD              # "<pad>" written in a prompt: attended to, position 1
    pads = np.full(CONTEXT, PAD, np.int32)  # no real token at all
    first = prompt(rng, 9, vocab)
    first[0] = PAD                          # the pooled row is a pad
    return np.stack([inner, pads, first, prompt(rng, 5, vocab)])


def run(m, ids, bf16=False):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return m(torch.from_numpy(ids)).float().numpy()


def make(out, size, seed):
    c = SIZES[size]
    d = os.path.join(out, size)
    os.makedirs(d, exist_ok=True)
    m = RobertaTower(c).eval()
    init_weights(m, seed)
    save_safetensors(m.state_dict(), os.path.join(d, "model.safetensors"))
    rng = np.random.default_rng(seed)
    lengths = [77, 2] + list(rng.integers(2, 78, 6 if size == "full" else 10))
    ids = batch(rng, lengths, c["vocab"])
    np.save(os.path.join(d, "ids.npy"), ids)
    np.save(os.path.join(d, "emb.npy"), run(m, ids))
    np.save(os.path.join(d, "emb_bf16.npy"), run(m, ids, True))
    edge = edge_ids(rng, c["vocab"])
    np.save(os.path.join(d, "edge_ids.npy"), edge)
    np.save(os.path.join(d, "edge_emb.npy"), run(m, edge))
    np.save(os.path.join(d, "bench_ids.npy"), batch(rng, rng.integers(8, 13, 32), c["vocab"]))


def bench(size, n, threads, runs):
    """Prompts/s of the reference on n prompts of 8..12 tokens padded to 77 (as CLAP runs it)."""
    torch.set_num_threads(threads)
    c = SIZES[size]
    m = RobertaTower(c).eval()
    init_weights(m, 1)
    full = torch.from_numpy(batch(np.random.default_rng(2), np.random.default_rng(3).integers(8, 13, n), c["vocab"]))
    longest = int((full != PAD).sum(1).max())
    # as CLAP runs it (77 ids), and cut to the batch's longest prompt (what cmcr runs)
    for ids, how in ((full, "padded to 77"), (full[:, :longest], f"cut to the longest, {longest}")):
        for prec in ("f32", "bf16"):
            times = []
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                m(ids)
                for _ in range(runs):
                    t = time.perf_counter()
                    m(ids)
                    times.append(time.perf_counter() - t)
            med = sorted(times)[len(times) // 2]
            print(f"torch {prec:4} {size} RoBERTa: {n} prompts of 8..12 tokens {how}, {threads} threads: "
                  f"{n / med:.1f} prompts/s (median of {runs}: {med * 1000:.1f} ms)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if a.bench:
        bench(a.size, a.batch, a.threads, a.runs)
        return
    if not a.out:
        ap.error("--out is required")
    torch.set_num_threads(2)
    make(a.out, a.size, 7 if a.size == "small" else 8)


if __name__ == "__main__":
    main()
