#!/usr/bin/env bash
# cmcr embed with LAION-CLAP (issue 16): sound files (WAV, FLAC, OGG; short, exactly 10 s,
# longer than 10 s, stereo, 8 to 48 kHz), folders and list files, and a prompts file, through
# the small random-weight CLAP of the clap_small fixture (a .pt shaped like
# 630k-fusion-best.pt: a training checkpoint with "module." keys and optimizer state), equal
# within 1e-4 to the PyTorch reference run on the same files (scripts/clap_reference.py);
# the fusion path's seeded chunk choice is the same for a file wherever it is in the input;
# bf16 stays close; --skip-bad and --names; every refusal is one line naming the file and
# harms nothing; inspect tells the sides of a clap-clip connection. The prompt part needs the
# RoBERTa files of the shared test data and is skipped without them.
. "$(dirname "$0")/lib.sh"
need_numpy "for the comparisons"
"$PY" -c 'import torch, torchaudio, soundfile, regex' 2>/dev/null ||
    { echo "SKIPPED: needs Debian's python3-torch, python3-torchaudio, python3-soundfile and python3-regex"; exit 77; }
F=${CMCR_FIXTURES:?}/clap_small
[ -f "$F/clap.pt" ] || { echo "SKIPPED: the clap_small fixture is missing (ctest makes it: fixture_clap_small)"; exit 77; }
DATA=${CMCR_TESTDATA:-${CMCR_TESTDATA_DEFAULT:-}}
TOK=$DATA/tokenizers/roberta-base
scratch embed-clap
cd "$T" || exit 1
cp -r "$F/audio" snd
echo "not a sound" >snd/notes.txt # not searched for
FILES=(snd/a_short.wav snd/b_exact.wav snd/c_stereo.flac snd/d_long.wav snd/e_8k.ogg) # name order

# 1. A folder: equal to the reference; --names says which row is which.
"$BIN" embed --model "$F/clap.pt" --audio snd --out a.npy --names names.txt 2>err.txt ||
    { cat err.txt; fail "embed a folder of sound files"; }
close a.npy "$F/ref_audio.npy" 1e-4
[ "$(cat names.txt)" = "$(printf '%s\n' "${FILES[@]}")" ] || fail "--names: $(cat names.txt)"
grep -q "5 clips" err.txt && grep -q "LAION-CLAP weights" err.txt || fail "the summary: $(cat err.txt)"

