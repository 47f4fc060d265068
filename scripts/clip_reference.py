#!/usr/bin/python3
"""PyTorch reference for cmcr's CLIP towers (src/encoders/clip.c).

  clip_reference.py --out DIR --size small|full
  clip_reference.py --bench --size full [--batch 32] [--threads 2] [--runs 5]

Builds a CLIP model from its published description (own nn.Module code: no transformers or
open_clip), with deterministic random weights at the real checkpoints' scales, saves it in
the Hugging Face layout (model.safetensors written here, pytorch_model.bin, config.json) and
in the OpenAI/open_clip state-dict layout (.pt), and writes embeddings of fixed inputs as
.npy: pixels.npy (n x 3 x S x S), ids.npy (n x 77 int32), image_emb.npy, patch_emb.npy
(n x grid^2 x embed), text_emb.npy. Each model goes into its own folder under DIR:

  small/      vision 192 wide (3 heads, 2 layers), text 128 (2 heads, 3 layers), patch 32,
              embed 96: hf/ (safetensors, bin, config), openai.pt, hf_fp16/ and openai_bf16.pt
              with their own expected outputs (ref_fp16/, ref_bf16/: the same model with the
              weights rounded), torchscript.pt (torch.jit.trace; cmcr refuses it), and
              hf_gelu/: the same weights with a config.json that says "gelu" for both
              towers, whose outputs (exact GELU in the MLPs) are ref_gelu/
  small16/    vision 64 (1 head, 1 layer), text 64 (1 head, 1 layer), patch 16, embed 32:
              hf/model.safetensors and openai.pt
  tiny/       (--size tiny) image 8, patch 4, widths 64, one layer each, context 8, vocabulary
              16, embed 8, float16: hf/, openai.pt and openai.safetensors, whose headers seed
              the fuzz target fuzz_clip (fuzz/make_seeds.sh)
  full/       ViT-B/32 (vision 768 x 12, text 512 x 12, embed 512): hf/model.safetensors and
              openai.pt

--bench times the towers at the given batch and thread count (medians of runs), in float32 and
under PyTorch's bfloat16 autocast.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_common import save_safetensors  # noqa: E402  (one writer for every fixture)

SIZES = {
    "small": dict(image=224, patch=32, vw=192, vl=2, tw=128, tl=3, ctx=77, vocab=49408, embed=96),
    "small16": dict(image=224, patch=16, vw=64, vl=1, tw=64, tl=1, ctx=77, vocab=49408, embed=32),
    "tiny": dict(image=8, patch=4, vw=64, vl=1, tw=64, tl=1, ctx=8, vocab=16, embed=8),
    "full": dict(image=224, patch=32, vw=768, vl=12, tw=512, tl=12, ctx=77, vocab=49408, embed=512),
}


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


ACTS = {"quick_gelu": QuickGELU, "gelu": nn.GELU}  # nn.GELU(): exact, erf-based (HF's "gelu")


class Block(nn.Module):
    """Pre-LN residual block: x + attn(ln_1 x), then x + mlp(ln_2 x); heads = width / 64."""

    def __init__(self, w, act="quick_gelu"):
        super().__init__()
        self.heads = w // 64
        self.ln_1 = nn.LayerNorm(w, eps=1e-5)
        self.in_proj = nn.Linear(w, 3 * w)  # rows: q, k, v
        self.out_proj = nn.Linear(w, w)
        self.ln_2 = nn.LayerNorm(w, eps=1e-5)
        self.c_fc = nn.Linear(w, 4 * w)
        self.c_proj = nn.Linear(4 * w, w)
        self.act = ACTS[act]()

    def attn(self, x, causal):
        n, t, w = x.shape
        h, d = self.heads, w // self.heads
        q, k, v = self.in_proj(x).split(w, dim=-1)
        q, k, v = (z.reshape(n, t, h, d).transpose(1, 2) for z in (q, k, v))
        s = (q * d ** -0.5) @ k.transpose(-1, -2)
        if causal:
            s = s + torch.full((t, t), float("-inf")).triu(1)
        o = s.softmax(-1) @ v
        return self.out_proj(o.transpose(1, 2).reshape(n, t, w))

    def forward(self, x, causal):
        x = x + self.attn(self.ln_1(x), causal)
        return x + self.c_proj(self.act(self.c_fc(self.ln_2(x))))


class CLIP(nn.Module):
    def __init__(self, c, act="quick_gelu"):
        super().__init__()
        self.c = c
        self.act = act
        g = c["image"] // c["patch"]
        vw, tw = c["vw"], c["tw"]
        self.conv1 = nn.Conv2d(3, vw, c["patch"], c["patch"], bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(vw))
        self.vpos = nn.Parameter(torch.zeros(g * g + 1, vw))
        self.ln_pre = nn.LayerNorm(vw)
        self.vblocks = nn.ModuleList(Block(vw, act) for _ in range(c["vl"]))
        self.ln_post = nn.LayerNorm(vw)
        self.proj = nn.Parameter(torch.zeros(vw, c["embed"]))  # in x out, as OpenAI's
        self.tok = nn.Embedding(c["vocab"], tw)
        self.tpos = nn.Parameter(torch.zeros(c["ctx"], tw))
        self.tblocks = nn.ModuleList(Block(tw, act) for _ in range(c["tl"]))
        self.ln_final = nn.LayerNorm(tw)
        self.text_projection = nn.Parameter(torch.zeros(tw, c["embed"]))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, pixels):
        x = self.conv1(pixels).flatten(2).transpose(1, 2)  # n x g^2 x W
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], 1) + self.vpos)
        for b in self.vblocks:
            x = b(x, False)
        y = self.ln_post(x) @ self.proj
        return y[:, 0], y[:, 1:]

    def encode_text(self, ids):
        x = self.tok(ids) + self.tpos[:ids.shape[1]]  # ids may stop after the batch's last EOT
        for b in self.tblocks:
            x = b(x, True)
        x = self.ln_final(x)
        eot = ids.argmax(-1)  # the first maximum: the first EOT
        return x[torch.arange(x.shape[0]), eot] @ self.text_projection

    def forward(self, pixels):
        return self.encode_image(pixels)[0]


def init_weights(m, seed):
    """Random weights at the scales of OpenAI's initialisation and checkpoints."""
    g = torch.Generator().manual_seed(seed)

    def normal(p, std, mean=0.0):
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=g) * std + mean)

    c = m.c
    normal(m.conv1.weight, 0.02)
    normal(m.class_embedding, c["vw"] ** -0.5)
    normal(m.vpos, 0.01)
    normal(m.tok.weight, 0.02)
    normal(m.tpos, 0.01)
    normal(m.proj, c["vw"] ** -0.5)
    normal(m.text_projection, c["tw"] ** -0.5)
    for ln in [m.ln_pre, m.ln_post, m.ln_final] + [l for b in list(m.vblocks) + list(m.tblocks)
                                                   for l in (b.ln_1, b.ln_2)]:
        normal(ln.weight, 0.1, 1.0)
        normal(ln.bias, 0.02)
    for b in list(m.vblocks) + list(m.tblocks):
        w = b.in_proj.weight.shape[1]
        normal(b.in_proj.weight, w ** -0.5)
        normal(b.out_proj.weight, w ** -0.5)
        normal(b.c_fc.weight, (2 * w) ** -0.5)
        normal(b.c_proj.weight, (4 * w) ** -0.5)
        for lin in (b.in_proj, b.out_proj, b.c_fc, b.c_proj):
            normal(lin.bias, 0.02)


