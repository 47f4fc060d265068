#!/usr/bin/env bash
# cmcr serve's JSON API (docs/serve.md) on a gallery that cmcr index made of generated images,
# the small CLAP's sounds and texts (tests/serve_lib.sh): every endpoint's answer equals the
# command line's (embed = cmcr embed + cmcr project within 1e-5, search = cmcr search --json,
# localise = cmcr localise, files byte for byte); every bad request gets its 4xx and one JSON
# error line, and the next good request is answered; it listens on 127.0.0.1 only; answers
# given concurrently equal the sequential ones; SIGTERM with a request in flight: that request
# is answered and the server exits 0; a server that cannot start says why in one line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || { echo "SKIPPED: needs curl"; exit 77; }
serve_need
SRC=${CMCR_SOURCE_DIR:?}
scratch serve
cd "$T" || exit 1
serve_media media
serve_index g.safetensors media || finish cli_serve
serve_start g.safetensors --workers 2 || finish cli_serve

# req NAME STATUS CURL_ARGS...: the answer (in body.out) has that status; an error is
# {"error": "one line"} (printed as a table row for docs/serve.md).
req() {
    local name=$1 want=$2 code
    shift 2
    code=$(curl -s -o body.out -D head.out -w '%{http_code}' "$@")
    if [ "$code" != "$want" ]; then
        fail "$name: status $code, expected $want: $(head -c 300 body.out)"
        return 1
    fi
    [ "$want" -lt 400 ] && return 0
    echo "| $name | $code | \`$(cat body.out)\` |"
    "$PY" - <<'EOF' || fail "$name: not one JSON error line: $(cat body.out)"
import json
d = json.load(open("body.out"))
assert list(d) == ["error"] and isinstance(d["error"], str) and d["error"], d
assert "\n" not in d["error"] and "\r" not in d["error"], d
EOF
}
# good: a request right after a refusal is answered.
good() { req "a search after: $1" 200 -X POST --data-binary 'a dog' "$URL/api/search?modality=text&top=2"; }

# 1. The listening line, and 127.0.0.1 only: no listening socket of the server's port is on
#    another address, and another address of this machine refuses the connection.
PORT=${URL##*:}
[ "$(cat srv_out.txt)" = "cmcr serve: listening on http://127.0.0.1:$PORT/" ] || fail "the listening line: $(cat srv_out.txt)"
"$PY" - "$PORT" <<'EOF' || fail "listening elsewhere than 127.0.0.1"
import sys
port, seen = int(sys.argv[1]), []
for name in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(name).read().splitlines()[1:]
    except OSError:
        continue
    for l in lines:
        local, state = l.split()[1], l.split()[3]
        addr, p = local.split(":")
        if state == "0A" and int(p, 16) == port:
            seen.append(addr)
print("  listening sockets of port", port, ":", seen)
assert seen == ["0100007F"], seen
EOF
other=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -v '^127\.' | grep -v ':' | head -1)
if [ -n "$other" ]; then
    ! curl -s -o /dev/null --max-time 5 "http://$other:$PORT/api/info" || fail "answered on $other"
fi

# 2. The page: the file in the source tree, byte for byte, self-contained.
req "the page" 200 "$URL/"
cmp -s body.out "$SRC/tools/serve/index.html" || fail "GET / is not tools/serve/index.html"
grep -qi '^content-type: text/html' head.out && grep -qi "^content-security-policy: default-src 'none'" head.out ||
    fail "the page's headers: $(cat head.out)"
! grep -Eq '(src|href)="(https?:)?//' "$SRC/tools/serve/index.html" || fail "the page loads something from elsewhere"

