#!/usr/bin/env bash
# cmcr embed from raw files (issue 15): JPEG/PNG files, folders and list files, and a prompts
# file, through the small random-weight CLIP of the clip_small fixture, equal within 1e-4 to
# the PyTorch reference run on the same files (scripts/clip_embed_reference.py: Pillow, the
# reference tokenizer and towers); the HF folder and the OpenAI .pt give the same rows; bf16
# stays close; --skip-bad, --names and --patches; every refusal is one line naming the file
# and harms nothing; and the embeddings feed project, similarity and eval zeroshot. The prompt
# part needs the CLIP vocabulary of the shared test data and is skipped without it.
. "$(dirname "$0")/lib.sh"
need_numpy "for the comparisons"
"$PY" -c 'import torch, PIL, regex' 2>/dev/null || { echo "SKIPPED: needs Debian's python3-torch, python3-pil and python3-regex"; exit 77; }
F=${CMCR_FIXTURES:?}/clip_small/small
[ -f "$F/openai.pt" ] || { echo "SKIPPED: the clip_small fixture is missing (ctest makes it: fixture_clip_small)"; exit 77; }
SRC=${CMCR_SOURCE_DIR:?}
DATA=${CMCR_TESTDATA:-${CMCR_TESTDATA_DEFAULT:-}}
VOCAB=$DATA/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz
scratch embed
cd "$T" || exit 1

# Images of several kinds in a folder tree (a grey PNG in a subfolder; a text file that the
# folder search must ignore), the real photos when the shared data is there.
mkdir -p imgs/sub bad
"$PY" - <<'EOF'
import numpy as np
from PIL import Image
r = np.random.default_rng(5)
Image.fromarray(r.integers(0, 256, (300, 451, 3), dtype=np.uint8)).save("imgs/a.jpg", quality=90)
Image.fromarray(r.integers(0, 256, (640, 200, 3), dtype=np.uint8)).save("imgs/b.png")
Image.fromarray(r.integers(0, 256, (100, 120), dtype=np.uint8)).save("imgs/sub/c.png")
Image.fromarray(r.integers(0, 256, (50, 50, 3), dtype=np.uint8)).convert("P").save("imgs/d.PNG")
open("imgs/notes.txt", "w").write("not an image\n")
EOF
cp imgs/a.jpg bad/good.jpg
head -c 2000 imgs/a.jpg >bad/cut.jpg
echo "not a picture" >bad/text.jpg
ORDER=(imgs/a.jpg imgs/b.png imgs/d.PNG imgs/sub/c.png) # paths in byte order, subfolder included
if [ -d "$DATA/cmcr-assets" ]; then
    ORDER+=("$DATA/cmcr-assets/BBQ.jpeg" "$DATA/cmcr-assets/toilet.jpeg" "$DATA/cmcr-assets/train.jpeg")
else
    echo "note: $DATA/cmcr-assets is absent: the real photos are not part of this run"
fi
printf '%s\n' "${ORDER[@]:4}" >photos.txt

"$PY" "$SRC/scripts/clip_embed_reference.py" --weights "$F/openai.pt" --images "${ORDER[@]}" --out ref >/dev/null ||
    fail "the reference failed on the images"

# 1. Folder + list file, HF folder layout: equal to the reference; --names says which row is which.
"$BIN" embed --model "$F/hf" --images imgs photos.txt --out img.npy --patches patches.npy --names names.txt \
    --batch 3 2>err.txt || { cat err.txt; fail "embed images"; }
printf '%s\n' "${ORDER[@]}" | diff - names.txt >/dev/null || fail "--names: rows not in the order of the inputs"
close img.npy ref/image_emb.npy 1e-4
close patches.npy ref/patch_emb.npy 1e-4

# 2. The same files named one by one, OpenAI layout: the same rows.
"$BIN" embed --model "$F/openai.pt" --images "${ORDER[@]}" --out img2.npy --quiet 2>err.txt ||
    { cat err.txt; fail "embed files, openai layout"; }
[ ! -s err.txt ] || fail "--quiet printed: $(cat err.txt)"
close img2.npy img.npy 1e-5

