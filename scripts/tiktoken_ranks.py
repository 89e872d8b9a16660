#!/usr/bin/env python3
"""Converts the byte-pair ranks of npm `tiktoken` (encoders/<name>.json, MIT) into aos_cus's rank files.

Usage: scripts/tiktoken_ranks.py NODE_MODULES_TIKTOKEN_DIR OUT_DIR
  e.g. (cd /tmp/t && npm install tiktoken@1.0.22) && scripts/tiktoken_ranks.py /tmp/t/node_modules/tiktoken data
  (clients/node/test/tokens.test.ts checks that the committed files are this script's output for that version).
Writes OUT_DIR/aos_cus_cl100k_base.bpe and OUT_DIR/aos_cus_o200k_base.bpe, read by src/core/bpe.c.

File layout (little-endian u32 unless said): magic b"AOSBPE01", n_ranks, n_slots (a power of two),
blob_len, offsets[n_ranks + 1] (token r is blob[offsets[r]:offsets[r + 1]]), slots[n_slots] (open
addressing by 32-bit FNV-1a of the token's bytes, linear probing; 0 is empty, else rank + 1), blob.
Ranks must be dense (0 .. n_ranks - 1); special tokens are not included (counting treats them as text).
"""
import base64
import json
import os
import struct
import sys

ENCODINGS = ("cl100k_base", "o200k_base")


def fnv1a(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def ranks_of(path):
    """Token bytes by rank from the package's compressed rank text: lines '! OFFSET TOKEN...' (base64)."""
    with open(path, encoding="utf-8") as f:
        text = json.load(f)["bpe_ranks"]
    ranks = {}
    for line in text.split("\n"):
        if not line:
            continue
        _, offset, *tokens = line.split(" ")
        for i, tok in enumerate(tokens):
            ranks[int(offset) + i] = base64.b64decode(tok)
    n = len(ranks)
    if sorted(ranks) != list(range(n)):
        sys.exit(f"{path}: ranks are not dense 0..{n - 1}")
    if len(set(ranks.values())) != n:
        sys.exit(f"{path}: a token has two ranks")
    return [ranks[r] for r in range(n)]


def write(tokens, out):
    n = len(tokens)
    slots_n = 1
    while slots_n < 2 * n:
        slots_n *= 2
    slots = [0] * slots_n
    offsets, blob = [0], bytearray()
    for rank, tok in enumerate(tokens):
        blob += tok
        offsets.append(len(blob))
        h = fnv1a(tok) & (slots_n - 1)
        while slots[h]:
            h = (h + 1) & (slots_n - 1)
        slots[h] = rank + 1
    with open(out, "wb") as f:
        f.write(b"AOSBPE01")
        f.write(struct.pack("<3I", n, slots_n, len(blob)))
        f.write(struct.pack(f"<{n + 1}I", *offsets))
        f.write(struct.pack(f"<{slots_n}I", *slots))
        f.write(blob)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out_dir = sys.argv[1:]
    for name in ENCODINGS:
        tokens = ranks_of(os.path.join(src, "encoders", name + ".json"))
        out = os.path.join(out_dir, f"aos_cus_{name}.bpe")
        write(tokens, out)
        print(f"{out}: {len(tokens)} ranks, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
