#!/usr/bin/env bash
# cmcr index and cmcr search (issue 18): a folder tree of generated images, the small CLAP's
# sounds and .txt texts indexed through the search fixture's clap_clip connection (random-weight
# encoders: these check mechanics, not meaning). Checks: (1) every gallery row equals cmcr embed
# + cmcr project of the same file (1e-5), the metadata records the space; (2) search (a sound, a
# text, a file, --modality, --top, the table and --json) equals a brute-force NumPy ranking of
# the gallery; (3) incremental runs: a file added, one changed, one only touched, one deleted
# give the right counts and rows, the other rows byte-equal, and a run with nothing to do does
# not rewrite the gallery; (4) kill -9 during a slow index (--save-every 0), then the same
# command, gives the gallery a clean run gives; SIGTERM saves and exits 130; (5) point clouds
# through ulip_clip; (6) refusals, each one line: another model or encoder, a file at --gallery
# that is not a gallery (left as it was), bad files with and without --skip-bad, usage errors.
. "$(dirname "$0")/lib.sh"
need_numpy "for the comparisons"
"$PY" -c 'import PIL' 2>/dev/null || { echo "SKIPPED: needs Debian's python3-pil"; exit 77; }
F=${CMCR_FIXTURES:?}
for f in search/clap_clip.safetensors search/ulip_clip.safetensors clip_small/small/openai.pt clap_small/clap.pt \
    pointbert_small/ulip.pt; do
    [ -f "$F/$f" ] || { echo "SKIPPED: $F/$f is missing (ctest makes it: fixtures search, clip_small, clap_small, pointbert_small)"; exit 77; }
done
DATA=${CMCR_TESTDATA:-${CMCR_TESTDATA_DEFAULT:-}}
VOCAB=$DATA/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz
TOK=$DATA/tokenizers/roberta-base
[ -f "$VOCAB" ] && [ -d "$TOK" ] ||
    { echo "SKIPPED: needs the CLIP and RoBERTa vocabularies of the shared test data ($DATA/tokenizers)"; exit 77; }
SCRIPTS=$(cd "$(dirname "$0")/../scripts" && pwd)
scratch index-search
cd "$T" || exit 1
M=$F/search/clap_clip.safetensors
CLAP=$F/clap_small/clap.pt
CLIP=$F/clip_small/small/openai.pt
SPACE=(--model "$M" --encoder-a "$CLAP" --encoder-b "$CLIP" --tokenizer-a "$TOK" --tokenizer-b "$VOCAB")

# images(DIR N SEED [SIZE]): N random PNGs DIR/iNNN.png
images() {
    mkdir -p "$1"
    "$PY" - "$@" <<'EOF'
import sys, numpy as np
from PIL import Image
d, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = int(sys.argv[4]) if len(sys.argv) > 4 else 48
r = np.random.default_rng(seed)
for i in range(n):
    Image.fromarray(r.integers(0, 256, (size + i % 5, size, 3), dtype=np.uint8)).save(f"{d}/i{i:03d}.png")
EOF
}
# gallery_py: Python with scripts/gallery.py importable as g
gallery_py() { "$PY" -c "import sys; sys.path.insert(0, '$SCRIPTS'); import gallery as g; $1" "${@:2}"; }

# ------------------------------------------------------------------ 1. index = embed + project
images tree/img 4 1
images tree/img/sub 2 2
mkdir -p tree/snd tree/txt
cp "$F/clap_small/audio/a_short.wav" "$F/clap_small/audio/c_stereo.flac" tree/snd/
cp "$F/clap_small/audio/b_exact.wav" tree/snd/z.wav
printf 'a dog barking\n' >tree/txt/dog.txt
printf '  the sea at night \r\n\n' >tree/txt/sea.txt
printf 'not media\n' >tree/README.md
cp tree/img/i000.png tree/img/.hidden.png
"$BIN" index --gallery g.safetensors "${SPACE[@]}" tree 2>sum.txt || { cat sum.txt; fail "index a tree"; }
grep -q "11 rows (kept 0, of which 0 touched; new 11; changed 0; dropped 0; skipped 0)" sum.txt || fail "summary: $(cat sum.txt)"

