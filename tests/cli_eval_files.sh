#!/usr/bin/env bash
# cmcr eval zeroshot from files (issue 17's "zero-shot classification from files"): sound
# files (the small random-weight CLAP of the clap_small fixture) and images (the small CLIP of
# clip_small) in class-per-folder layouts, classified against prompts made from class names and
# embedded by a CLIP or CLAP text tower, through tiny connections trained here on synthetic data
# of the encoders' widths. Checks: (a) the report equals cmcr embed + eval zeroshot --inputs on
# the same files and prompts; (b) labels from the folders equal the same labels given as
# --labels; (c) the sides are inferred for a model shaped like a released connection (the
# same report as explicit sides) and required otherwise; (d) refusals, each one line naming
# the file or flag. The prompts need the CLIP and RoBERTa vocabularies of the shared test data.
. "$(dirname "$0")/lib.sh"
need_numpy "for the comparisons"
"$PY" -c 'import PIL' 2>/dev/null || { echo "SKIPPED: needs Debian's python3-pil"; exit 77; }
FC=${CMCR_FIXTURES:?}/clip_small/small
FA=$CMCR_FIXTURES/clap_small
[ -f "$FC/openai.pt" ] || { echo "SKIPPED: the clip_small fixture is missing (ctest makes it: fixture_clip_small)"; exit 77; }
[ -f "$FA/clap.pt" ] || { echo "SKIPPED: the clap_small fixture is missing (ctest makes it: fixture_clap_small)"; exit 77; }
DATA=${CMCR_TESTDATA:-${CMCR_TESTDATA_DEFAULT:-}}
VOCAB=$DATA/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz
TOK=$DATA/tokenizers/roberta-base
[ -f "$VOCAB" ] && [ -d "$TOK" ] ||
    { echo "SKIPPED: needs the CLIP and RoBERTa vocabularies of the shared test data ($DATA/tokenizers)"; exit 77; }
scratch eval-files
cd "$T" || exit 1
CLIP=$FC/hf
CLAP=$FA/clap.pt

# Sounds as DIR/<class>/<file> (links to the fixture's files), images likewise (random
# pictures), and the class names (one without inputs, to show in --per-class).
mkdir -p snd/dog snd/cat img/car img/tree img/house
for f in a_short.wav b_exact.wav c_stereo.flac; do ln -s "$FA/audio/$f" snd/dog/; done
for f in d_long.wav e_8k.ogg; do ln -s "$FA/audio/$f" snd/cat/; done
printf 'cat\ndog\nbird\n' >snd_names.txt
printf 'tree\ncar\nhouse\n' >img_names.txt
"$PY" - <<'EOF'
import numpy as np
from PIL import Image
r = np.random.default_rng(7)
for i, c in enumerate(["car", "car", "tree", "house", "house", "tree"]):
    Image.fromarray(r.integers(0, 256, (90 + 10 * i, 120, 3), dtype=np.uint8)).save(f"img/{c}/{i}.png")
EOF

# Two connections of the encoders' widths (LAION-CLAP 512 on side a, the small CLIP 96 on side
# b), one shaped like clap_clip.pt (512 on both sides) and one like ulip_clip.pt, trained for
# one epoch on synthetic data: their weights matter only as some projection.
train() { # OUT DIM_A DIM_B PRESET
    "$BIN" synth --out "syn$2x$3" --dim-a "$2" --dim-b "$3" --concepts 20 --clusters 4 --overlap 600 --memory-a 300 \
        --memory-b 300 --test 10 --oracle 10 --diag 10 >/dev/null &&
        "$BIN" train --overlap-a "syn$2x$3/overlap_a.npy" --overlap-b "syn$2x$3/overlap_b.npy" \
            --memory-a "syn$2x$3/memory_a.npy" --memory-b "syn$2x$3/memory_b.npy" --preset "$4" --out "$1" \
            --epochs 1 --batch 256 --quiet --cache-dir none || fail "train $1"
}
train custom.safetensors 512 96 clap-clip
train clapclip.safetensors 512 512 clap-clip
train ulipclip.safetensors 512 512 ulip-clip
"$BIN" inspect clapclip.safetensors | grep -q "preset clap-clip" || fail "the clap-clip stand-in is not recognised"
"$BIN" inspect custom.safetensors | grep -q "preset custom" || fail "the 512/96 model is taken for a preset"

