#!/usr/bin/env bash
# No silent non-finite results: a model that breaks an invariant the forward pass relies on
# (NaN/Inf values, a negative BatchNorm variance), a finite model whose forward pass
# overflows float32, and the eval errors that must name their files. Each must exit
# non-zero (not by a signal), print exactly one line on stderr that names the file(s), and
# leave no output or temporary file. Prints the table that docs/errors.md reproduces.
. "$(dirname "$0")/lib.sh"
need_numpy "to make test files"
scratch nonfinite
cd "$T" || exit 1

"$PY" - <<'EOF'
import json, struct, numpy as np
r = np.random.default_rng(3)

def save(name, t):
    hdr, off, blobs = {}, 0, []
    for k, v in t.items():
        b = v.tobytes()
        hdr[k] = {"dtype": "F32" if v.dtype == np.float32 else "I64", "shape": list(v.shape),
                  "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
    open(name, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def model(w=None, gamma=1.0):
    t = {}
    for side in ("Head_A", "Head_B"):
        t[f"{side}.net.0.weight"] = (r.standard_normal((8, 8)) if w is None else np.full((8, 8), w)).astype(np.float32)
        t[f"{side}.net.0.bias"] = np.zeros(8, np.float32)
        t[f"{side}.net.1.weight"] = np.full(8, gamma, np.float32)
        t[f"{side}.net.1.bias"] = np.zeros(8, np.float32)
        t[f"{side}.net.1.running_mean"] = np.zeros(8, np.float32)
        t[f"{side}.net.1.running_var"] = np.ones(8, np.float32)
        t[f"{side}.net.1.num_batches_tracked"] = np.array(0, np.int64)
    return t

save("model.safetensors", model())
t = model(); t["Head_A.net.1.running_var"][5] = -1.0; save("negvar.safetensors", t)
t = model(); t["Head_B.net.0.weight"][1, 2] = np.nan; save("nanweight.safetensors", t)
t = model(); t["Head_A.net.1.bias"][3] = np.inf; save("infbias.safetensors", t)
# finite, but 1e30 * 1e30 overflows float32 in the forward pass
save("huge.safetensors", model(w=1e30, gamma=1e30))

x = np.abs(r.standard_normal((6, 8))).astype(np.float32)  # positive rows overflow...
x[:4] = 0  # ...zero rows do not: the first bad row is 4 (in the third block of 2 rows)
np.save("in.npy", x)
np.save("in_b.npy", np.abs(r.standard_normal((4, 8))).astype(np.float32))
np.save("gallery3.npy", x[:3])
np.save("classes.npy", r.standard_normal((3, 8)).astype(np.float32))
np.save("labels_1based.npy", np.array([1, 2, 3, 1, 2, 3], np.int64))
EOF

echo "| case | command | exit | message |"
echo "|---|---|---|---|"
# check WHAT COMMAND...: refused (tests/lib.sh's refusal); every string of the array NAMES
# (set before the call) must appear in the message.
check() { refusal "$@"; }
P=(project --side a --in in.npy --out out.npy --block 2 --model)
S=(similarity --side-a a --side-b b --a in.npy --b in_b.npy --out out.npy --model)
R=(eval retrieval --query-side a --gallery-side b --query in.npy --gallery in.npy --model)

NAMES=("negvar.safetensors" "Head_A.net.1.running_var[5]" "-1")
check "negative running_var" "$BIN" "${P[@]}" negvar.safetensors
NAMES=("nanweight.safetensors" "Head_B.net.0.weight[1, 2]" "NaN")
check "NaN weight" "$BIN" "${P[@]}" nanweight.safetensors
NAMES=("infbias.safetensors" "Head_A.net.1.bias[3]" "Inf")
check "Inf BatchNorm bias" "$BIN" "${S[@]}" infbias.safetensors
NAMES=("negvar.safetensors" "running_var[5]")
check "negative running_var (eval)" "$BIN" "${R[@]}" negvar.safetensors
NAMES=("huge.safetensors" "in.npy" "overflows" "row 4")
check "finite weights that overflow (project)" "$BIN" "${P[@]}" huge.safetensors
NAMES=("huge.safetensors" "in.npy" "overflows" "row 4")
check "finite weights that overflow (similarity)" "$BIN" "${S[@]}" huge.safetensors
NAMES=("huge.safetensors" "in.npy" "overflows" "row 4")
check "finite weights that overflow (eval retrieval)" "$BIN" "${R[@]}" huge.safetensors
NAMES=("huge.safetensors" "in.npy" "overflows" "row 4")
check "finite weights that overflow (eval zeroshot)" "$BIN" eval zeroshot --inputs in.npy --classes classes.npy \
    --labels labels_1based.npy --side a --classes-side b --model huge.safetensors
NAMES=("labels_1based.npy" "classes.npy")
check "zero-shot label out of range" "$BIN" eval zeroshot --inputs in.npy --classes classes.npy \
    --labels labels_1based.npy
NAMES=("in.npy" "gallery3.npy")
check "more queries than gallery rows (by row)" "$BIN" eval retrieval --query in.npy --gallery gallery3.npy

finish cli_nonfinite