# References: each modality embedded by its encoder and projected through its side.
ref() { # NAME SIDE embed-args...
    "$BIN" embed --quiet --out "$1.emb.npy" "${@:3}" || fail "embed $1"
    "$BIN" project --model "$M" --side "$2" --in "$1.emb.npy" --out "$1.npy" >/dev/null || fail "project $1"
}
ref img b --model "$CLIP" --images tree/img --names img_names.txt
ref snd a --model "$CLAP" --audio tree/snd --names snd_names.txt
printf 'a dog barking\nthe sea at night\n' >texts.txt
printf '%s\n' tree/txt/dog.txt tree/txt/sea.txt >txt_names.txt
ref txt a --model "$CLAP" --tokenizer "$TOK" --text texts.txt
gallery_py '
import os, numpy as np
G = g.read("g.safetensors")
rows = {os.fsdecode(p): i for i, p in enumerate(G["paths"])}
assert len(rows) == 11 and all(os.path.isabs(p) for p in rows), sorted(rows)
assert not any(".hidden" in p or "README" in p for p in rows)
for name, mod in (("img", 0), ("snd", 1), ("txt", 2)):
    order = [rows[os.path.realpath(p)] for p in open(name + "_names.txt").read().split()]
    assert all(G["modality"][i] == mod for i in order), name
    np.save("gal_" + name + ".npy", G["embeddings"][order])
for p, i in rows.items():
    st = os.stat(p)
    assert G["size"][i] == st.st_size and G["mtime_ns"][i] == st.st_mtime_ns, p
m = G["meta"]
assert m["format"] == "cmcr-gallery" and m["rows"] == "11" and m["dim"] == "512", m
assert m["model"] == os.path.realpath(sys.argv[1]) and len(m["model_fingerprint"]) == 16, m
assert m["encoder_a_kind"] == "clap" and m["encoder_b_kind"] == "clip" and m["text_side"] == "a", m
assert m["precision"] == "f32" and m["created"] <= m["updated"], m
assert list(G["paths"]) == sorted(G["paths"])
' "$M" || fail "the gallery's rows and metadata"
for n in img snd txt; do close "gal_$n.npy" "$n.npy" 1e-5; done

# ------------------------------------------------------------------ 2. search = brute force
# check_search JSON QUERY.npy [MODALITY...]: every result's score is its row's cosine with the
# query, and the k scores are the brute force's k best (within float32 rounding).
check_search() {
    gallery_py '
import json, os, numpy as np
G = g.read("g.safetensors")
res = json.load(open(sys.argv[1]))
q = np.load(sys.argv[2])[0].astype(np.float64)
mods = [int(m) for m in sys.argv[3:]]
keep = [i for i in range(len(G["paths"])) if not mods or G["modality"][i] in mods]
s = G["embeddings"][keep].astype(np.float64) @ q
best = np.sort(s)[::-1]
rows = {os.fsdecode(G["paths"][i]): (k, i) for k, i in enumerate(keep)}
names = ["image", "audio", "text", "points"]
out = res["results"]
assert len(out) == min(len(keep), int(os.environ["TOP"])), (len(out), len(keep))
for r, e in enumerate(out):
    k, i = rows[e["path"]]
    assert e["rank"] == r + 1 and e["modality"] == names[G["modality"][i]], e
    assert abs(e["score"] - s[k]) < 1e-5 and abs(e["score"] - best[r]) < 1e-5, (e, s[k], best[r])
print("  %s: %d results, top %s %.6f" % (res["query"], len(out), out[0]["path"].split("/")[-1], out[0]["score"]))
' "$@" || fail "search $1 against the brute force"
}
"$BIN" search --gallery g.safetensors --audio tree/snd/c_stereo.flac --json --top 20 >s1.json || fail "search --audio"
"$BIN" embed --quiet --model "$CLAP" --audio tree/snd/c_stereo.flac --out q1e.npy &&
    "$BIN" project --model "$M" --side a --in q1e.npy --out q1.npy >/dev/null || fail "embed the sound query"
TOP=20 check_search s1.json q1.npy
"$BIN" search --gallery g.safetensors --text "a barking dog" --json --top 4 --modality image,text >s2.json ||
    fail "search --text"
printf 'a barking dog\n' >q2.txt
"$BIN" embed --quiet --model "$CLAP" --tokenizer "$TOK" --text q2.txt --out q2e.npy &&
    "$BIN" project --model "$M" --side a --in q2e.npy --out q2.npy >/dev/null || fail "embed the text query"
TOP=4 check_search s2.json q2.npy 0 2
"$PY" -c 'import json,sys; d=json.load(open("s2.json")); assert d["query"] == "a barking dog" and d["modality"] == "text", d' ||
    fail "the JSON's query"