# jsub A B: every key of JSON A is in JSON B with the same value (B may say more: the encoders).
jsub() {
    "$PY" - "$1" "$2" <<'EOF' || fail "$1 is not part of $2"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
diff = {k: (v, b.get(k)) for k, v in a.items() if b.get(k) != v}
assert not diff, diff
print(f"  {sys.argv[1]} within {sys.argv[2]}: {len(a)} keys equal")
EOF
}
# labels NAMES_FILE NAMES_TXT OUT: the class index of each path's folder, as int64 .npy.
labels() {
    "$PY" - "$@" <<'EOF'
import sys, numpy as np
names = open(sys.argv[1]).read().split("\n")
rows = [names.index(p.split("/")[-2]) for p in open(sys.argv[2]).read().splitlines()]
np.save(sys.argv[3], np.array(rows, np.int64))
EOF
}

# (a) Sounds through the custom connection, prompts by CLIP: the same report as embed + eval.
SND=(--input-files snd --input-encoder "$CLAP" --class-names snd_names.txt --class-encoder "$CLIP"
     --tokenizer "$VOCAB" --model custom.safetensors --side a --classes-side b --per-class --json)
"$BIN" eval zeroshot "${SND[@]}" >files.json 2>err.txt || { cat err.txt; fail "eval zeroshot from sound files"; }
"$BIN" embed --model "$CLAP" --audio snd --out x.npy --names x_names.txt --quiet || fail "embed the sounds"
sed 's/.*/This is a sound of &./' snd_names.txt >prompts.txt
"$BIN" embed --model "$CLIP" --tokenizer "$VOCAB" --text prompts.txt --out c.npy --quiet || fail "embed the prompts"
labels snd_names.txt x_names.txt y.npy
"$BIN" eval zeroshot --inputs x.npy --classes c.npy --labels y.npy --model custom.safetensors --side a \
    --classes-side b --per-class --class-names snd_names.txt --json >npy.json || fail "eval zeroshot on embeddings"
jsub npy.json files.json
"$PY" - <<'EOF' || fail "the from-files report"
import json
r = json.load(open("files.json"))
assert r["inputs"] == 5 and r["classes"] == 3, r
assert r["labels"] == "folders" and r["prompt"] == "This is a sound of {}." and r["side"] == "a", r
assert [c["name"] for c in r["per_class"]] == ["cat", "dog", "bird"], r
assert [c["inputs"] for c in r["per_class"]] == [2, 3, 0] and r["per_class"][2]["top1"] is None, r
print(f"  sounds: top-1 {r['top1']:.3f}, top-5 {r['top5']:.3f}")
EOF
# The table says what embedded what.
"$BIN" eval zeroshot "${SND[@]/--json/--quiet}" >table.txt || fail "the table"
grep -q "inputs: 5 files embedded by .*clap.pt (LAION-CLAP)" table.txt && grep -q "labels: each file's folder" table.txt ||
    fail "the table: $(cat table.txt)"

# Images and CLIP's text tower in the raw space (no model), a template of one's own, batch 2.
IMG=(--input-files img --input-encoder "$CLIP" --class-names img_names.txt --class-encoder "$CLIP" --tokenizer "$VOCAB"
     --prompt "a picture of the {}" --batch 2 --json --quiet)
"$BIN" eval zeroshot "${IMG[@]}" >img_files.json || fail "eval zeroshot from images"
"$BIN" embed --model "$CLIP" --images img --out xi.npy --names xi_names.txt --batch 2 --quiet || fail "embed the images"
sed 's/.*/a picture of the &/' img_names.txt >img_prompts.txt
"$BIN" embed --model "$CLIP" --tokenizer "$VOCAB" --text img_prompts.txt --out ci.npy --batch 2 --quiet ||
    fail "embed prompts"
labels img_names.txt xi_names.txt yi.npy
"$BIN" eval zeroshot --inputs xi.npy --classes ci.npy --labels yi.npy --json >img_npy.json || fail "eval on embeddings"
jsub img_npy.json img_files.json

# bf16 products in both encoders: the same inputs and classes (the accuracies may move with
# the rounding), or, in a build without bf16 products, a one-line refusal that says so.
if "$BIN" eval zeroshot "${SND[@]}" --precision bf16 >bf16.json 2>err.txt; then
    "$PY" -c '