# 3. /api/info: the gallery's rows by modality, the space, the limits.
req "info" 200 "$URL/api/info"
"$PY" - <<'EOF' || fail "/api/info: $(cat body.out)"
import json
d = json.load(open("body.out"))
assert d["gallery"]["modalities"] == {"image": 4, "audio": 5, "text": 3, "points": 0}, d["gallery"]
assert d["gallery"]["rows"] == 12 and d["dim"] == 512 and d["queries"] == ["image", "audio", "text"], d
assert d["encoders"]["a"]["kind"] == "clap" and d["encoders"]["b"]["kind"] == "clip" and d["localise"], d
assert d["limits"]["max_upload"] == 32 << 20 and d["limits"]["workers"] == 2, d["limits"]
EOF

# 4. embed = cmcr embed + cmcr project (side a: sounds and texts, side b: images).
tojson() { "$PY" -c 'import json, sys, numpy as np; np.save(sys.argv[2], np.array([json.load(open(sys.argv[1]))["embedding"]], np.float32))' "$@"; }
req "embed a sound" 200 -X POST --data-binary @media/snd/a_short.wav "$URL/api/embed?modality=audio"
tojson body.out api_snd.npy
"$BIN" embed --model "$ENC_A" --audio media/snd/a_short.wav --out e.npy --quiet &&
    "$BIN" project --model "$M" --side a --in e.npy --out ref_snd.npy >/dev/null || fail "cmcr embed + project (sound)"
close api_snd.npy ref_snd.npy 1e-5
req "embed an image" 200 -X POST --data-binary @media/img/gen1.png "$URL/api/embed?modality=image"
tojson body.out api_img.npy
"$BIN" embed --model "$ENC_B" --images media/img/gen1.png --out e.npy --quiet &&
    "$BIN" project --model "$M" --side b --in e.npy --out ref_img.npy >/dev/null || fail "cmcr embed + project (image)"
close api_img.npy ref_img.npy 1e-5
printf 'a dog barking in the yard' >q.txt
req "embed a text" 200 -X POST --data-binary @q.txt "$URL/api/embed?modality=text"
tojson body.out api_txt.npy
"$BIN" embed --model "$ENC_A" --tokenizer "$TOK_A" --text q.txt --out e.npy --quiet &&
    "$BIN" project --model "$M" --side a --in e.npy --out ref_txt.npy >/dev/null || fail "cmcr embed + project (text)"
close api_txt.npy ref_txt.npy 1e-5

# 5. search = cmcr search --json: the same rows in the same order, the same scores.
same_search() { # NAME API_JSON CLI_JSON
    "$PY" - "$@" <<'EOF' || fail "$1: the server's search differs from cmcr search"
import json, sys
api, cli = json.load(open(sys.argv[2]))["results"], json.load(open(sys.argv[3]))["results"]
assert len(api) == len(cli) > 0, (len(api), len(cli))
for a, c in zip(api, cli):
    assert (a["rank"], a["path"], a["modality"]) == (c["rank"], c["path"], c["modality"]), (a, c)
    assert abs(a["score"] - c["score"]) <= 1e-5, (a, c)
print(f"  {sys.argv[1]}: {len(api)} results equal to cmcr search's")
EOF
}
req "search a text" 200 -X POST --data-binary @q.txt "$URL/api/search?modality=text&top=7"
cp body.out s1.json
"$BIN" search --gallery g.safetensors --text "$(cat q.txt)" --top 7 --json >c1.json || fail "cmcr search --text"
same_search "a text" s1.json c1.json
req "search a sound, images only" 200 -X POST --data-binary @media/snd/c_stereo.flac "$URL/api/search?modality=audio&top=3&only=image"
cp body.out s2.json
"$BIN" search --gallery g.safetensors --audio media/snd/c_stereo.flac --modality image --top 3 --json >c2.json ||
    fail "cmcr search --audio"
same_search "a sound, images only" s2.json c2.json
req "search an image, sounds and texts" 200 -X POST --data-binary @media/img/gen0.jpg "$URL/api/search?modality=image&top=20&only=audio,text"
cp body.out s3.json
"$BIN" search --gallery g.safetensors --image media/img/gen0.jpg --modality audio,text --top 20 --json >c3.json ||
    fail "cmcr search --image"