"$BIN" search --gallery g.safetensors --query-file tree/img/sub/i001.png --json --top 3 >s3.json || fail "--query-file"
"$BIN" embed --quiet --model "$CLIP" --images tree/img/sub/i001.png --out q3e.npy &&
    "$BIN" project --model "$M" --side b --in q3e.npy --out q3.npy >/dev/null || fail "embed the image query"
TOP=3 check_search s3.json q3.npy
"$BIN" search --gallery g.safetensors --query-file tree/txt/sea.txt --json --top 9 >s4.json || fail "--query-file text"
"$PY" -c 'import json; d=json.load(open("s4.json")); assert d["modality"] == "text" and d["results"][0]["path"].endswith("sea.txt"), d' ||
    fail "a .txt query file is its text, which finds its own row first"
"$BIN" search --gallery g.safetensors --image tree/img/i002.png --top 3 >table.txt || fail "the table"
[ "$(wc -l <table.txt)" -eq 4 ] && head -1 table.txt | grep -q "rank.*score.*modality.*path" &&
    sed -n 2p table.txt | grep -Eq '^ +1 +[01]\.[0-9]{4} +image +/.*/tree/img/i002\.png$' || fail "the table: $(cat table.txt)"

# The model under another path (its fingerprint computed, not taken from the record): the same.
cp "$M" m_copy.safetensors
"$BIN" search --gallery g.safetensors --model m_copy.safetensors --image tree/img/i002.png --top 3 >table2.txt ||
    fail "search with a copy of the model"
cmp -s table.txt table2.txt || fail "a copy of the model ranks otherwise"

# ------------------------------------------------------------------ 3. incremental
cp g.safetensors g1.safetensors
images new 1 9 && mv new/i000.png tree/img/added.png
images chg 1 10 && cp chg/i000.png tree/img/i001.png             # changed content, same name
touch -d '2030-01-01 00:00:00' tree/img/i002.png                  # touched only
rm tree/snd/z.wav                                                 # deleted
"$BIN" index --gallery g.safetensors "${SPACE[@]}" tree 2>sum2.txt || { cat sum2.txt; fail "the second index"; }
grep -q "11 rows (kept 9, of which 1 touched; new 1; changed 1; dropped 1; skipped 0)" sum2.txt || fail "summary: $(cat sum2.txt)"
ref chg b --model "$CLIP" --images tree/img/added.png tree/img/i001.png
gallery_py '
import os, numpy as np
A, B = g.read("g1.safetensors"), g.read("g.safetensors")
a = {os.fsdecode(p): i for i, p in enumerate(A["paths"])}
b = {os.fsdecode(p): i for i, p in enumerate(B["paths"])}
real = lambda p: os.path.realpath(p)
added, changed, touched, gone = (real(p) for p in ("tree/img/added.png", "tree/img/i001.png", "tree/img/i002.png", "tree/snd/z.wav"))
assert gone in a and gone not in b and added in b and added not in a
for p, j in b.items():
    if p in (added, changed): continue
    i = a[p]
    assert A["embeddings"][i].tobytes() == B["embeddings"][j].tobytes(), p   # byte-equal
    assert A["content_hash"][i] == B["content_hash"][j] and A["modality"][i] == B["modality"][j], p
    assert (A["mtime_ns"][i] == B["mtime_ns"][j]) == (p != touched), p
assert B["mtime_ns"][b[touched]] == os.stat(touched).st_mtime_ns
assert A["content_hash"][a[changed]] != B["content_hash"][b[changed]]
np.save("gal_chg.npy", B["embeddings"][[b[added], b[changed]]])
assert B["meta"]["created"] == A["meta"]["created"]
' || fail "the incremental rows"
close gal_chg.npy chg.npy 1e-5
cp g.safetensors g2.safetensors
"$BIN" index --gallery g.safetensors "${SPACE[@]}" tree 2>sum3.txt || fail "a run with nothing to do"
grep -q "kept 11, of which 0 touched; new 0; changed 0; dropped 0" sum3.txt || fail "summary: $(cat sum3.txt)"
cmp -s g.safetensors g2.safetensors || fail "a run with nothing to do rewrote the gallery"
# A folder given twice, and a file through a link and by itself: each file once.
ln -s tree/img link
"$BIN" index --gallery g.safetensors "${SPACE[@]}" tree tree/img link/i003.png --quiet || fail "inputs given twice"
cmp -s g.safetensors g2.safetensors || fail "inputs given twice changed the gallery"

