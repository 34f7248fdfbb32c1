using System.Text;

namespace FuseSharp.Tokenization.SentencePiece;

/// <summary>Options of a <see cref="SentencePieceTokenizer"/>.</summary>
public sealed record SentencePieceOptions
{
    /// <summary>Prepend the BOS piece when encoding with special tokens (HF LlamaTokenizer <c>add_bos_token</c>, default true).</summary>
    public bool AddBos { get; init; } = true;

    /// <summary>Append the EOS piece when encoding with special tokens.</summary>
    public bool AddEos { get; init; }

    /// <summary>
    /// Pieces recognised in the text before encoding (as llama.cpp does with control and user-defined tokens of a GGUF
    /// vocabulary); each text fragment between them is normalized on its own (with its own dummy prefix). Empty for
    /// SentencePiece .model files, where "&lt;s&gt;" in the text is ordinary text.
    /// </summary>
    public IReadOnlyList<AddedToken> SplitTokens { get; init; } = [];

    /// <summary>Special-token ids to report (from tokenizer_config.json); the model's BOS/EOS/PAD pieces otherwise.</summary>
    public SpecialTokenIds? SpecialTokens { get; init; }

    /// <summary>Whether decoding merges and consumes the leading '▁' of the first piece (SentencePiece's add_dummy_prefix rule).</summary>
    public bool? StripLeadingSpaceOnDecode { get; init; }
}

/// <summary>
/// A SentencePiece model (.model protobuf, or a GGUF "llama" vocabulary) with the behaviour of the official C++
/// library: its normalizer (precompiled rules, dummy prefix, whitespace handling), BPE or unigram encoding, byte
/// fallback for unknown pieces, and <c>DecodeIds</c> (control pieces vanish, unknown → " ⁇ ", byte pieces → UTF-8,
/// '▁' → ' ', the dummy-prefix space removed once). Offsets map back through the normalizer to the original text.
/// </summary>
public sealed class SentencePieceTokenizer : ITokenizer
{
    private readonly SentencePieceVocabulary vocab;
    private readonly SentencePieceNormalizer normalizer;
    private readonly SentencePieceBpe? bpe;
    private readonly SentencePieceUnigram? unigram;
    private readonly Dictionary<string, int> vocabMap;
    private readonly AddedVocabulary? splitter;
    private readonly string unkSurface;
    private readonly bool stripLeadingSpace;
    private readonly bool identityNormalizer;

    public SentencePieceTokenizer(SentencePieceModelProto proto, SentencePieceOptions? options = null, string source = "SentencePiece model")
    {
        options ??= new SentencePieceOptions();
        Proto = proto;
        Options = options;
        vocab = new SentencePieceVocabulary(proto.Pieces, proto.ByteFallback, source);
        normalizer = new SentencePieceNormalizer(proto.Normalizer, proto.TreatWhitespaceAsSuffix, vocab.UserDefined);
        char space = proto.Normalizer.EscapeWhitespaces ? '\u2581' : ' ';
        switch (proto.ModelType)
        {
            case 1: unigram = new SentencePieceUnigram(vocab); break;
            case 2: bpe = new SentencePieceBpe(vocab, space, !proto.TreatWhitespaceAsSuffix); break;
            default: throw new TokenizerException($"{source}: SentencePiece model_type {proto.ModelType} ({(proto.ModelType == 3 ? "word" : "char")}) is not supported", "BPE and unigram models are supported");
        }
        vocabMap = new Dictionary<string, int>(proto.Pieces.Count, StringComparer.Ordinal);
        for (int i = 0; i < proto.Pieces.Count; i++) vocabMap.TryAdd(proto.Pieces[i].Piece, i);
        int? Control(string piece) => vocab.TryPieceToId(piece) is { } id && vocab.TypeOf(id) == PieceType.Control ? id : null;
        var specials = options.SpecialTokens;
        BosTokenId = specials?.Bos ?? Control(proto.BosPiece);
        EosTokenId = specials?.Eos ?? Control(proto.EosPiece);
        PadTokenId = specials?.Pad ?? Control(proto.PadPiece);
        UnkTokenId = specials?.Unk ?? vocab.UnkId;
        unkSurface = proto.UnkSurface;
        identityNormalizer = proto.Normalizer.PrecompiledCharsMap.Length == 0 && !proto.Normalizer.RemoveExtraWhitespaces && vocab.UserDefined.Count == 0 && !proto.TreatWhitespaceAsSuffix;
        stripLeadingSpace = options.StripLeadingSpaceOnDecode ?? (proto.Normalizer.AddDummyPrefix || proto.Normalizer.RemoveExtraWhitespaces);
        if (options.SplitTokens.Count > 0)
            splitter = new AddedVocabulary(options.SplitTokens, null);
    }