import json
a, b = json.load(open("files.json")), json.load(open("bf16.json"))
assert (a["inputs"], a["classes"]) == (b["inputs"], b["classes"]), (a, b)
print("  bf16: top-1 %.3f (f32 %.3f)" % (b["top1"], a["top1"]))' || fail "--precision bf16"
else
    [ "$(wc -l <err.txt)" -eq 1 ] && grep -q "bf16\|bfloat16" err.txt || fail "bf16 refused without saying why: $(cat err.txt)"
    echo "note: no bf16 products in this build: the bf16 run is skipped"
fi

# (b) Labels from the folders equal the same labels given: the same report.
"$BIN" eval zeroshot "${SND[@]}" --labels y.npy >given.json 2>/dev/null || fail "eval with --labels"
"$PY" - <<'EOF' || fail "labels from folders vs --labels"
import json
a, b = json.load(open("files.json")), json.load(open("given.json"))
assert b.pop("labels") == "y.npy" and a.pop("labels") == "folders"
assert a == b, (a, b)
EOF
# ... and given labels do count: other labels, another result.
"$PY" -c 'import numpy as np; np.save("y_other.npy", (np.load("y.npy") + 1) % 3)'
"$BIN" eval zeroshot "${SND[@]}" --labels y_other.npy >other.json 2>/dev/null || fail "eval with other --labels"
"$PY" -c '
import json, sys
a, b = json.load(open("files.json")), json.load(open("other.json"))
sys.exit(a["per_class"] == b["per_class"])' || fail "--labels made no difference"

# (c) Side inference. A model shaped like clap_clip.pt: CLAP sounds and CLAP prompts both go
#     through side a (Head_A is CLAP there), as the note says, with the same report as sides
#     given; CLIP prompts would go through side b (CLIP's), which takes 512, not the small 96.
CC=(--input-files snd --input-encoder "$CLAP" --class-names snd_names.txt --class-encoder "$CLAP" --tokenizer "$TOK"
    --model clapclip.safetensors --json)
"$BIN" eval zeroshot "${CC[@]}" >inferred.json 2>note.txt || { cat note.txt; fail "sides inferred"; }
grep -q "shaped like the released clap_clip.pt: the inputs (LAION-CLAP) go through side a, the prompts (LAION-CLAP) through side a" note.txt ||
    fail "the note of the inferred sides: $(cat note.txt)"
"$BIN" eval zeroshot "${CC[@]}" --side a --classes-side a >explicit.json 2>/dev/null || fail "sides given"
"$PY" - <<'EOF' || fail "inferred sides vs given sides"
import json
a, b = json.load(open("inferred.json")), json.load(open("explicit.json"))
assert a.pop("sides_inferred") is True and b.pop("sides_inferred") is False
assert a == b and a["side"] == "a" == a["classes_side"], (a, b)
EOF
"$BIN" eval zeroshot "${CC[@]}" --quiet >/dev/null 2>note.txt && [ ! -s note.txt ] || fail "--quiet still notes: $(cat note.txt)"
NAMES=(--class-encoder "clip_small/small/hf" CLIP "side b" clapclip.safetensors 96 512)
refusal "CLIP prompts: side b (inferred) takes 512" "$BIN" eval zeroshot --input-files snd --input-encoder "$CLAP" \
    --class-names snd_names.txt --class-encoder "$CLIP" --tokenizer "$VOCAB" --model clapclip.safetensors --quiet
NAMES=(--side ulip_clip.pt "not LAION-CLAP")
refusal "CLAP inputs and a model shaped like ulip_clip.pt" "$BIN" eval zeroshot "${CC[@]/clapclip/ulipclip}"
NAMES=("--side is required" custom.safetensors)
refusal "a custom model: sides are required" "$BIN" eval zeroshot --input-files snd --input-encoder "$CLAP" \
    --class-names snd_names.txt --class-encoder "$CLIP" --tokenizer "$VOCAB" --model custom.safetensors
NAMES=("--classes-side must be a or b" c)
refusal "a bad side" "$BIN" eval zeroshot "${SND[@]}" --classes-side c

