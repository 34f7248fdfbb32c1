#!/usr/bin/env python3
"""Extracts piece lists (id -> piece string) from the real tokenizer files in ../shared/fixtures/tokenizers, so the
fusion tests can check vocabulary mapping and distribution alignment before the tokenizer loaders exist.

Usage: make_vocab_fixtures.py SHARED_FIXTURES_DIR OUT_DIR
  llama2.json  all 32000 pieces of Llama-2 tokenizer.model (SentencePiece ModelProto field 1, piece = field 1)
  neox.json    the 50277 entries of GPT-NeoX-20B tokenizer.json (model.vocab + added_tokens below 50277)
  qwen2.json   the Qwen2 entries (vocab.json + the 3 added specials) for the ids the fusion fixtures reference
Each file: {"size": N, "marker": "...", "bos": id|null, "eos": id|null, "unk": id|null, "pieces": {"id": piece, ...}}
"""
import json, os, sys

def varint(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7F) << s; s += 7
        if x < 0x80: return r, i

def sentencepiece_pieces(path):
    b = open(path, 'rb').read(); i = 0; pieces = []
    while i < len(b):
        tag, i = varint(b, i); field, wt = tag >> 3, tag & 7
        if wt == 2:
            n, i = varint(b, i); body = b[i:i + n]; i += n
            if field == 1:
                j = 0; piece = None
                while j < len(body):
                    t, j = varint(body, j); f, w = t >> 3, t & 7
                    if w == 2:
                        m, j = varint(body, j)
                        if f == 1: piece = body[j:j + m].decode('utf-8')
                        j += m
                    elif w == 0: _, j = varint(body, j)
                    elif w == 5: j += 4
                    elif w == 1: j += 8
                pieces.append(piece)
        elif wt == 0: _, i = varint(b, i)
        elif wt == 5: i += 4
        elif wt == 1: i += 8
    return pieces

def referenced_ids(fixtures, blending):
    ids = set()
    for name in ('dist_align_fusellm.jsonl', 'dist_align_fusechat_v2.jsonl', 'dtw_alignments.jsonl'):
        for line in open(os.path.join(fixtures, 'fusion', name), encoding='utf-8'):
            d = json.loads(line)
            if d.get('blending') != blending: continue
            ids.update(d.get('blending_ids', []))
            for row in d.get('blending_topk_ids', []): ids.update(row)
    for name in ('ms_mapping_qwen2_to_llama2.json', 'ms_mapping_neox_to_llama2.json'):
        d = json.load(open(os.path.join(fixtures, 'fusion', name), encoding='utf-8'))
        if d['source'] != blending: continue
        ids.update(c[1] for c in d['counts'])
        ids.update(int(k) for k in d['blending_to_base'])
        ids.update(int(k) for k in d['forced'])
        for doc in d['documents']: ids.update(doc['blending_ids'])
    if blending == 'qwen2':
        d = json.load(open(os.path.join(fixtures, 'fusion', 'fusechat_v2_minED_as_shipped.json'), encoding='utf-8'))
        ids.update(x['source_id'] for x in d['find_best_mapping_samples'])
    return ids

def main(shared, out):
    tok = os.path.join(shared, 'tokenizers')
    llama = sentencepiece_pieces(os.path.join(tok, 'llama2', 'tokenizer.model'))
    json.dump({'size': len(llama), 'marker': '▁', 'bos': 1, 'eos': 2, 'unk': 0,
               'pieces': {str(i): p for i, p in enumerate(llama)}}, open(os.path.join(out, 'llama2.json'), 'w', encoding='utf-8'), ensure_ascii=False)
    t = json.load(open(os.path.join(tok, 'gpt-neox-20b', 'tokenizer.json'), encoding='utf-8'))
    neox = {v: k for k, v in t['model']['vocab'].items()}
    # The fusion fixtures use the 50277-entry MPT-7B / GPT-NeoX-20B vocabulary; this tokenizer.json also lists
    # four later added tokens (50277..50280: <|im_start|>, <|im_end|>, assistant, RWKV), left out here.
    for a in t['added_tokens']:
        if a['id'] < 50277: neox[a['id']] = a['content']
    json.dump({'size': 50277, 'marker': 'Ġ', 'bos': 0, 'eos': 0, 'unk': 0,
               'pieces': {str(i): neox[i] for i in sorted(neox)}}, open(os.path.join(out, 'neox.json'), 'w', encoding='utf-8'), ensure_ascii=False)
    q = {v: k for k, v in json.load(open(os.path.join(tok, 'qwen2', 'vocab.json'), encoding='utf-8')).items()}
    for k, v in json.load(open(os.path.join(tok, 'qwen2', 'added_tokens.json'), encoding='utf-8')).items(): q[v] = k
    keep = referenced_ids(shared, 'qwen2')
    json.dump({'size': max(q) + 1, 'marker': 'Ġ', 'bos': None, 'eos': 151645, 'unk': None,
               'pieces': {str(i): q[i] for i in sorted(keep)}}, open(os.path.join(out, 'qwen2.json'), 'w', encoding='utf-8'), ensure_ascii=False)

if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