    public SentencePieceModelProto Proto { get; }

    public SentencePieceOptions Options { get; }

    /// <summary>"bpe" or "unigram".</summary>
    public string ModelKind => bpe is not null ? "bpe" : "unigram";

    public int VocabSize => Proto.Pieces.Count;

    public int? BosTokenId { get; }

    public int? EosTokenId { get; }

    public int? PadTokenId { get; }

    public int? UnkTokenId { get; }

    public string WhitespaceMarker => Proto.Normalizer.EscapeWhitespaces ? "\u2581" : "";

    /// <summary>Reads a SentencePiece .model file.</summary>
    /// <exception cref="TokenizerException">The file is not a SentencePiece model or uses an unsupported model type.</exception>
    public static SentencePieceTokenizer Load(string path, SentencePieceOptions? options = null)
    {
        if (!File.Exists(path)) throw new TokenizerException($"{path}: not found");
        return new SentencePieceTokenizer(SentencePieceModelProto.Parse(File.ReadAllBytes(path), path), options, path);
    }

    public IReadOnlyDictionary<string, int> GetVocab() => vocabMap;

    public string? IdToToken(int id) => id >= 0 && id < Proto.Pieces.Count ? Proto.Pieces[id].Piece : null;

    public int? TokenToId(string token) => vocabMap.TryGetValue(token, out int id) ? id : null;

    /// <summary>The piece type of an id.</summary>
    public PieceType TypeOf(int id) => vocab.TypeOf(id);