# (d) Refusals: one line each, naming the file or the flag.
mkdir -p snd2/dog snd2/horse bare
ln -s "$FA/audio/a_short.wav" snd2/dog/a.wav
ln -s "$FA/audio/e_8k.ogg" snd2/horse/h.ogg
BASE=(--input-encoder "$CLAP" --class-names snd_names.txt --class-encoder "$CLIP" --tokenizer "$VOCAB")
NAMES=(snd2/horse/h.ogg "'horse'" --class-names)
refusal "a folder that is no class" "$BIN" eval zeroshot --input-files snd2 "${BASE[@]}"
NAMES=(--prompt "'a sound'" "{}")
refusal "a template without {}" "$BIN" eval zeroshot --input-files snd "${BASE[@]}" --prompt "a sound"
NAMES=(--prompt "'{} and {}'")
refusal "a template with {} twice" "$BIN" eval zeroshot --input-files snd "${BASE[@]}" --prompt "{} and {}"
NAMES=(--input-encoder clap.pt 512 96 "without --model")
refusal "two widths without a model" "$BIN" eval zeroshot --input-files snd "${BASE[@]}"
NAMES=(--input-encoder clap.pt "side b" 96 512)
refusal "an encoder wider than its side" "$BIN" eval zeroshot --input-files snd "${BASE[@]}" \
    --model custom.safetensors --side b --classes-side b
NAMES=(clap.pt --tokenizer)
refusal "a class encoder without a tokenizer" "$BIN" eval zeroshot --input-files snd --input-encoder "$CLAP" \
    --class-names snd_names.txt --class-encoder "$CLAP" --model clapclip.safetensors --quiet
NAMES=(--input-encoder)
refusal "no --input-encoder" "$BIN" eval zeroshot --input-files snd --class-names snd_names.txt --class-encoder "$CLIP"
NAMES=(--class-encoder)
refusal "no --class-encoder" "$BIN" eval zeroshot --input-files snd --class-names snd_names.txt --input-encoder "$CLAP"
NAMES=(--class-names)
refusal "no --class-names" "$BIN" eval zeroshot --input-files snd --input-encoder "$CLAP" --class-encoder "$CLIP"
NAMES=(--inputs --input-files)
refusal "embeddings and files" "$BIN" eval zeroshot --input-files snd "${BASE[@]}" --inputs x.npy
NAMES=(--input-encoder --input-files)
refusal "an encoder without files" "$BIN" eval zeroshot --inputs x.npy --classes c.npy --labels y.npy \
    --input-encoder "$CLAP"
NAMES=(--labels)
refusal "embeddings without labels" "$BIN" eval zeroshot --inputs x.npy --classes c.npy
NAMES=(custom.safetensors "C-MCR connection")
refusal "a connection as the encoder" "$BIN" eval zeroshot --input-files snd "${BASE[@]/$CLAP/custom.safetensors}"
ln -s "$FA/audio/a_short.wav" dog.wav
NAMES=(dog.wav "no folder" --labels)
refusal "a file without a folder" "$BIN" eval zeroshot --input-files dog.wav "${BASE[@]}"
NAMES=(y_short.npy "4 labels" 5)
"$PY" -c 'import numpy as np; np.save("y_short.npy", np.zeros(4, np.int64))'
refusal "labels of another count" "$BIN" eval zeroshot --input-files snd "${BASE[@]}" --labels y_short.npy \
    --model custom.safetensors --side a --classes-side b
printf 'cat\n\ndog\n' >blank_names.txt
NAMES=(blank_names.txt:2 "empty class name")
refusal "an empty class name" "$BIN" eval zeroshot --input-files snd "${BASE[@]/snd_names.txt/blank_names.txt}"
printf 'cat\ndog\ncat\n' >twice_names.txt
NAMES=(twice_names.txt:3 "'cat' again")
refusal "a class named twice" "$BIN" eval zeroshot --input-files snd "${BASE[@]/snd_names.txt/twice_names.txt}"
NAMES=(--input-files bare "no sound files found")
refusal "a folder without sounds" "$BIN" eval zeroshot --input-files bare "${BASE[@]}"
mkdir -p snd3/dog
head -c 100 "$FA/audio/b_exact.wav" >snd3/dog/cut.wav
NAMES=(snd3/dog/cut.wav)
refusal "a sound file that cannot be read" "$BIN" eval zeroshot --input-files snd3 "${BASE[@]}" \
    --model custom.safetensors --side a --classes-side b
NAMES=(--batch)
refusal "--batch 0" "$BIN" eval zeroshot --input-files snd "${BASE[@]}" --batch 0
finish cli_eval_files