# 2b. The activation: a Hugging Face folder whose config.json says gelu runs GELU (and says so);
#     the same weights from the OpenAI .pt need --activation gelu to give the same rows.
"$BIN" embed --model "$F/hf_gelu" --images imgs --out gelu.npy 2>err.txt || { cat err.txt; fail "embed, gelu folder"; }
grep -q "hf layout, gelu" err.txt || fail "the summary does not say gelu: $(cat err.txt)"
"$BIN" embed --model "$F/openai.pt" --activation gelu --images imgs --out gelu2.npy --quiet || fail "--activation gelu"
close gelu2.npy gelu.npy 1e-5
"$BIN" embed --model "$F/openai.pt" --images imgs --out quick.npy --quiet || fail "openai.pt, default activation"
"$PY" -c 'import numpy as np, sys; sys.exit(not abs(np.load("quick.npy") - np.load("gelu.npy")).max() > 1e-3)' ||
    fail "the activation changes nothing: the check above could not tell them apart"

# 3. bf16 products: close to float32 (the bound is loose; the measured error is printed).
if "$BIN" info 2>/dev/null | grep -q "^bfloat16.*built in"; then
    "$BIN" embed --model "$F/hf" --images imgs --out img_bf16.npy --precision bf16 --quiet || fail "bf16"
    "$BIN" embed --model "$F/hf" --images imgs --out img_f32.npy --quiet || fail "f32 of the folder"
    close img_bf16.npy img_f32.npy 3e-2
else
    echo "note: no bf16 products in this build: the bf16 run is skipped"
fi

# 4. --no-normalize keeps the raw projections: the same directions, norms not all 1.
"$BIN" embed --model "$F/hf" --images imgs --out raw.npy --no-normalize --quiet || fail "--no-normalize"
"$PY" - <<'EOF' || fail "--no-normalize: rows are not the raw projections"
import numpy as np
raw, n = np.load("raw.npy"), np.load("img.npy")[:4]
norms = np.linalg.norm(raw, axis=1)
assert np.abs(norms - 1).max() > 1e-3, norms
assert np.abs(raw / norms[:, None] - n).max() < 1e-5
EOF

# 5. A file that cannot be read stops the run (one line naming it, nothing written); with
#    --skip-bad the run goes on, lists it, and --names leaves it out.
NAMES=(bad/cut.jpg)
refusal "truncated JPEG in a folder" "$BIN" embed --model "$F/hf" --images bad/good.jpg bad/cut.jpg --out out.npy
grep -q "skip-bad" err.txt || fail "the refusal does not mention --skip-bad"
"$BIN" embed --model "$F/hf" --images bad --out out.npy --names kept.txt --skip-bad 2>err.txt ||
    { cat err.txt; fail "--skip-bad"; }
grep -q "skipped 2 of 3 images" err.txt || fail "--skip-bad: no summary: $(cat err.txt)"
grep -q "bad/cut.jpg" err.txt && grep -q "bad/text.jpg" err.txt || fail "--skip-bad does not list the files"
[ "$(cat kept.txt)" = "bad/good.jpg" ] || fail "--skip-bad: --names holds $(cat kept.txt)"
"$PY" -c 'import numpy as np, sys; a = np.load("out.npy"); b = np.load("img.npy"); sys.exit(not (a.shape == (1, b.shape[1]) and abs(a[0] - b[0]).max() < 1e-6))' ||
    fail "--skip-bad: the kept row is not a.jpg's"
rm -f out.npy kept.txt
NAMES=(bad/text.jpg)
refusal "only bad images, --skip-bad" "$BIN" embed --model "$F/hf" --images bad/text.jpg --out out.npy --skip-bad

