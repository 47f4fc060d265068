#!/usr/bin/python3
"""What `cmcr embed` computes, in PyTorch: image files and prompts to CLIP embeddings.

  clip_embed_reference.py --weights W.pt [--images F...] [--text FILE --tokenizer T]
                          --out DIR [--no-normalize]

W.pt is a CLIP state dict in the OpenAI layout (sizes read from its shapes). Images go
through Pillow and the Hugging Face processor's steps (scripts/clip_ref_image.py), prompts
through the reference tokenizer (scripts/clip_ref_tokenizer.py, OpenAI's clip.tokenize
without ftfy), both through the reference towers (scripts/clip_reference.py). Writes
DIR/image_emb.npy, DIR/patch_emb.npy and DIR/text_emb.npy (float32, rows L2-normalised, as
cmcr embed writes them by default). tests/cli_embed.sh compares the command with it; with real
weights it is also a way to check cmcr on your own files.
"""
import argparse
import os
import re
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_ref_image  # noqa: E402
import clip_ref_tokenizer  # noqa: E402
from clip_reference import CLIP, openai_params  # noqa: E402


def config_of(sd):
    """The model's sizes from its tensors' shapes (as OpenAI's build_model infers them)."""
    def blocks(prefix):
        return len({m.group(1) for k in sd for m in [re.match(prefix + r"\.resblocks\.(\d+)\.", k)] if m})

    conv = sd["visual.conv1.weight"]
    grid = int(round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5))
    return dict(image=conv.shape[2] * grid, patch=conv.shape[2], vw=conv.shape[0],
                vl=blocks("visual.transformer"), tw=sd["ln_final.weight"].shape[0],
                tl=blocks("transformer"), ctx=sd["positional_embedding"].shape[0],
                vocab=sd["token_embedding.weight"].shape[0], embed=sd["text_projection"].shape[1])


def load(path):
    sd = torch.load(path, map_location="cpu")
    m = CLIP(config_of(sd))
    with torch.no_grad():
        for k, p in openai_params(m).items():
            p.copy_(sd[k].float())
    return m.eval()


def normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--images", nargs="*", default=[])
    ap.add_argument("--text")
    ap.add_argument("--tokenizer")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-normalize", action="store_true")
    ap.add_argument("--time", action="store_true", help="print the time from the loaded model to the embeddings")
    ap.add_argument("--batch", type=int, default=32, help="images or prompts per forward pass")
    a = ap.parse_args()
    torch.manual_seed(0)
    m = load(a.weights)
    norm = (lambda x: x) if a.no_normalize else normalize
    os.makedirs(a.out, exist_ok=True)
    with torch.no_grad():
        if a.images:
            size, embs, patches, t0 = m.c["image"], [], [], time.perf_counter()
            for s in range(0, len(a.images), a.batch):
                pix = np.stack([clip_ref_image.rescale_normalize(clip_ref_image.clip_resize_crop(
                    clip_ref_image.load_rgb(p), size)) for p in a.images[s:s + a.batch]])
                e, p = m.encode_image(torch.from_numpy(pix))
                embs.append(e.numpy())
                patches.append(p.numpy())
            if a.time:
                t = time.perf_counter() - t0
                print(f"{len(a.images)} images in {t:.2f} s ({len(a.images) / t:.1f} images/s)")
            np.save(os.path.join(a.out, "image_emb.npy"), norm(np.concatenate(embs)).astype(np.float32))
            np.save(os.path.join(a.out, "patch_emb.npy"), norm(np.concatenate(patches)).astype(np.float32))
        if a.text:
            with open(a.text, encoding="utf-8", newline="") as f:
                lines = f.read().split("\n")
            if lines and lines[-1] == "":
                lines.pop()  # a final newline ends the last line; it does not start another
            lines = [l[:-1] if l.endswith("\r") else l for l in lines]
            tok, embs, t0 = clip_ref_tokenizer.Tokenizer(a.tokenizer), [], time.perf_counter()
            for s in range(0, len(lines), a.batch):
                ids = torch.from_numpy(tok.tokenize(lines[s:s + a.batch], m.c["ctx"])[0].astype(np.int64))
                # As Hugging Face's tokenizer pads a batch (padding=True): only up to its longest
                # prompt. The causal mask makes the pooled rows the same as with 77 columns.
                embs.append(m.encode_text(ids[:, :int(ids.argmax(-1).max()) + 1]).numpy())
            if a.time:
                t = time.perf_counter() - t0
                print(f"{len(lines)} prompts in {t:.2f} s ({len(lines) / t:.1f} prompts/s)")
            np.save(os.path.join(a.out, "text_emb.npy"), norm(np.concatenate(embs)).astype(np.float32))


if __name__ == "__main__":
    main()