def openai_params(m):
    """The model's parameters by their OpenAI state-dict names (the tensors themselves)."""
    s = {"visual.conv1.weight": m.conv1.weight, "visual.class_embedding": m.class_embedding,
         "visual.positional_embedding": m.vpos, "visual.ln_pre.weight": m.ln_pre.weight,
         "visual.ln_pre.bias": m.ln_pre.bias, "visual.ln_post.weight": m.ln_post.weight,
         "visual.ln_post.bias": m.ln_post.bias, "visual.proj": m.proj,
         "token_embedding.weight": m.tok.weight, "positional_embedding": m.tpos,
         "ln_final.weight": m.ln_final.weight, "ln_final.bias": m.ln_final.bias,
         "text_projection": m.text_projection, "logit_scale": m.logit_scale}
    for prefix, blocks in (("visual.transformer", m.vblocks), ("transformer", m.tblocks)):
        for i, b in enumerate(blocks):
            p = f"{prefix}.resblocks.{i}."
            s[p + "attn.in_proj_weight"] = b.in_proj.weight
            s[p + "attn.in_proj_bias"] = b.in_proj.bias
            for dst, mod in (("attn.out_proj", b.out_proj), ("ln_1", b.ln_1), ("ln_2", b.ln_2),
                             ("mlp.c_fc", b.c_fc), ("mlp.c_proj", b.c_proj)):
                s[p + dst + ".weight"] = mod.weight
                s[p + dst + ".bias"] = mod.bias
    return s


