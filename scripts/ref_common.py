"""What the Python references share: the safetensors writer and its header-only fuzz seeds
(one copy, so that every fixture checkpoint is written the same way). Import with the scripts
folder on sys.path."""
import json
import struct

import torch

ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def save_safetensors(state, path):
    """The safetensors format: 8-byte little-endian header length, JSON header, data.
    bfloat16 tensors go out as their raw bytes (numpy has no bfloat16)."""
    header, blobs, off = {}, [], 0
    for k, v in state.items():
        raw = v.contiguous().view(torch.uint8).numpy().tobytes() if v.dtype == torch.bfloat16 \
            else v.contiguous().numpy().tobytes()
        header[k] = {"dtype": ST_DTYPES[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def save_safetensors_header(state, path):
    """A fuzz seed: the safetensors file of state cut after its JSON header (the fuzz harness
    appends the data the header asks for)."""
    save_safetensors(state, path)
    with open(path, "rb") as f:
        b = f.read()
    with open(path, "wb") as f:
        f.write(b[:8 + struct.unpack("<Q", b[:8])[0]])
