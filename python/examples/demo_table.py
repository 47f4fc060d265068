#!/usr/bin/python3
"""The official C-MCR demo's tables, softmax(10 * sim), from Python.

With the released weights (not shipped; see README.md, "From sounds: LAION-CLAP in C"):

    python3 demo_table.py --connection clap_clip.pt --clap 630k-fusion-best.pt \\
        --roberta roberta-base/ --clip clip-vit-base-patch32 \\
        --sounds toilet.wav BBQ.wav train.wav --images toilet.jpeg BBQ.jpeg train.jpeg \\
        --names toilet BBQ train --prompts "a toilet" "BBQ" "a train"

prints three tables: audio x vision (sounds through side a, CLAP's; photos through side b,
CLIP's), vision x text (both through side b) and audio x text (both through side a). The
official implementation prints, for the toilet row: 0.9712 / 0.0079 / 0.0208 (audio x vision),
0.9681 / 0.0219 / 0.0100 (vision x text), 0.9937 / 0.0028 / 0.0035 (audio x text). Those numbers
were not reproduced here: the weights cannot be downloaded on the machines cmcr is built on;
the test suite runs this script on small random-weight encoders, which checks the mechanics,
not the numbers.
"""
import argparse
import sys

import cmcr


def table(title, rows, cols, p):
    width = max(8, max(len(c) for c in cols) + 2)
    first = max(len(r) for r in rows) + 2
    print(title)
    print(" " * first + "".join(c.rjust(width) for c in cols))
    for r, line in zip(rows, p):
        print(r.ljust(first) + "".join(("%.4f" % v).rjust(width) for v in line))
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connection", required=True, help="the C-MCR connection (clap_clip.pt: side a CLAP, side b CLIP)")
    ap.add_argument("--clap", required=True, help="LAION-CLAP checkpoint (630k-fusion-best.pt)")
    ap.add_argument("--roberta", help="RoBERTa tokenizer files for CLAP's prompts (vocab.json + merges.txt)")
    ap.add_argument("--clip", required=True, help="CLIP model (Hugging Face folder or weights file)")
    ap.add_argument("--clip-tokenizer", help="CLIP's tokenizer, when not beside the model")
    ap.add_argument("--sounds", nargs="+", required=True)
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--names", nargs="+", help="one name per sound and per image (default: #0, #1, ...)")
    ap.add_argument("--prompts", nargs="*", default=[], help="prompts for the text tables")
    ap.add_argument("--scale", type=float, default=10.0, help="softmax(scale * sim); the demo's is 10")
    a = ap.parse_args(argv)
    names = a.names or ["#%d" % i for i in range(max(len(a.sounds), len(a.images)))]
    if len(names) < max(len(a.sounds), len(a.images)):
        ap.error("--names needs one name per sound and per image")

    model = cmcr.load_model(a.connection)
    with cmcr.Clap(a.clap, tokenizer=a.roberta) as clap, cmcr.Clip(a.clip, tokenizer=a.clip_tokenizer) as clip:
        audio = clap.embed_audio(a.sounds)
        vision = clip.embed_images(a.images)
        table("audio x vision, softmax(%g * sim)" % a.scale, names[:len(a.sounds)], names[:len(a.images)],
              model.similarity(audio, "a", vision, "b", softmax=True, scale=a.scale))
        if a.prompts and clip.info.has_tokenizer:
            text_b = clip.embed_texts(a.prompts)
            table("vision x text, softmax(%g * sim)" % a.scale, names[:len(a.images)], a.prompts,
                  model.similarity(vision, "b", text_b, "b", softmax=True, scale=a.scale))
        if a.prompts and clap.info.has_tokenizer:
            text_a = clap.embed_texts(a.prompts)
            table("audio x text, softmax(%g * sim)" % a.scale, names[:len(a.sounds)], a.prompts,
                  model.similarity(audio, "a", text_a, "a", softmax=True, scale=a.scale))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except cmcr.Error as e:
        sys.exit("demo_table: %s" % e)