def openai_state(m):
    return {k: v.detach().clone().contiguous() for k, v in openai_params(m).items()}


def hf_state(m):
    c = m.c
    g = c["image"] // c["patch"]
    s = {"vision_model.embeddings.class_embedding": m.class_embedding,
         "vision_model.embeddings.patch_embedding.weight": m.conv1.weight,
         "vision_model.embeddings.position_embedding.weight": m.vpos,
         "vision_model.embeddings.position_ids": torch.arange(g * g + 1).unsqueeze(0),
         "vision_model.pre_layrnorm.weight": m.ln_pre.weight, "vision_model.pre_layrnorm.bias": m.ln_pre.bias,
         "vision_model.post_layernorm.weight": m.ln_post.weight,
         "vision_model.post_layernorm.bias": m.ln_post.bias,
         "visual_projection.weight": m.proj.t(),
         "text_model.embeddings.token_embedding.weight": m.tok.weight,
         "text_model.embeddings.position_embedding.weight": m.tpos,
         "text_model.embeddings.position_ids": torch.arange(c["ctx"]).unsqueeze(0),
         "text_model.final_layer_norm.weight": m.ln_final.weight,
         "text_model.final_layer_norm.bias": m.ln_final.bias,
         "text_projection.weight": m.text_projection.t(), "logit_scale": m.logit_scale}
    for prefix, blocks in (("vision_model", m.vblocks), ("text_model", m.tblocks)):
        for i, b in enumerate(blocks):
            p = f"{prefix}.encoder.layers.{i}."
            w = b.in_proj.weight.shape[1]
            for j, name in enumerate("qkv"):
                s[p + f"self_attn.{name}_proj.weight"] = b.in_proj.weight[j * w:(j + 1) * w]
                s[p + f"self_attn.{name}_proj.bias"] = b.in_proj.bias[j * w:(j + 1) * w]
            for dst, mod in (("self_attn.out_proj", b.out_proj), ("layer_norm1", b.ln_1),
                             ("layer_norm2", b.ln_2), ("mlp.fc1", b.c_fc), ("mlp.fc2", b.c_proj)):
                s[p + dst + ".weight"] = mod.weight
                s[p + dst + ".bias"] = mod.bias
    return {k: v.detach().clone().contiguous() for k, v in s.items()}


def hf_config(c, act="quick_gelu"):
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": c["embed"],
            "vision_config": {"hidden_size": c["vw"], "num_hidden_layers": c["vl"],
                              "num_attention_heads": c["vw"] // 64, "intermediate_size": 4 * c["vw"],
                              "image_size": c["image"], "patch_size": c["patch"], "hidden_act": act},
            "text_config": {"hidden_size": c["tw"], "num_hidden_layers": c["tl"],
                            "num_attention_heads": c["tw"] // 64, "intermediate_size": 4 * c["tw"],
                            "max_position_embeddings": c["ctx"], "vocab_size": c["vocab"],
                            "hidden_act": act}}


