#!/usr/bin/env bash
# cmcr serve's page in a browser (docs/serve.md): headless Chromium driven by Debian's
# python3-selenium and chromium-driver (scripts/serve_browser.py), with no network but the
# server's. A gallery that cmcr index made of generated images, the small CLAP's sounds, texts
# and, when the shared test data has them, the real photos and sounds; the page is asked a
# text, then a sound file is uploaded; the cards and the list must show what
# `cmcr search --json` answers for the same queries (paths, scores in descending order), with
# every thumbnail and heatmap loaded; a corrupt sound shows the server's error. The screenshot
# of the sound's results must decode and not be blank; with CMCR_SERVE_SCREENSHOT=PATH it is
# also saved there in 256 colours (docs/serve.png is one). Skipped (77) when Chromium, chromium-driver or
# selenium is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
serve_need
for exe in chromium chromedriver; do
    command -v "$exe" >/dev/null || { echo "SKIPPED: needs Debian's chromium and chromium-driver ($exe is not installed)"; exit 77; }
done
"$PY" -c 'import selenium' 2>/dev/null || { echo "SKIPPED: needs Debian's python3-selenium"; exit 77; }
DRIVER=$(cd "$(dirname "$0")/../scripts" && pwd)/serve_browser.py
scratch serve-browser
cd "$T" || exit 1
ASSETS=$DATA/cmcr-assets
serve_media media "$ASSETS"
serve_index g.safetensors media || finish cli_serve_browser
serve_start g.safetensors --quiet || finish cli_serve_browser

TOP=8
TEXT="a dog barking in the yard"
SOUND=media/snd/a_short.wav
[ -f media/real/BBQ.wav ] && SOUND=media/real/BBQ.wav
head -c 3000 "$SOUND" >corrupt.wav
expect() { # NAME QUERY-FLAG QUERY: cmcr search's answers, images only and the rest
    "$BIN" search --gallery g.safetensors "$2" "$3" --top "$TOP" --modality image --json \
        >"$1_images.json" &&
        "$BIN" search --gallery g.safetensors "$2" "$3" --top "$TOP" --modality audio,text \
            --json >"$1_others.json" || fail "cmcr search $2"
}
expect text --text "$TEXT"
expect sound --audio "$SOUND"

"$PY" "$DRIVER" --url "$URL" --top "$TOP" --text "$TEXT" --text-images text_images.json --text-others text_others.json \
    --sound "$SOUND" --sound-images sound_images.json --sound-others sound_others.json \
    --corrupt corrupt.wav --error "truncated" --screenshot page.png
rc=$?
[ "$rc" -eq 77 ] && exit 77
[ "$rc" -eq 0 ] || fail "the page (see above)"
if [ -n "${CMCR_SERVE_SCREENSHOT:-}" ] && [ -f page.png ]; then # in 256 colours: a fifth of the bytes
    "$PY" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(sys.argv[2], optimize=True)' \
        page.png "$CMCR_SERVE_SCREENSHOT" && echo "screenshot: $CMCR_SERVE_SCREENSHOT"
fi
serve_stop
[ "$RC" -eq 0 ] || fail "SIGTERM: exit $RC"
finish cli_serve_browser
