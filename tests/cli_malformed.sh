#!/usr/bin/env bash
# Every malformed input through the command line: each must exit non-zero (and not by a
# signal), print exactly one line on stderr that names the file, and leave no output file.
# Prints the table that docs/errors.md reproduces.
. "$(dirname "$0")/lib.sh"
need_numpy "to make test files"
scratch malformed
cd "$T" || exit 1

"$PY" - <<'EOF'
import json, struct, numpy as np
r = np.random.default_rng(1)
good = r.standard_normal((6, 8)).astype(np.float32)
np.save("good.npy", good)
raw = open("good.npy", "rb").read()
open("truncated.npy", "wb").write(raw[:-10])
open("badmagic.npy", "wb").write(b"\x93NUMPZ" + raw[6:])
open("badheader.npy", "wb").write(raw[:10] + raw[10:60].replace(b"'shape'", b"'shapf'") + raw[60:])
open("empty.npy", "wb").write(b"")
np.save("fortran.npy", np.asfortranarray(r.standard_normal((6, 8)).astype(np.float32)))
np.save("bigendian.npy", good.astype(">f4"))
np.save("objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
np.save("ints.npy", np.arange(48, dtype=np.int64).reshape(6, 8))
nan = good.copy(); nan[3, 2] = np.nan; np.save("nanrow.npy", nan)
inf = good.copy(); inf[5, 0] = np.inf; np.save("infrow.npy", inf)
np.save("wide.npy", r.standard_normal((6, 9)).astype(np.float32))
end = raw.index(b"\n") + 1
hdr = raw[:end].replace(b"(6, 8)", b"(9223372036854775807, 8)")
hdr = hdr[:end - 1] + b"\n"  # keep the header length: drop padding spaces
open("overflow.npy", "wb").write(hdr + raw[end:])

def st(name, header, data=b"\0" * 16, size=None):
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    open(name, "wb").write(struct.pack("<Q", len(h) if size is None else size) + h + data)
st("st_hdrsize.safetensors", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, size=1 << 40)
open("st_badjson.safetensors", "wb").write(struct.pack("<Q", 8) + b'{"a": [1')
st("st_offsets.safetensors", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 64]}})
st("st_overlap.safetensors", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})
st("st_dtype.safetensors", {"a": {"dtype": "Q7", "shape": [4], "data_offsets": [0, 16]}})
st("st_shape.safetensors", {"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 16]}})
open("notzip.pt", "wb").write(b"PK\x03\x04 this is not really a zip archive")
st("st_name_newline.safetensors", {"a\nb": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})
st("st_name_escape.safetensors", {"\x1b[2J\x1b]0;owned\x07": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})
st("st_meta_escape.safetensors", {"__metadata__": {"note": "\x1b[31mred"},
                                  "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})
st("st_trailing.safetensors", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
EOF

# A valid model, to feed it bad embeddings.
"$PY" - <<'EOF'
import json, struct, numpy as np
r = np.random.default_rng(2)
t = {}
for side in ("Head_A", "Head_B"):
    t[f"{side}.net.0.weight"] = r.standard_normal((8, 8)).astype(np.float32)
    t[f"{side}.net.0.bias"] = np.zeros(8, np.float32)
    t[f"{side}.net.1.weight"] = np.ones(8, np.float32)
    t[f"{side}.net.1.bias"] = np.zeros(8, np.float32)
    t[f"{side}.net.1.running_mean"] = np.zeros(8, np.float32)
    t[f"{side}.net.1.running_var"] = np.ones(8, np.float32)
    t[f"{side}.net.1.num_batches_tracked"] = np.array(0, np.int64)
hdr, off, blobs = {}, 0, []
for k, v in t.items():
    b = v.tobytes()
    hdr[k] = {"dtype": "F32" if v.dtype == np.float32 else "I64", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
    off += len(b); blobs.append(b)
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
open("model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
EOF

echo "| input | command | exit | message |"
echo "|---|---|---|---|"
# check WHAT FILE COMMAND...: refused, naming FILE (tests/lib.sh's refusal).
check() {
    local what=$1
    NAMES=("$2")
    shift 2
    refusal "$what" "$@"
}
P=(project --model model.safetensors --side a --out out.npy --in)
check "truncated .npy" truncated.npy "$BIN" "${P[@]}" truncated.npy
check "bad magic" badmagic.npy "$BIN" inspect badmagic.npy
check "bad .npy header" badheader.npy "$BIN" inspect badheader.npy
check "empty file" empty.npy "$BIN" inspect empty.npy
check "Fortran order" fortran.npy "$BIN" "${P[@]}" fortran.npy
check "big-endian data" bigendian.npy "$BIN" "${P[@]}" bigendian.npy
check "object dtype" objects.npy "$BIN" inspect objects.npy
check "wrong dtype (int64 embeddings)" ints.npy "$BIN" "${P[@]}" ints.npy
check "shape overflow" overflow.npy "$BIN" inspect overflow.npy
check "NaN row" nanrow.npy "$BIN" "${P[@]}" nanrow.npy
check "Inf row" infrow.npy "$BIN" "${P[@]}" infrow.npy
check "wrong width for the model" wide.npy "$BIN" "${P[@]}" wide.npy
check "safetensors header size past the end" st_hdrsize.safetensors "$BIN" inspect st_hdrsize.safetensors
check "safetensors header not JSON" st_badjson.safetensors "$BIN" inspect st_badjson.safetensors
check "safetensors offsets out of range" st_offsets.safetensors "$BIN" inspect st_offsets.safetensors
check "safetensors overlapping tensors" st_overlap.safetensors "$BIN" inspect st_overlap.safetensors
check "safetensors unknown dtype" st_dtype.safetensors "$BIN" inspect st_dtype.safetensors
check "safetensors shape overflow" st_shape.safetensors "$BIN" convert st_shape.safetensors out.safetensors
check "safetensors tensor name with a newline" st_name_newline.safetensors "$BIN" inspect st_name_newline.safetensors
check "safetensors tensor name with escape sequences" st_name_escape.safetensors "$BIN" inspect st_name_escape.safetensors
check "safetensors metadata value with an escape sequence" st_meta_escape.safetensors "$BIN" inspect st_meta_escape.safetensors
check "safetensors tensor name with a newline, converted to .pt" st_name_newline.safetensors "$BIN" convert st_name_newline.safetensors out.pt
check "safetensors bytes after the data" st_trailing.safetensors "$BIN" inspect st_trailing.safetensors
check "not a zip (.pt)" notzip.pt "$BIN" inspect notzip.pt
check "missing file" missing.npy "$BIN" inspect missing.npy
check "a tensor file that is not a model" good.npy "$BIN" "${P[@]/model.safetensors/good.npy}" good.npy
# A 60 KB .pt whose 3000 tensors view one 1 MiB storage (deflated): inspect reads the storage
# once, so it runs in 1.5 GB of address space (copies per view would take 3 GB). Skipped under
# AddressSanitizer, which reserves more address space than that for itself.
if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "NOTE: no torch in $PY; the shared-storage check is skipped"
elif ldd "$BIN" 2>/dev/null | grep -q libasan; then
    echo "NOTE: AddressSanitizer build; the shared-storage check under ulimit -v is skipped"
else
    "$PY" - <<'EOF'
import io, zipfile, torch
x = torch.zeros(1 << 18)
buf = io.BytesIO()
torch.save({f"v{i}": x[i % 7:] for i in range(3000)}, buf)
src = zipfile.ZipFile(buf)
with zipfile.ZipFile("views.pt", "w", zipfile.ZIP_DEFLATED) as z:
    for name in src.namelist():
        z.writestr(name, src.read(name))
EOF
    size=$(stat -c %s views.pt)
    out=$( (ulimit -v 1500000; "$BIN" inspect views.pt) 2>err.txt)
    rc=$?
    echo "| .pt of $size bytes, 3000 views of one 1 MiB storage | \`inspect views.pt\` (ulimit -v 1500000) | $rc | \`$(cat err.txt)\` |"
    if [ $rc -ne 0 ]; then fail "views of one storage: inspect failed in 1.5 GB"; fi
    if ! grep -q "3000 tensors" <<<"$out"; then fail "views of one storage: inspect did not list 3000 tensors"; fi
fi
finish cli_malformed
