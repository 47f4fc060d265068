# tests/serve_lib.sh - sourced (after lib.sh) by the cmcr serve tests (cli_serve.sh,
# cli_serve_load.sh, cli_serve_browser.sh): the space they serve (the search fixture's
# clap_clip connection: side a the small CLAP, side b the small CLIP, texts by CLAP's
# RoBERTa tower), a gallery indexed from generated images, the small CLAP's sounds and a few
# texts, and starting and stopping a server.

# serve_need: skip (77) unless the fixtures, the RoBERTa files and Python with numpy and PIL
# are there. Sets F (fixtures), M (the connection), ENC_A, ENC_B, TOK_A, DATA.
serve_need() {
    need_numpy "to make images and check answers"
    "$PY" -c 'import PIL' 2>/dev/null || { echo "SKIPPED: needs Debian's python3-pil"; exit 77; }
    F=${CMCR_FIXTURES:?}
    M=$F/search/clap_clip.safetensors
    ENC_A=$F/clap_small/clap.pt
    ENC_B=$F/clip_small/small/openai.pt
    for f in "$M" "$ENC_A" "$ENC_B"; do
        [ -f "$f" ] || { echo "SKIPPED: $f is missing (ctest makes it: fixtures search, clap_small, clip_small)"; exit 77; }
    done
    DATA=${CMCR_TESTDATA:-${CMCR_TESTDATA_DEFAULT:-}}
    TOK_A=$DATA/tokenizers/roberta-base
    [ -f "$TOK_A/vocab.json" ] || { echo "SKIPPED: texts need the RoBERTa files of the shared test data ($TOK_A)"; exit 77; }
}

# serve_media DIR [ASSETS]: DIR/img (generated PNG and JPEG images of several sizes), DIR/snd
# (the small CLAP fixture's sounds), DIR/txt (texts); ASSETS: a folder of real photos and
# sounds to add (skipped when absent).
serve_media() {
    mkdir -p "$1/img" "$1/snd" "$1/txt"
    cp "$F"/clap_small/audio/* "$1/snd/" # WAV, FLAC, Ogg
    "$PY" - "$1/img" <<'EOF' || fail "making the images"
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(18)
for i, (hh, ww) in enumerate([(240, 320), (300, 200), (256, 256), (180, 360)]):
    y, x = np.mgrid[0:hh, 0:ww]
    a = np.stack([(x * (i + 1)) % 256, (y * 3 + 40 * i) % 256, ((x + y) * 2) % 256], -1).astype(np.uint8)
    a = np.clip(a.astype(int) + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(f"{sys.argv[1]}/gen{i}." + ("png" if i % 2 else "jpg"))
EOF
    printf 'a dog barking in the yard\n' >"$1/txt/dog.txt"
    printf 'a train passing over a bridge\n' >"$1/txt/train.txt"
    printf 'people grilling at a barbecue\n' >"$1/txt/bbq.txt"
    if [ -n "${2:-}" ] && [ -d "$2" ]; then
        mkdir -p "$1/real"
        cp "$2"/*.jpeg "$2"/*.wav "$1/real/" 2>/dev/null
    fi
}

# serve_index GALLERY DIR...: cmcr index of the folders with this space.
serve_index() {
    local g=$1
    shift
    "$BIN" index --gallery "$g" --model "$M" --encoder-a "$ENC_A" --encoder-b "$ENC_B" --tokenizer-a "$TOK_A" \
        --quiet "$@" 2>index.err || { cat index.err; fail "cmcr index"; return 1; }
}

# serve_start GALLERY [ARGS...]: start `cmcr serve` on a free port in the background (SRV its
# pid, URL its address, srv_out.txt and srv_log.txt its stdout and stderr) and wait for its
# listening line (at most 60 s). Returns 1 when it died or never listened. The space is the one
# the gallery records (model, encoders, tokenizers).
serve_start() {
    local g=$1 i
    shift
    rm -f srv_out.txt srv_log.txt # the last server's lines are not this one's
    "$BIN" serve --gallery "$g" --port 0 "$@" >srv_out.txt 2>srv_log.txt &
    SRV=$!
    URL=""
    for ((i = 0; i < 600; i++)); do
        URL=$(sed -n 's|^cmcr serve: listening on \(http://.*\)/$|\1|p' srv_out.txt 2>/dev/null)
        [ -n "$URL" ] && return 0
        kill -0 "$SRV" 2>/dev/null || break
        sleep 0.1
    done
    cat srv_log.txt
    fail "the server did not start listening"
    return 1
}

# serve_stop: SIGTERM, then the server's exit status in RC (it must stop by itself).
serve_stop() {
    kill -TERM "$SRV" 2>/dev/null
    wait "$SRV"
    RC=$?
}