    public Encoding Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        TextChecks.RejectLoneSurrogates(text);
        var ids = new List<int>();
        var offsets = new List<(int, int)>();
        var special = new List<bool>();
        if (addSpecialTokens && Options.AddBos && BosTokenId is { } bos)
        {
            ids.Add(bos);
            offsets.Add((0, 0));
            special.Add(true);
        }
        if (splitter is null)
        {
            EncodeFragment(text, 0, text.Length, ids, offsets, special);
        }
        else
        {
            var pts = splitter.ExtractAndNormalize(null, text);
            foreach (var piece in pts.Pieces)
            {
                var (s, e) = piece.Normalized.OriginalOffsets;
                if (piece.Tokens is { } toks)
                {
                    ids.Add(toks[0].Id);
                    offsets.Add((s, e));
                    special.Add(vocab.TypeOf(toks[0].Id) == PieceType.Control);
                }
                else
                {
                    EncodeFragment(text, s, e, ids, offsets, special);
                }
            }
        }
        if (addSpecialTokens && Options.AddEos && EosTokenId is { } eos)
        {
            ids.Add(eos);
            offsets.Add((0, 0));
            special.Add(true);
        }
        var pieces = ids.Select(id => Proto.Pieces[id].Piece).ToArray();
        return new Encoding(ids.ToArray(), pieces, offsets.ToArray()) { SpecialTokensMask = special.ToArray() };
    }

    // Normalizes and encodes text[start..end]; offsets come back through norm_to_orig and the UTF-8 ↔ UTF-16 maps.
    private void EncodeFragment(string text, int start, int end, List<int> ids, List<(int, int)> offsets, List<bool> special)
    {
        if (start == end) return;
        var fragment = text.AsSpan(start, end - start);
        string normalized;
        Func<int, int> toOriginal;
        if (identityNormalizer)
        {
            // No rules, no user-defined symbols, no whitespace removal: the dummy prefix and ' ' → '▁' (Llama-2). Every
            // normalized character maps to the original one at the same place; the prefix maps to the start.
            int prefix = normalizer.Spec.AddDummyPrefix ? 1 : 0;
            normalized = string.Create(fragment.Length + prefix, (text, start, prefix, escape: normalizer.Spec.EscapeWhitespaces), static (span, st) =>
            {
                if (st.prefix == 1) span[0] = st.escape ? '\u2581' : ' ';
                var src = st.text.AsSpan(st.start, span.Length - st.prefix);
                for (int i = 0; i < src.Length; i++) span[i + st.prefix] = st.escape && src[i] == ' ' ? '\u2581' : src[i];
            });
            int len = fragment.Length;
            toOriginal = k => Math.Clamp(k - prefix, 0, len) + start;
        }
        else
        {
            var utf8 = System.Text.Encoding.UTF8.GetBytes(fragment.ToArray());
            var origUtf16 = Utf16Positions(utf8);
            var (normBytes, normToOrig) = normalizer.Normalize(utf8);
            normalized = System.Text.Encoding.UTF8.GetString(normBytes);
            var normByteAt = Utf8Positions(normalized);
            toOriginal = k => origUtf16[normToOrig[normByteAt[k]]] + start;
        }
        var pieces = bpe is not null ? bpe.Encode(normalized) : unigram!.Encode(normalized);
        bool prevUnk = false;
        foreach (var (s, e, id) in pieces)
        {
            int os = toOriginal(s), oe = toOriginal(e);
            if (oe < os) oe = os;
            bool unk = id == vocab.UnkId;
            if (unk && prevUnk && !vocab.ByteFallback)
            {
                // SentencePiece merges a run of unknown pieces into one (PopulateSentencePieceText).
                offsets[^1] = (offsets[^1].Item1, oe);
                continue;
            }
            prevUnk = unk;
            if (unk && vocab.ByteFallback)
            {
                foreach (var b in System.Text.Encoding.UTF8.GetBytes(normalized.Substring(s, e - s)))
                {
                    ids.Add(vocab.ByteIds[b]);
                    offsets.Add((os, oe));
                    special.Add(false);
                }
                continue;
            }
            ids.Add(id);
            offsets.Add((os, oe));
            special.Add(false);
        }
    }

    // For each UTF-8 byte offset (and the end), the UTF-16 offset of the character it belongs to.
    private static int[] Utf16Positions(byte[] utf8)
    {
        var map = new int[utf8.Length + 1];
        int u16 = 0;
        for (int i = 0; i < utf8.Length;)
        {
            int len = SentencePieceNormalizer.ValidCharLength(utf8.AsSpan(i));
            if (len == 0) len = 1;
            for (int k = 0; k < len; k++) map[i + k] = u16;
            u16 += len == 4 ? 2 : 1;
            i += len;
        }
        map[utf8.Length] = u16;
        return map;
    }

    // For each UTF-16 offset of s (and the end), the UTF-8 byte offset.
    private static int[] Utf8Positions(string s)
    {
        var map = new int[s.Length + 1];
        int b = 0;
        for (int i = 0; i < s.Length; i++)
        {
            map[i] = b;
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                map[++i] = b;
                b += 4;
            }
            else
            {
                b += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
            }
        }
        map[s.Length] = b;
        return map;
    }

    /// <summary>
    /// SentencePiece <c>DecodeIds</c>; with <paramref name="skipSpecialTokens"/>, control and unknown ids are dropped
    /// first (HF's LlamaTokenizer counts &lt;unk&gt; as special). Ids outside the vocabulary are ignored.
    /// </summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new StringBuilder();
        var bytes = new List<byte>();
        bool isBosWs = true, bosWsSeen = false;
        void FlushBytes()
        {
            if (bytes.Count == 0) return;
            // Each structurally invalid byte becomes U+FFFD; valid characters decode normally.
            var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes);
            for (int i = 0; i < span.Length;)
            {
                int len = SentencePieceNormalizer.ValidCharLength(span[i..]);
                if (len == 0)
                {
                    text.Append('\uFFFD');
                    i++;
                }
                else
                {
                    text.Append(System.Text.Encoding.UTF8.GetString(span.Slice(i, len)));
                    i += len;
                }
            }
            bytes.Clear();
        }
        foreach (var id in ids)
        {
            if (id < 0 || id >= Proto.Pieces.Count) continue;
            var type = vocab.TypeOf(id);
            if (skipSpecialTokens && type is PieceType.Control or PieceType.Unknown) continue;
            var piece = Proto.Pieces[id].Piece;
            if (type == PieceType.Byte)
            {
                bytes.Add((byte)SentencePieceVocabulary.PieceToByte(piece));
                continue;
            }
            FlushBytes();
            if (bosWsSeen || text.Length > 0) isBosWs = false;
            bosWsSeen = false;
            if (type == PieceType.Control) continue;
            if (type == PieceType.Unknown)
            {
                text.Append(unkSurface);
                continue;
            }
            var surface = piece.AsSpan();
            if (isBosWs && stripLeadingSpace && surface.StartsWith("\u2581"))
            {
                surface = surface[1..];
                bosWsSeen = !Proto.Normalizer.RemoveExtraWhitespaces;
            }
            text.Append(surface.ToString().Replace('\u2581', ' '));
        }
        FlushBytes();
        return text.ToString();
    }
}