# 6. Refusals before any work.
printf 'a dog\n' >one.txt
NAMES=(--images --text)
refusal "both --images and --text" "$BIN" embed --model "$F/hf" --images imgs --text photos.txt --out out.npy
NAMES=(--patches)
refusal "--patches with prompts" "$BIN" embed --model "$F/hf" --text photos.txt --out out.npy --patches p.npy
NAMES=(--activation relu)
refusal "an unknown activation" "$BIN" embed --model "$F/hf" --images imgs --out out.npy --activation relu
NAMES=(--batch)
refusal "batch 0" "$BIN" embed --model "$F/hf" --images imgs --out out.npy --batch 0
NAMES=(out.txt)
refusal "output with a wrong extension" "$BIN" embed --model "$F/hf" --images imgs --out out.txt
NAMES=(photos.txt)
cp photos.txt photos.keep
refusal "--names is the input list" "$BIN" embed --model "$F/hf" --images photos.txt --out out.npy --names photos.txt
cmp -s photos.txt photos.keep || fail "the list file was changed"
NAMES=(missing.jpg)
refusal "a missing image" "$BIN" embed --model "$F/hf" --images missing.jpg --out out.npy
NAMES=(notes.dat "not a JPEG or PNG")
cp imgs/notes.txt notes.dat
refusal "a file that is not an image, named directly" "$BIN" embed --model "$F/hf" --images imgs/a.jpg notes.dat --out out.npy
# The review's cases: an output that is a file the run reads although it is not named on the
# command line (the tokenizer's merges.txt beside a vocab.json; a path inside a list file), a
# path with a line break under --names, a name with a line break in a message, an empty value.
HF=${CMCR_FIXTURES}/clip_tokens/hf # made from the shared vocabulary when it is there
[ ! -f "$VOCAB" ] || [ -f "$HF/vocab.json" ] || fail "$HF/vocab.json is missing although $VOCAB is there"
if [ -f "$HF/vocab.json" ]; then
    mkdir -p tok
    cp "$HF/vocab.json" "$HF/merges.txt" tok/
    cp tok/merges.txt merges.keep
    NAMES=(tok/merges.txt "never overwritten")
    refusal "--names is the tokenizer's merges.txt" "$BIN" embed --model "$F/hf" --tokenizer tok/vocab.json \
        --images imgs/a.jpg --out out.npy --names tok/merges.txt
    cmp -s tok/merges.txt merges.keep || fail "merges.txt was changed"
fi
printf 'imgs/a.jpg\nkeep.txt\n' >inlist.lst
echo "not an image" >keep.txt
NAMES=(keep.txt "never overwritten")
refusal "--names is a path inside the list" "$BIN" embed --model "$F/hf" --images inlist.lst --out out.npy \
    --names keep.txt --skip-bad
[ "$(cat keep.txt)" = "not an image" ] || fail "keep.txt was changed"
mkdir -p nl
cp imgs/a.jpg "nl/x
y.jpg"
NAMES=('nl/x\x0ay.jpg' "line break")
refusal "a path with a line break under --names" "$BIN" embed --model "$F/hf" --images nl --out out.npy --names n2.txt
NAMES=('no\x0asuch.jpg')
refusal "a missing image whose name has a line break" "$BIN" embed --model "$F/hf" --images "no
such.jpg" --out out.npy
NAMES=(--images)
refusal "an empty --images=" "$BIN" embed --model "$F/hf" --images= --out out.npy
# A vocab.json beside the weights that belongs to another model does not stop images; prompts
# are then refused with the reason.
mkdir -p other
cp "$F/openai.pt" other/
echo '{"a": 0}' >other/vocab.json
echo '#version: 0.2' >other/merges.txt
"$BIN" embed --model other/openai.pt --images imgs/a.jpg --out other.npy --quiet 2>err.txt ||
    fail "an unusable tokenizer beside the weights stopped an image run: $(cat err.txt)"
NAMES=(other/vocab.json "cannot embed prompts" --tokenizer)
refusal "prompts with an unusable tokenizer beside the weights" "$BIN" embed --model other/openai.pt --text one.txt --out out.npy

NAMES=(empty "no images")
mkdir empty
refusal "a folder without images" "$BIN" embed --model "$F/hf" --images empty --out out.npy
NAMES=(img.npy)
refusal "weights that are not CLIP" "$BIN" embed --model img.npy --images imgs --out out.npy
NAMES=(torchscript.pt state_dict)
refusal "a TorchScript archive" "$BIN" embed --model "$F/torchscript.pt" --images imgs --out out.npy
NAMES=(openai.pt --tokenizer)
printf 'a dog\n' >one.txt
refusal "prompts without a tokenizer" "$BIN" embed --model "$F/openai.pt" --text one.txt --out out.npy

