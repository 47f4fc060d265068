#!/usr/bin/python3
"""LAION-CLAP from files to embeddings in PyTorch: the reference `cmcr embed --model CLAP.pt`
is checked against (tests/cli_embed_clap.sh) and timed against (bench/clap.sh).

It joins the references of the parts, each written from the published model and checked on
its own: clap_ref_audio.py (librosa.load + get_audio_features: decoding, libsoxr resampling,
int16 quantisation, repeat-pad, torchaudio's log-mel, the fusion input), clap_ref_htsat.py
(HTSAT-tiny + audio_projection), clap_ref_tokenizer.py (RoBERTa's tokenizer) and
clap_ref_roberta.py (RobertaModel + text_projection).

  clap_reference.py --out DIR [--size small|full] [--seed S]
      DIR/clap.pt: random weights in the real key layout, saved the way LAION-CLAP saves
      630k-fusion-best.pt: a dict with "epoch", "name", "optimizer" (Adam state) and
      "state_dict" (every key prefixed "module.", text_branch.embeddings.position_ids
      included); DIR/audio/: sound files (short, exactly 10 s, long (the fusion path),
      stereo, 8 kHz, FLAC, OGG); DIR/prompts.txt; and, when a RoBERTa vocabulary is given
      (--tokenizer), DIR/ref_text.npy; DIR/ref_audio.npy always (rows L2-normalised,
      float32, files in name order).
  clap_reference.py --weights clap.pt --size S (--audio FILE... | --text FILE --tokenizer DIR)
                    --out OUT.npy [--time] [--batch N] [--bf16]
      embed files with the checkpoint; --time prints the items per second of the whole path
      (files to embeddings; loading excluded) of one pass after a warm-up pass.

Long clips: the reference draws the three chunk starts at random; cmcr draws them from a
seed. The fixture's long clip has 1003 frames, where each of the three ranges holds one
start (0, 1, 2), so both take the same chunks (the seeded draw itself is checked in
tests/test_audio.c). --weights mode refuses other long clips.
"""
import argparse
import collections
import os
import sys
import time

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clap_ref_audio as A  # noqa: E402
import clap_ref_htsat as H  # noqa: E402
import clap_ref_roberta as R  # noqa: E402
import clap_ref_tokenizer as T  # noqa: E402

PROMPTS = [
    "the sound of a flushing toilet",
    "BBQ",
    "a train passing by, with its horn",
    "Café crème, s'il vous plaît - 東京 🎵",
    "  leading and   repeated spaces\tand a tab",
    "it's the dog's bark, isn't it?",
    "a dog <pad> barking, a <mask> howling",  # special tokens written in the text
    " ".join(["word"] * 100),  # truncated at 77 ids
]


def text_config(size):
    """RoBERTa's size, projecting to 512 like the audio side (the joint embedding)."""
    return dict(R.SIZES[size], embed=H.JOINT)


def models(size, seed):
    audio = H.random_model(size, seed)
    text = R.RobertaTower(text_config(size)).eval()
    R.init_weights(text, seed + 1)
    return audio, text


def training_state(audio, text):
    """The state_dict of a CLAP model: both towers, the projections, and what training keeps
    beside them (the transforms, the logit scales)."""
    sd = collections.OrderedDict()
    for k, v in list(audio.state_dict().items()) + list(text.state_dict().items()):
        sd[k] = v.detach().contiguous()
    g = torch.Generator().manual_seed(7)
    for side in ("audio", "text"):
        for i in (0, 3):
            sd["%s_transform.sequential.%d.weight" % (side, i)] = torch.randn(H.JOINT, H.JOINT, generator=g)
            sd["%s_transform.sequential.%d.bias" % (side, i)] = torch.randn(H.JOINT, generator=g)
    sd["logit_scale_a"] = torch.tensor(np.log(1 / 0.07), dtype=torch.float32)
    sd["logit_scale_t"] = torch.tensor(np.log(1 / 0.07), dtype=torch.float32)
    return sd


def save_checkpoint(sd, path):
    """Saved as LAION-CLAP's training saves it: state_dict of the DataParallel model beside the
    epoch, the run's name and the optimizer's state (none of which cmcr reads)."""
    w = torch.nn.Parameter(torch.randn(4, 3))
    opt = torch.optim.AdamW([w], lr=1e-4)
    w.sum().backward()
    opt.step()
    ckpt = {"epoch": 45, "name": "random-weights-630k-fusion-layout",
            "state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items()),
            "optimizer": opt.state_dict()}
    torch.save(ckpt, path)


def load_checkpoint(path, size):
    ckpt = torch.load(path, map_location="cpu")
    sd = ckpt.get("state_dict", ckpt)
    sd = {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}
    audio, text = models(size, 0)
    audio.load_state_dict({k: v for k, v in sd.items() if k.startswith(("audio_branch.", "audio_projection."))})
    text.load_state_dict({k: v for k, v in sd.items() if k.startswith(("text_branch.", "text_projection."))})
    return audio, text