same_search "an image, sounds and texts (top 20 of 8)" s3.json c3.json

# 6. Gallery files by row, byte for byte, typed by their content (every row: a search for
#    more results than the gallery has lists them all).
req "every row" 200 -X POST --data-binary @q.txt "$URL/api/search?modality=text&top=100"
"$PY" - <<'EOF' >rows.txt || fail "reading the rows"
import json
rows = json.load(open("body.out"))["results"]
assert len(rows) == 12, len(rows)
for r in rows:
    print(r["row"], r["path"])
EOF
while read -r row path; do
    req "file of row $row" 200 "$URL/api/file?row=$row" || continue
    cmp -s body.out "$path" || fail "row $row is not $path"
done < <(sort -n rows.txt)
req "file of an image row" 200 "$URL/api/file?row=$(sed -n 's/^\([0-9]*\) .*gen1\.png$/\1/p' rows.txt | head -1)"
grep -qi '^content-type: image/png' head.out || fail "a PNG's type: $(cat head.out)"

# 7. localise = cmcr localise: the same PNG, box and map, for a gallery row and for the same
#    image uploaded (multipart); the map is the sound's cosine with each projected patch.
IMG=media/img/gen0.jpg
ROW=$(sed -n 's/^\([0-9]*\) .*gen0\.jpg$/\1/p' rows.txt | head -1)
req "localise a sound in a gallery image" 200 -X POST --data-binary @media/snd/a_short.wav "$URL/api/localise?modality=audio&row=$ROW"
cp body.out loc.png
box=$(sed -n 's/^x-cmcr-box: \([^\r]*\)\r*$/\1/Ip' head.out)
sed -n 's/^x-cmcr-map: \([^\r]*\)\r*$/\1/Ip' head.out >map.txt
[[ $box =~ ^[0-9]+,[0-9]+,[0-9]+,[0-9]+$ || $box == none ]] || fail "X-Cmcr-Box: '$box'"
"$BIN" localise --model "$M" --encoder-a "$ENC_A" --encoder-b "$ENC_B" --audio media/snd/a_short.wav --image "$IMG" \
    --out cli.png --map cli_map.npy --json >cli_loc.json 2>/dev/null || fail "cmcr localise"
cmp -s loc.png cli.png || fail "the server's overlay differs from cmcr localise's"
"$PY" - "$box" <<'EOF' || fail "the map or the box differ from cmcr localise's"
import json, sys, numpy as np
api = np.array([float(v) for v in open("map.txt").read().strip().split(",")])
cli = np.load("cli_map.npy").astype(np.float64).ravel()
assert api.shape == cli.shape == (49,), (api.shape, cli.shape)
assert np.abs(api - cli).max() <= 1e-5, np.abs(api - cli).max()
box = json.load(open("cli_loc.json"))["box"]
assert sys.argv[1] == (",".join(map(str, box)) if box else "none"), (sys.argv[1], box)
from PIL import Image
im = Image.open("loc.png")
assert im.size == Image.open("media/img/gen0.jpg").size, im.size
print("  localise: 7x7 map equal to cmcr localise's, PNG", im.size, "box", sys.argv[1])
EOF
req "localise a sound in an uploaded image" 200 -F query=@media/snd/a_short.wav -F image=@"$IMG" "$URL/api/localise?modality=audio"
cmp -s body.out loc.png || fail "the uploaded image's overlay differs from the gallery row's"
req "localise a text, scaled" 200 -X POST --data-binary @q.txt "$URL/api/localise?modality=text&row=$ROW&max=64"
"$PY" -c 'from PIL import Image; s = Image.open("body.out").size; assert max(s) == 64, s' || fail "?max=64"

