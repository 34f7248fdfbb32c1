#!/usr/bin/env python3
"""Golden data for the tokenization unit tests, from independent Python implementations:
  - unicode_normalization.jsonl: NFC/NFD/NFKC/NFKD (unicodedata) of every code point that has a decomposition or a
    non-zero combining class, plus random sequences mixing starters, marks and Hangul jamo;
  - regex_cases.jsonl: matches of the `regex` module (finditer) for tokenizer split patterns and engine features.
Run from the repository root:  python3 tools/gen_tokenization_test_data.py
"""
import json, os, random, unicodedata
import regex

out_dir = os.path.join(os.path.dirname(__file__), "..", "tests", "FuseSharp.Tests", "Fixtures", "tokenization")
os.makedirs(out_dir, exist_ok=True)

def forms(s):
    return {"text": s, "nfc": unicodedata.normalize("NFC", s), "nfd": unicodedata.normalize("NFD", s),
            "nfkc": unicodedata.normalize("NFKC", s), "nfkd": unicodedata.normalize("NFKD", s)}

interesting = [cp for cp in range(0x110000)
               if not (0xD800 <= cp <= 0xDFFF) and (unicodedata.decomposition(chr(cp)) or unicodedata.combining(chr(cp)))]
rng = random.Random(20240607)
pool = [chr(c) for c in interesting] + list("aeiouAEIOUnckgsz ") + [chr(0x1100 + i) for i in range(19)] + \
       [chr(0x1161 + i) for i in range(21)] + [chr(0x11A8 + i) for i in range(27)] + [chr(0xAC00 + rng.randrange(11172)) for _ in range(40)]
with open(os.path.join(out_dir, "unicode_normalization.jsonl"), "w", encoding="utf-8") as f:
    for cp in interesting:
        f.write(json.dumps(forms(chr(cp)), ensure_ascii=False) + "\n")
    for _ in range(3000):
        s = "".join(rng.choice(pool) for _ in range(rng.randrange(1, 7)))
        f.write(json.dumps(forms(s), ensure_ascii=False) + "\n")

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
texts = ["Hello world! It's 2024, isn't it?", "  multiple   spaces\n\n\ttabs\r\nend  ", "x = [i**2 for i in range(10)]",
         "数字１２３ and ١٢٣ or 𝟘𝟙", "𝐀𝐁𝐂 letters 𠀀𠀁 and 😀 emoji", "CAPS'S 'ſ 'Re 'LL 'VE done", "a\u00a0b\u3000c\u2028d",
         "aaa", "aaaa bbb", "<|endoftext|> tokens", "...!!!???", "", "ab12cd345ef"]
cases = []
def add(onig, text, py=None):
    py = py or onig
    cases.append({"pattern": onig, "text": text, "matches": [[m.start(), m.end()] for m in regex.finditer(py, text)]})
for t in texts:
    add(GPT2, t)
    add(LLAMA3, t)
    add(r"\p{N}{1,3}", t)
    add(r"\s?\p{L}+", t)
    add(r"[\p{P}\$\+<=>\^~\|`]+", t)
    add(r"[^\s\p{L}\p{N}]+?", t)        # lazy
    add(r"\p{L}++", t)                   # possessive
    add(r"(?>\p{L}+)\d?", t)             # atomic
    add(r"(?<=\s)\p{L}+", t)             # look-behind
    add(r"(?<!\p{L})\p{N}{2}", t)        # negative look-behind
    add(r"\p{L}+(?=\s|$)", t, r"(?m)\p{L}+(?=\s|$)")   # Oniguruma's $ is end of line
    add(r"^\s*\S", t, r"(?m)^\s*\S")
    add(r"(?i:ab|C)+", t)
    add(r"[A-Za-zµÀ-ÖØ-öø-ƺ𐐀-𐑏]+", t)
    add(r"a{2,3}|b{2}", t)
    add(r"(?:x|y)*z?", t)                # can match empty
with open(os.path.join(out_dir, "regex_cases.jsonl"), "w", encoding="utf-8") as f:
    for c in cases:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
print(f"{len(interesting)} code points + 3000 sequences; {len(cases)} regex cases")