# ---------------------------------------------------------------- files to model inputs

def audio_input(path):
    """(mel_fusion 4 x 1001 x 64, longer) of one file, as get_audio_features makes them."""
    y, rate = A.decode(path)
    y = A.quantize(A.resample_48k(y, rate))
    if len(y) <= A.CLIP:
        mel = A.get_mel(A.fill(y), torch.float32)
        return torch.stack([mel] * 4), False
    mel = A.get_mel(y, torch.float32)
    if mel.shape[0] == A.CHUNK_FRAMES:
        return torch.stack([mel] * 4), False
    ranges = A.ranges_of(mel.shape[0])
    if any(len(r) != 1 for r in ranges):
        raise SystemExit("%s: a long clip whose chunk starts are drawn at random (%d frames); the reference "
                         "takes only those with one start per range" % (path, mel.shape[0]))
    return A.fusion(mel, [r[0] for r in ranges]), True


def normalize(x):
    return torch.nn.functional.normalize(x.float(), dim=-1)


def embed_audio(model, paths, batch, bf16=False):
    out = []
    for s in range(0, len(paths), batch):
        items = [audio_input(p) for p in paths[s:s + batch]]
        mel = torch.stack([m for m, _ in items])
        longer = torch.tensor([l for _, l in items])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out.append(normalize(model(mel, longer)))
    return torch.cat(out).numpy()


def embed_text(model, tok, lines, batch, bf16=False):
    out = []
    for s in range(0, len(lines), batch):
        ids = torch.tensor([tok.encode(t)[0] for t in lines[s:s + batch]])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out.append(normalize(model(ids)))
    return torch.cat(out).numpy()


# ---------------------------------------------------------------- the fixture

def write_audio(d, seed):
    """Sound files covering the front end's paths; returns their paths in name order."""
    rng = np.random.default_rng(seed)
    os.makedirs(d, exist_ok=True)

    def tone(n, rate, ch=1):
        t = np.arange(n) / rate
        x = 0.3 * np.sin(2 * np.pi * (220 + 300 * t / max(t[-1], 1e-9)) * t) + 0.05 * rng.standard_normal(n)
        x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))
        return np.stack([x * (1 - 0.3 * c) for c in range(ch)], axis=1) if ch > 1 else x

    cases = [
        ("a_short.wav", 22050, tone(int(1.3 * 22050), 22050), "PCM_16"),
        ("b_exact.wav", 48000, tone(480000, 48000), "PCM_16"),
        ("c_stereo.flac", 44100, tone(4 * 44100, 44100, 2), "PCM_24"),
        ("d_long.wav", 48000, tone(481000, 48000), "FLOAT"),  # 1003 frames: the fusion path
        ("e_8k.ogg", 8000, tone(3 * 8000, 8000), "VORBIS"),
    ]
    for name, rate, x, subtype in cases:
        sf.write(os.path.join(d, name), x.astype(np.float32), rate, subtype=subtype)
    return [os.path.join(d, c[0]) for c in cases]


def make(out, size, seed, tokenizer):
    os.makedirs(out, exist_ok=True)
    audio, text = models(size, seed)
    save_checkpoint(training_state(audio, text), os.path.join(out, "clap.pt"))
    paths = write_audio(os.path.join(out, "audio"), seed)
    np.save(os.path.join(out, "ref_audio.npy"), embed_audio(audio, paths, 8))
    with open(os.path.join(out, "prompts.txt"), "w", encoding="utf-8") as f:
        f.write("".join(p + "\n" for p in PROMPTS))
    if tokenizer and os.path.exists(tokenizer):
        np.save(os.path.join(out, "ref_text.npy"), embed_text(text, T.Roberta(tokenizer), PROMPTS, 8))
    print("wrote %s (CLAP %s, %d sound files, %d prompts)" % (out, size, len(paths), len(PROMPTS)))


def timed(fn, n):
    """fn's result, after a warm-up pass and one timed pass (bench/clap.sh takes the median
    over runs of the whole process)."""
    fn()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    print("reference: %d items in %.3f s (%.2f items/s)" % (n, dt, n / dt))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", default="small", choices=["small", "full"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", help="RoBERTa's vocab.json + merges.txt (a folder or vocab.json)")
    ap.add_argument("--weights")
    ap.add_argument("--audio", nargs="+")
    ap.add_argument("--text")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--time", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    if not a.weights:
        make(a.out, a.size, a.seed, a.tokenizer)
        return 0
    audio, text = load_checkpoint(a.weights, a.size)
    if a.audio:
        run = lambda: embed_audio(audio, a.audio, a.batch, a.bf16)  # noqa: E731
        n = len(a.audio)
    else:
        with open(a.text, encoding="utf-8") as f:
            lines = f.read().splitlines()
        tok = T.Roberta(a.tokenizer)
        run = lambda: embed_text(text, tok, lines, a.batch, a.bf16)  # noqa: E731
        n = len(lines)
    np.save(a.out, timed(run, n) if a.time else run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