# 2. The files named one by one in reverse order, batch 2: the same rows, reversed.
rev=()
for ((i = ${#FILES[@]} - 1; i >= 0; i--)); do rev+=("${FILES[$i]}"); done
"$BIN" embed --model "$F/clap.pt" --audio "${rev[@]}" --out r.npy --batch 2 --quiet || fail "embed files one by one"
"$PY" -c 'import numpy as np; np.save("r_back.npy", np.load("r.npy")[::-1])'
close r_back.npy a.npy 1e-6

# 3. bf16: close to float32 (its error is reported).
if "$BIN" embed --model "$F/clap.pt" --audio snd --out b16.npy --precision bf16 --quiet 2>err.txt; then
    close b16.npy a.npy 0.05
else
    grep -q "bf16\|bfloat16" err.txt || fail "bf16 refused without saying why: $(cat err.txt)"
    echo "note: no bf16 products in this build: the bf16 run is skipped"
fi

# 4. The fusion path's chunk starts: drawn from --seed, so a 25 s clip gets the same row
#    wherever it is in the input and from run to run, and another seed draws other chunks.
#    "The same" is to float rounding: with OpenBLAS a product's rounding can depend on how
#    many rows are in the batch (oneDNN's did not), about 1e-7 here; other chunks move the
#    row by about 1e-2.
"$PY" -c '
import numpy as np, soundfile as sf
t = np.arange(25 * 16000) / 16000
sf.write("long25.wav", (0.4 * np.sin(2 * np.pi * (100 + 40 * t) * t) * np.sin(2 * np.pi * 0.3 * t)).astype(np.float32), 16000)'
"$BIN" embed --model "$F/clap.pt" --audio long25.wav snd/a_short.wav long25.wav --out s0.npy --quiet ||
    fail "embed a 25 s clip"
"$BIN" embed --model "$F/clap.pt" --audio long25.wav --out s0b.npy --quiet --seed 0 || fail "embed it again"
"$BIN" embed --model "$F/clap.pt" --audio long25.wav --out s1.npy --quiet --seed 1 || fail "embed with --seed 1"
"$PY" - <<'EOF' || fail "the seeded chunk choice"
import numpy as np
s0, s0b, s1 = np.load("s0.npy"), np.load("s0b.npy"), np.load("s1.npy")
assert np.abs(s0[0] - s0[2]).max() < 1e-6, "the same file at two places differs"
assert np.abs(s0[0] - s0b[0]).max() < 1e-6, "the same file in two runs differs"
d = np.abs(s0[0] - s1[0]).max()
print(f"  --seed 0 vs --seed 1 on a 25 s clip: max abs difference {d:.3g}")
assert d > 1e-6, "another seed drew the same chunks"
EOF

# 5. A file that cannot be read stops the run (one line naming it, nothing written); with
#    --skip-bad the run goes on, lists it, and --names leaves it out.
mkdir -p bad
cp snd/a_short.wav bad/good.wav
head -c 100 snd/b_exact.wav >bad/cut.wav
echo "not a sound" >bad/text.wav
NAMES=(bad/text.wav)
refusal "a file that is not audio" "$BIN" embed --model "$F/clap.pt" --audio bad/good.wav bad/text.wav --out out.npy
grep -q "skip-bad" err.txt || fail "the refusal does not mention --skip-bad"
"$BIN" embed --model "$F/clap.pt" --audio bad --out out.npy --names kept.txt --skip-bad 2>err.txt ||
    { cat err.txt; fail "--skip-bad"; }
grep -q "skipped 2 of 3 clips" err.txt || fail "--skip-bad: no summary: $(cat err.txt)"
grep -q "bad/cut.wav" err.txt && grep -q "bad/text.wav" err.txt || fail "--skip-bad does not list the files"
[ "$(cat kept.txt)" = "bad/good.wav" ] || fail "--skip-bad: --names holds $(cat kept.txt)"
rm -f out.npy kept.txt

# 6. Refusals before any work.
CLIP=${CMCR_FIXTURES}/clip_small/small/openai.pt
NAMES=(clap.pt --images)
refusal "images with a CLAP model" "$BIN" embed --model "$F/clap.pt" --images snd --out out.npy
if [ -f "$CLIP" ]; then
    NAMES=(openai.pt --audio)
    refusal "sounds with a CLIP model" "$BIN" embed --model "$CLIP" --audio snd --out out.npy
fi
NAMES=(--activation)
refusal "--activation with a CLAP model" "$BIN" embed --model "$F/clap.pt" --audio snd --out out.npy --activation gelu
NAMES=(a.npy "not an encoder")
refusal "a .npy as the model" "$BIN" embed --model a.npy --audio snd --out out.npy
NAMES=(empty "no sound files found")
mkdir empty
refusal "a folder without sound files" "$BIN" embed --model "$F/clap.pt" --audio empty --out out.npy
mkfifo fifo.wav
NAMES=(fifo.wav "not a regular file")
refusal "a FIFO named as a sound file" timeout 30 "$BIN" embed --model "$F/clap.pt" --audio fifo.wav --out out.npy
NAMES=(missing.wav)
refusal "a missing sound file" "$BIN" embed --model "$F/clap.pt" --audio missing.wav --out out.npy
NAMES=(--audio --text)
printf 'a dog barking\n' >one.txt
refusal "both --audio and --text" "$BIN" embed --model "$F/clap.pt" --audio snd --text one.txt --out out.npy
NAMES=(clap.pt --tokenizer)
refusal "prompts without a tokenizer" "$BIN" embed --model "$F/clap.pt" --text one.txt --out out.npy
printf 'snd/a_short.wav\n' >list.txt
cp list.txt list.keep
NAMES=(list.txt "never overwritten")
refusal "--names is the input list" "$BIN" embed --model "$F/clap.pt" --audio list.txt --out out.npy --names list.txt
cmp -s list.txt list.keep || fail "the list file was changed"
mkdir -p tiny
printf '{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "a": 5}' >tiny/vocab.json
printf '#version: 0.2\n' >tiny/merges.txt
NAMES=(tiny "50265")
refusal "a tokenizer of another vocabulary" "$BIN" embed --model "$F/clap.pt" --tokenizer tiny --text one.txt --out out.npy

# Bad checkpoints: cut short; one tensor missing from the state_dict; a tensor of the wrong shape.
head -c 300000 "$F/clap.pt" >cut.pt
NAMES=(cut.pt)
refusal "a truncated checkpoint" "$BIN" embed --model cut.pt --audio snd --out out.npy
"$PY" - "$F/clap.pt" <<'EOF' || fail "making the damaged checkpoints"
import sys, torch
ck = torch.load(sys.argv[1])
sd = ck["state_dict"]
del sd["module.audio_branch.layers.1.blocks.0.attn.qkv.weight"]
torch.save(ck, "missing.pt")
ck = torch.load(sys.argv[1])
ck["state_dict"]["module.text_branch.pooler.dense.weight"] = torch.zeros(3, 5)
torch.save(ck, "shape.pt")
EOF
NAMES=(missing.pt "audio_branch.layers.1.blocks.0.attn.qkv.weight")
refusal "a checkpoint without one of its tensors" "$BIN" embed --model missing.pt --audio snd --out out.npy
NAMES=(shape.pt "text_branch.pooler.dense.weight" "[3, 5]")
refusal "a tensor of the wrong shape" "$BIN" embed --model shape.pt --audio snd --out out.npy

# 7. Prompts (needs the RoBERTa files): equal to the reference; a line that is not UTF-8 is
#    refused naming the file and the line.
if [ -f "$TOK/vocab.json" ]; then
    "$BIN" embed --model "$F/clap.pt" --tokenizer "$TOK" --text "$F/prompts.txt" --out t.npy --batch 3 2>err.txt ||
        { cat err.txt; fail "embed prompts"; }
    close t.npy "$F/ref_text.npy" 1e-4
    printf 'fine\nbad \xff byte\n' >badutf.txt
    NAMES=(badutf.txt:2)
    refusal "a prompt that is not UTF-8" "$BIN" embed --model "$F/clap.pt" --tokenizer "$TOK" --text badutf.txt --out out.npy
    # the same tokenizer found beside the model
    mkdir -p beside
    ln -s "$F/clap.pt" beside/clap.pt
    cp "$TOK/vocab.json" "$TOK/merges.txt" beside/
    "$BIN" embed --model beside/clap.pt --text "$F/prompts.txt" --out t2.npy --quiet || fail "the tokenizer beside the model"
    close t2.npy t.npy 1e-6 # batch 32 against batch 3: rounding only
else
    echo "note: $TOK is absent: the prompt checks are skipped"
fi

# 8. inspect says which encoder each head of a clap-clip connection takes.
"$PY" -c '
import torch
def block(i, o):  # the official two-layer head: net1 = Linear BN ReLU, net2 = Linear BN
    return torch.nn.Sequential(torch.nn.Linear(i, o), torch.nn.BatchNorm1d(o)).state_dict()
sd = {f"Head_{s}.{n}.{k}": v for s in "AB" for n, (i, o) in (("net1", (512, 1024)), ("net2", (1024, 512)))
      for k, v in block(i, o).items()}
torch.save(sd, "clap_clip.pt")' || fail "making a clap-clip connection"
"$BIN" inspect clap_clip.pt >inspect.txt || fail "inspect clap_clip.pt"
grep -q "Head_A) projects CLAP embeddings" inspect.txt && grep -q "Head_B) CLIP embeddings" inspect.txt ||
    fail "inspect does not say the sides: $(tail -2 inspect.txt)"
NAMES=(clap_clip.pt "not an encoder" "cmcr project")
refusal "a C-MCR connection as the encoder" "$BIN" embed --model clap_clip.pt --audio snd --out out.npy

finish cli_embed_clap