# 8. Bad requests: their status and one JSON line each; the server goes on.
echo "| request | status | answer |"
echo "|---|---|---|"
head -c 2000 "$IMG" >truncated.jpg
req "a corrupt JPEG" 422 -X POST --data-binary @truncated.jpg "$URL/api/search?modality=image" && good "a corrupt JPEG"
req "a text as a sound" 415 -X POST --data-binary @q.txt "$URL/api/embed?modality=audio" && good "a text as a sound"
req "an image as a sound" 415 -X POST --data-binary @"$IMG" "$URL/api/search?modality=audio" && good "an image as a sound"
req "a sound as an image" 415 -X POST --data-binary @media/snd/a_short.wav "$URL/api/embed?modality=image" && good "a sound as an image"
head -c 100 media/snd/a_short.wav >cut.wav
req "a truncated WAV" 422 -X POST --data-binary @cut.wav "$URL/api/embed?modality=audio" && good "a truncated WAV"
req "an empty body" 400 -X POST "$URL/api/search?modality=text" && good "an empty body"
req "an unknown path" 404 --path-as-is "$URL/../etc/passwd" && good "an unknown path"
req "an unknown endpoint" 404 "$URL/api/files?row=0" && good "an unknown endpoint"
req "a row past the end" 404 "$URL/api/file?row=12" && good "a row past the end"
req "a row that is not a number" 400 "$URL/api/file?row=0x1" && good "a row that is not a number"
req "a path instead of a row" 400 "$URL/api/file?path=/etc/passwd" && good "a path instead of a row"
req "a sound row to localise in" 400 -X POST --data-binary @q.txt "$URL/api/localise?modality=text&row=$(sed -n 's/^\([0-9]*\) .*a_short\.wav$/\1/p' rows.txt | head -1)"
req "an unknown modality" 400 -X POST --data-binary @q.txt "$URL/api/embed?modality=smell" && good "an unknown modality"
req "a modality the space has no encoder for" 400 -X POST --data-binary @q.txt "$URL/api/embed?modality=points"
req "an unknown argument" 400 -X POST --data-binary @q.txt "$URL/api/search?modality=text&topk=3" && good "an unknown argument"
req "top 0" 400 -X POST --data-binary @q.txt "$URL/api/search?modality=text&top=0"
req "GET on a POST endpoint" 405 "$URL/api/search?modality=text" &&
    { grep -qi '^allow: POST' head.out || fail "a 405 without 'Allow: POST'"; } && good "GET on a POST endpoint"
req "a form where the raw bytes go" 400 -F query=@q.txt "$URL/api/embed?modality=text" && good "a form to embed"
req "a form with a gallery row" 400 -F query=@q.txt "$URL/api/localise?modality=text&row=$ROW" && good "a form with a row"
req "another site's page (Origin)" 403 -H 'Origin: http://attacker.example' -X POST --data-binary @q.txt \
    "$URL/api/search?modality=text" && good "another site's Origin"
req "another site's page (Sec-Fetch-Site)" 403 -H 'Sec-Fetch-Site: cross-site' "$URL/api/file?row=0" &&
    good "Sec-Fetch-Site: cross-site"
req "the server's own page (Origin)" 200 -H "Origin: http://127.0.0.1:$PORT" -X POST --data-binary @q.txt \
    "$URL/api/search?modality=text"
grep -qi '^cross-origin-resource-policy: same-origin' head.out || fail "no Cross-Origin-Resource-Policy header"
req "another host name (DNS rebinding)" 403 -H 'Host: attacker.example:80' "$URL/api/info" && good "another host name"
req "localhost by name" 200 -H "Host: localhost:$PORT" "$URL/api/info"