def inputs(c, n, seed):
    """Normalised random pixels, and token rows: SOT, random ids, the first EOT (the largest
    id) at varied positions up to 76 (a full 77-token row), then padding zeros; one row has a
    second EOT after the first, so the pooled position must be the first maximum."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randn(n, 3, c["image"], c["image"], generator=g)
    eot = c["vocab"] - 1
    ids = torch.zeros(n, c["ctx"], dtype=torch.int32)
    ends = [1, c["ctx"] - 1, 5, 17, 40, 76, 2, 30][:n] + [int(x) for x in torch.randint(1, c["ctx"], (max(0, n - 8),), generator=g)]
    for r, e in enumerate(ends):
        ids[r, 0] = eot - 1
        ids[r, 1:e] = torch.randint(0, eot - 1, (e - 1,), generator=g, dtype=torch.int32)
        ids[r, e] = eot
    if n > 2:
        ids[2, 9] = eot  # a second EOT after the first (at 5)
    return pixels, ids


def save_outputs(m, pixels, ids, out):
    os.makedirs(out, exist_ok=True)
    with torch.no_grad():
        img, patches = m.encode_image(pixels)
        txt = m.encode_text(ids.long())
    np.save(os.path.join(out, "image_emb.npy"), img.numpy().astype(np.float32))
    np.save(os.path.join(out, "patch_emb.npy"), patches.contiguous().numpy().astype(np.float32))
    np.save(os.path.join(out, "text_emb.npy"), txt.numpy().astype(np.float32))


def rounded(m, dtype):
    """The same model with every weight rounded to dtype (computed in float32)."""
    r = CLIP(m.c, m.act)
    r.load_state_dict({k: v.to(dtype).float() for k, v in m.state_dict().items()})
    return r.eval()


def halved(state):
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def make(out, name, n, seed, extras, half=False):
    c = SIZES[name]
    m = CLIP(c).eval()
    init_weights(m, seed)
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "hf"), exist_ok=True)
    pixels, ids = inputs(c, n, seed + 1)
    np.save(os.path.join(d, "pixels.npy"), pixels.numpy())
    np.save(os.path.join(d, "ids.npy"), ids.numpy())
    save_outputs(m, pixels, ids, os.path.join(d, "ref"))
    hf = halved(hf_state(m)) if half else hf_state(m)
    save_safetensors(hf, os.path.join(d, "hf", "model.safetensors"))
    with open(os.path.join(d, "hf", "config.json"), "w") as f:
        json.dump(hf_config(c), f, indent=1)
    oa = halved(openai_state(m)) if half else openai_state(m)
    torch.save(oa, os.path.join(d, "openai.pt"))
    if name == "tiny":
        save_safetensors(oa, os.path.join(d, "openai.safetensors"))
    if not extras:
        return
    torch.save(hf, os.path.join(d, "hf", "pytorch_model.bin"))
    os.makedirs(os.path.join(d, "hf_bin"), exist_ok=True)
    torch.save(hf, os.path.join(d, "hf_bin", "pytorch_model.bin"))  # a folder with only the .bin
    os.makedirs(os.path.join(d, "hf_fp16"), exist_ok=True)
    save_safetensors(halved(hf), os.path.join(d, "hf_fp16", "model.safetensors"))
    save_outputs(rounded(m, torch.float16), pixels, ids, os.path.join(d, "ref_fp16"))
    torch.save({k: v.bfloat16() if v.is_floating_point() else v for k, v in openai_state(m).items()},
               os.path.join(d, "openai_bf16.pt"))
    save_outputs(rounded(m, torch.bfloat16), pixels, ids, os.path.join(d, "ref_bf16"))
    torch.jit.save(torch.jit.trace(m, pixels[:1]), os.path.join(d, "torchscript.pt"))
    gelu = CLIP(c, "gelu").eval()  # the same weights with exact GELU, as a Hugging Face folder
    gelu.load_state_dict(m.state_dict())
    save_outputs(gelu, pixels, ids, os.path.join(d, "ref_gelu"))
    os.makedirs(os.path.join(d, "hf_gelu"), exist_ok=True)
    save_safetensors(hf, os.path.join(d, "hf_gelu", "model.safetensors"))
    with open(os.path.join(d, "hf_gelu", "config.json"), "w") as f:
        json.dump(hf_config(c, "gelu"), f, indent=1)


def bench(size, batch, threads, runs):
    torch.set_num_threads(threads)
    c = SIZES[size]
    m = CLIP(c).eval()
    init_weights(m, 1)
    pixels, ids = inputs(c, batch, 2)
    ids = ids.long()
    for prec in ("f32", "bf16"):  # bf16: PyTorch's own CPU autocast
        for what, fn in (("images", lambda: m.encode_image(pixels)), ("prompts", lambda: m.encode_text(ids))):
            times = []
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                fn()
                for _ in range(runs):
                    t = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t)
            med = sorted(times)[len(times) // 2]
            print(f"torch {prec:4} {size} {what}: batch {batch}, {threads} threads: {batch / med:.1f} {what}/s "
                  f"(median of {runs}: {med * 1000:.1f} ms)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--size", choices=["small", "full", "tiny"], required=True)
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
    if a.size == "small":
        make(a.out, "small", 8, 10, True)
        make(a.out, "small16", 3, 20, False)
    elif a.size == "tiny":
        make(a.out, "tiny", 2, 40, False, half=True)
    else:
        make(a.out, "full", 4, 30, False)


if __name__ == "__main__":
    main()
