#!/usr/bin/env python3
"""Writes src/FuseSharp/Tokenization/Unicode/UnicodeNormalization.bin from Python's unicodedata.

FuseSharp runs with InvariantGlobalization, where string.Normalize is a no-op, so the tokenizers carry their own
NFC/NFD/NFKC/NFKD tables. Run once when the Unicode version should move:  python3 tools/gen_unicode_normalization.py

Layout (little endian):
  "FSUN" u8 version=1, u8 len, unicode version (ascii)
  u32 n; n x (u32 cp, u8 ccc)                                  canonical combining classes != 0
  u32 n; n x (u32 cp, u8 kind, u8 len, len x u32 cp)           full decompositions; kind 0 = canonical (NFD),
                                                               1 = compatibility only (NFKD differs from NFD)
  u32 n; n x (u32 first, u32 second, u32 composite)            primary composites (composition exclusions removed)
Hangul syllables are algorithmic and not listed.
"""
import os, struct, unicodedata

def hangul(cp):
    return 0xAC00 <= cp <= 0xD7A3

out = bytearray(b"FSUN")
ver = unicodedata.unidata_version.encode()
out += struct.pack("<BB", 1, len(ver)) + ver

ccc = [(cp, unicodedata.combining(chr(cp))) for cp in range(0x110000) if unicodedata.combining(chr(cp))]
out += struct.pack("<I", len(ccc))
for cp, c in ccc:
    out += struct.pack("<IB", cp, c)

decomp = []
for cp in range(0x110000):
    if hangul(cp) or 0xD800 <= cp <= 0xDFFF:
        continue
    ch = chr(cp)
    d = unicodedata.normalize("NFD", ch)
    k = unicodedata.normalize("NFKD", ch)
    if d != ch:
        decomp.append((cp, 0, d))
    if k != d:
        decomp.append((cp, 1, k))
out += struct.pack("<I", len(decomp))
for cp, kind, s in decomp:
    out += struct.pack("<IBB", cp, kind, len(s)) + b"".join(struct.pack("<I", ord(c)) for c in s)

comp = []
for cp in range(0x110000):
    if hangul(cp) or 0xD800 <= cp <= 0xDFFF:
        continue
    raw = unicodedata.decomposition(chr(cp))
    if not raw or raw.startswith("<"):
        continue
    parts = [int(p, 16) for p in raw.split()]
    if len(parts) != 2:
        continue  # singletons never recompose
    if unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(cp):
        comp.append((parts[0], parts[1], cp))
out += struct.pack("<I", len(comp))
for a, b, c in comp:
    out += struct.pack("<III", a, b, c)

path = os.path.join(os.path.dirname(__file__), "..", "src", "FuseSharp", "Tokenization", "Unicode", "UnicodeNormalization.bin")
with open(path, "wb") as f:
    f.write(out)
print(f"unicode {unicodedata.unidata_version}: {len(ccc)} ccc, {len(decomp)} decompositions, {len(comp)} compositions, {len(out)} bytes")