# 9. Concurrent answers equal the sequential ones (the encoders, the model and the gallery are
#    shared by the workers): 24 requests at once, each answer byte for byte as before.
for i in $(seq 8); do
    curl -s -o "c_txt$i.json" -X POST --data-binary @q.txt "$URL/api/search?modality=text&top=7" &
    curl -s -o "c_snd$i.json" -X POST --data-binary @media/snd/c_stereo.flac "$URL/api/search?modality=audio&top=3&only=image" &
    curl -s -o "c_img$i.json" -X POST --data-binary @media/img/gen0.jpg "$URL/api/search?modality=image&top=20&only=audio,text" &
done
wait $(jobs -p | grep -vx "$SRV")
for i in $(seq 8); do
    cmp -s "c_txt$i.json" s1.json && cmp -s "c_snd$i.json" s2.json && cmp -s "c_img$i.json" s3.json ||
        fail "concurrent answers $i differ from the sequential ones"
done
serve_stop
[ "$RC" -eq 0 ] || fail "SIGTERM: exit $RC"
n=$(grep -c '^cmcr serve: 127\.0\.0\.1 "' srv_log.txt)
[ "$n" -ge 60 ] || fail "the access log has $n request lines"

# 10. A body over --max-upload is refused before it is read, and SIGTERM lets a request in
#     flight finish: the client sends its headers (Expect: 100-continue), the server agrees,
#     SIGTERM comes, the client sends the body, and gets its answer; then the server exits 0.
serve_start g.safetensors --max-upload 1 --quiet || finish cli_serve
head -c 1100000 /dev/zero >big.bin
req "a body over --max-upload 1 (MiB)" 413 -X POST --data-binary @big.bin "$URL/api/embed?modality=audio" && good "an oversize body"
[ ! -s srv_log.txt ] || fail "--quiet: $(cat srv_log.txt)"
"$PY" - "${URL##*:}" media/snd/a_short.wav <<'EOF' >inflight.txt 2>&1 &
import json, os, socket, sys, time
port, body = int(sys.argv[1]), open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /api/embed?modality=audio HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n"
          b"Expect: 100-continue\r\n\r\n" % (port, len(body)))
assert s.recv(100).startswith(b"HTTP/1.1 100"), "no 100 Continue"
print("headers taken", flush=True)
for _ in range(600):  # the test sends SIGTERM, then makes the file "go"
    if os.path.exists("go"):
        break
    time.sleep(0.05)
s.sendall(body)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, rest = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
print("embedding of", len(json.loads(rest)["embedding"]))
EOF
CLIENT=$!
for ((i = 0; i < 300; i++)); do grep -q 'headers taken' inflight.txt && break; sleep 0.1; done
kill -TERM "$SRV"
sleep 0.3 # the server is draining: it must wait for the body
touch go
wait "$CLIENT" || fail "the client in flight: $(cat inflight.txt)"
grep -q '^HTTP/1.1 200' inflight.txt && grep -q 'embedding of 512' inflight.txt || fail "the request in flight: $(cat inflight.txt)"
wait "$SRV"
RC=$?
[ "$RC" -eq 0 ] || fail "SIGTERM with a request in flight: exit $RC"

# 11. A server that cannot start says why, in one line.
NAMES=(missing.safetensors)
refusal "a missing gallery" "$BIN" serve --gallery missing.safetensors
NAMES=(--port)
refusal "a port out of range" "$BIN" serve --gallery g.safetensors --port 70000
NAMES=(--host)
refusal "an unknown host" "$BIN" serve --gallery g.safetensors --host no.such.host.invalid
cp "$M" other.safetensors
printf ' ' >>other.safetensors # another file: another fingerprint
NAMES=(g.safetensors other.safetensors "another model")
refusal "a model the gallery was not made with" "$BIN" serve --gallery g.safetensors --model other.safetensors
NAMES=(--workers)
refusal "no workers" "$BIN" serve --gallery g.safetensors --workers 0
serve_start g.safetensors --quiet || finish cli_serve
NAMES=("port ${URL##*:}" "in use")
refusal "a port in use" "$BIN" serve --gallery g.safetensors --port "${URL##*:}"
serve_stop
finish cli_serve