# ------------------------------------------------------------------ 4. kill -9, then go on
images many 40 3 32
SLOW=(--model "$M" --encoder-b "$CLIP" --batch 2 --save-every 0 --quiet many)
"$BIN" index --gallery clean.safetensors "${SLOW[@]}" || fail "the clean run"
"$BIN" index --gallery k.safetensors "${SLOW[@]}" &
pid=$!
for _ in $(seq 600); do [ -s k.safetensors ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
rows=$(gallery_py 'print(len(g.read("k.safetensors")["paths"]))' 2>/dev/null || echo none)
echo "  killed with $rows of 40 rows saved"
"$BIN" index --gallery k.safetensors "${SLOW[@]}" || fail "going on after kill -9"
rm -f ./*.tmp.* # a temporary file the kill may have left
gallery_py '
import numpy as np
A, B = g.read("clean.safetensors"), g.read("k.safetensors")
assert A["paths"] == B["paths"] and len(A["paths"]) == 40
for k in ("content_hash", "size", "mtime_ns", "modality"): assert (A[k] == B[k]).all(), k
np.save("e_clean.npy", A["embeddings"]); np.save("e_kill.npy", B["embeddings"])
' || fail "the resumed gallery differs from a clean run's"
close e_kill.npy e_clean.npy 1e-6
# SIGTERM: the rows done are saved and the exit status is 130 (0 when the run ended first).
"$BIN" index --gallery t.safetensors "${SLOW[@]}" 2>term.txt &
pid=$!
for _ in $(seq 600); do [ -s t.safetensors ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
echo "  SIGTERM: exit $rc, $(cat term.txt)"
if [ $rc -eq 130 ]; then
    grep -q "interrupted: t.safetensors holds the [0-9]* rows done" term.txt || fail "SIGTERM's message: $(cat term.txt)"
else
    [ $rc -eq 0 ] || fail "SIGTERM: exit $rc"
fi
gallery_py 'assert 0 < len(g.read("t.safetensors")["paths"]) <= 40' || fail "the gallery saved on SIGTERM"

# ------------------------------------------------------------------ 5. point clouds (ulip_clip)
U=$F/search/ulip_clip.safetensors
mkdir -p pc
cp "$F"/pointbert_small/clouds/*.npy pc/
images pc 1 4
"$BIN" index --gallery u.safetensors --model "$U" --encoder-a "$CLIP" --encoder-b "$F/pointbert_small/ulip.pt" --quiet pc ||
    fail "index clouds"
"$BIN" embed --quiet --model "$F/pointbert_small/ulip.pt" --points pc --out pc.emb.npy --names pc_names.txt &&
    "$BIN" project --model "$U" --side b --in pc.emb.npy --out pc.npy >/dev/null || fail "embed the clouds"
gallery_py '
import os, numpy as np
G = g.read("u.safetensors")
rows = {os.fsdecode(p): i for i, p in enumerate(G["paths"])}
order = [rows[os.path.realpath(p)] for p in open("pc_names.txt").read().split()]
assert all(G["modality"][i] == 3 for i in order) and len(rows) == len(order) + 1
np.save("gal_pc.npy", G["embeddings"][order])
' || fail "the cloud rows"
close gal_pc.npy pc.npy 1e-5
first=$(head -1 pc_names.txt)
"$BIN" search --gallery u.safetensors --points "$first" --json --top 3 >s5.json || fail "search --points"
"$BIN" embed --quiet --model "$F/pointbert_small/ulip.pt" --points "$first" --out q5e.npy &&
    "$BIN" project --model "$U" --side b --in q5e.npy --out q5.npy >/dev/null || fail "embed the cloud query"
gallery_py '
import json, os, numpy as np
G = g.read("u.safetensors"); res = json.load(open("s5.json")); q = np.load("q5.npy")[0]
s = G["embeddings"] @ q
for r, e in enumerate(res["results"]):
    i = [os.fsdecode(p) for p in G["paths"]].index(e["path"])
    assert abs(e["score"] - s[i]) < 1e-5 and abs(e["score"] - np.sort(s)[::-1][r]) < 1e-5, e
' || fail "search --points against the brute force"

# ------------------------------------------------------------------ 6. refusals
echo "| case | command | exit | message |"
echo "|---|---|---|---|"
cp g.safetensors before.safetensors
NAMES=(g.safetensors "another model" "--rebuild")
refusal "another model" "$BIN" index --gallery g.safetensors --model "$U" --encoder-a "$CLIP" tree
NAMES=(g.safetensors "another side b encoder" "encoder_b_fingerprint")
refusal "another encoder" "$BIN" index --gallery g.safetensors --model "$M" --encoder-b "$F/clip_small/small16/openai.pt" tree
NAMES=(g.safetensors "another model" "$U")
refusal "search with another model" "$BIN" search --gallery g.safetensors --model "$U" --encoder-a "$CLIP" --image tree/img/i000.png
NAMES=(g.safetensors "another side b encoder")
refusal "search with another encoder" "$BIN" search --gallery g.safetensors --encoder-b "$F/clip_small/small16/openai.pt" --image tree/img/i000.png
cmp -s g.safetensors before.safetensors || fail "a refused run changed the gallery"
cp "$M" model_copy.safetensors
NAMES=(model_copy.safetensors "not a cmcr gallery" "never overwritten")
refusal "a file that is not a gallery" "$BIN" index --gallery model_copy.safetensors "${SPACE[@]}" tree
cmp -s model_copy.safetensors "$M" || fail "the file at --gallery was changed"
NAMES=(model_copy.safetensors "not a cmcr gallery")
refusal "--rebuild does not overwrite it either" "$BIN" index --gallery model_copy.safetensors "${SPACE[@]}" --rebuild tree
NAMES=("$M" "--gallery" "never overwritten")
refusal "--gallery is the model" "$BIN" index --gallery "$M" "${SPACE[@]}" tree
NAMES=(out.npy "--gallery must end in .safetensors")
refusal "--gallery of another format" "$BIN" index --gallery out.npy "${SPACE[@]}" tree
mkdir -p empty
NAMES=(empty "no inputs found")
refusal "no inputs" "$BIN" index --gallery out.safetensors "${SPACE[@]}" empty
NAMES=("INPUTS")
refusal "no INPUTS" "$BIN" index --gallery out.safetensors "${SPACE[@]}"
mkdir -p bad
cp tree/img/i000.png bad/
printf 'not a png' >bad/broken.png
: >bad/empty.txt
NAMES=(broken.png)
refusal "an unreadable image" "$BIN" index --gallery out.safetensors "${SPACE[@]}" bad/i000.png bad/broken.png
NAMES=(empty.txt "an empty text" "--skip-bad")
refusal "an empty text" "$BIN" index --gallery out.safetensors "${SPACE[@]}" bad/empty.txt
"$BIN" index --gallery sk.safetensors "${SPACE[@]}" --skip-bad bad 2>skip.txt || fail "--skip-bad"
grep -q "1 rows (.*skipped 2)" skip.txt && grep -q "broken.png" skip.txt && grep -q "empty.txt: an empty text" skip.txt ||
    fail "--skip-bad's summary: $(cat skip.txt)"
NAMES=("give one query")
refusal "two queries" "$BIN" search --gallery g.safetensors --text x --image tree/img/i000.png
NAMES=("--modality" "sound")
refusal "a bad --modality" "$BIN" search --gallery g.safetensors --text x --modality image,sound
NAMES=("--top")
refusal "--top 0" "$BIN" search --gallery g.safetensors --text x --top 0
NAMES=(README.md "not a file any encoder reads")
refusal "a query file of no kind" "$BIN" search --gallery g.safetensors --query-file tree/README.md
NAMES=(missing.safetensors)
refusal "no gallery" "$BIN" search --gallery missing.safetensors --text x
head -c 300 g.safetensors >trunc.safetensors
NAMES=(trunc.safetensors)
refusal "a truncated gallery" "$BIN" search --gallery trunc.safetensors --text x
NAMES=("no encoder embeds audio queries")
refusal "a query no side embeds" "$BIN" search --gallery u.safetensors --audio tree/snd/a_short.wav
# --rebuild: the same file, remade with another connection (its images and texts; no sounds).
cp g.safetensors rb.safetensors
"$BIN" index --gallery rb.safetensors --model "$U" --encoder-a "$CLIP" --tokenizer-a "$VOCAB" --rebuild --quiet tree ||
    fail "--rebuild with another model"
gallery_py '
import os
A, B = g.read("g.safetensors"), g.read("rb.safetensors")
assert B["meta"]["model"] == os.path.realpath(sys.argv[1]) and B["meta"]["dim"] == "512", B["meta"]
assert B["meta"]["model_fingerprint"] != A["meta"]["model_fingerprint"] and B["meta"]["encoder_b"] == ""
assert sorted(set(B["modality"].tolist())) == [0, 2] and len(B["paths"]) == sum(m in (0, 2) for m in A["modality"])
' "$U" || fail "the rebuilt gallery"
finish cli_index_search