# 7. Prompts (needs the CLIP vocabulary): equal to the reference, from the .gz and from the
#    Hugging Face files; a line that is not UTF-8 is refused naming the file and the line.
if [ -f "$VOCAB" ]; then
    printf 'a photo of a cat.\n\nA Photo of a DOG!!\n&amp; caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x98\x80\r\n%s\n' \
        "$(printf 'word %.0s' $(seq 100))" >prompts.txt
    "$PY" "$SRC/scripts/clip_embed_reference.py" --weights "$F/openai.pt" --text prompts.txt --tokenizer "$VOCAB" \
        --out ref >/dev/null || fail "the reference failed on the prompts"
    "$BIN" embed --model "$F/openai.pt" --tokenizer "$VOCAB" --text prompts.txt --out text.npy --batch 2 2>err.txt ||
        { cat err.txt; fail "embed prompts"; }
    close text.npy ref/text_emb.npy 1e-4
    "$BIN" embed --model "$F/hf" --tokenizer "$HF/vocab.json" --text prompts.txt --out text_hf.npy --quiet ||
        fail "embed prompts with vocab.json"
    close text_hf.npy text.npy 1e-5
    printf 'fine\nbad \xff byte\n' >badutf.txt
    NAMES=(badutf.txt:2)
    refusal "a prompt that is not UTF-8" "$BIN" embed --model "$F/openai.pt" --tokenizer "$VOCAB" --text badutf.txt --out out.npy
    printf 'a\0b\n' >nul.txt
    NAMES=(nul.txt)
    refusal "a prompts file with a NUL byte" "$BIN" embed --model "$F/openai.pt" --tokenizer "$VOCAB" --text nul.txt --out out.npy

    # 8. Zero-shot from raw files: prompts and images embedded here feed the existing commands
    #    through a connection of the same width (trained on a small synthetic world).
    D=$("$PY" -c 'import numpy as np; print(np.load("img.npy").shape[1])')
    "$BIN" synth --out w --dim-a "$D" --dim-b "$D" --latent 8 --concepts 10 --clusters 2 --overlap 400 --memory-a 100 \
        --memory-b 100 --test 40 --oracle 20 --diag 20 >/dev/null 2>&1 || fail "synth"
    "$BIN" train --overlap-a w/overlap_a.npy --overlap-b w/overlap_b.npy --memory-a w/memory_a.npy \
        --memory-b w/memory_b.npy --preset ulip-clip --out-dim 16 --batch 50 --epochs 1 --threads 1 --cache-dir none \
        --quiet --out m.safetensors >/dev/null 2>&1 || fail "train"
    printf 'a photo of a cat.\na photo of a dog.\na photo of a car.\n' >classes.txt
    "$BIN" embed --model "$F/openai.pt" --tokenizer "$VOCAB" --text classes.txt --out classes.npy --quiet || fail "classes"
    "$BIN" project --model m.safetensors --side a --in img.npy --out img_p.npy 2>/dev/null || fail "project"
    "$BIN" similarity --model m.safetensors --a img.npy --side-a a --b classes.npy --side-b a --labels-b classes.txt \
        --softmax --top-k 1 >sim.txt 2>&1 || fail "similarity: $(cat sim.txt)"
    grep -q "a photo of a" sim.txt || fail "similarity printed no class"
    "$PY" -c "import numpy as np; np.save('labels.npy', (np.arange(${#ORDER[@]}) % 3).astype(np.int64))"
    "$BIN" eval zeroshot --model m.safetensors --inputs img.npy --side a --classes classes.npy --classes-side a \
        --labels labels.npy --json >zs.json 2>&1 || fail "eval zeroshot: $(cat zs.json)"
    grep -q top1 zs.json || fail "eval zeroshot printed no accuracy"
else
    echo "note: $VOCAB is absent: the prompt checks are skipped"
fi

finish cli_embed
