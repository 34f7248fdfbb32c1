using FuseSharp.Tokenization.Decoders;
using FuseSharp.Tokenization.Models;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.PostProcessors;
using FuseSharp.Tokenization.PreTokenizers;

namespace FuseSharp.Tokenization;

/// <summary>The special tokens a tokenizer reports (ids), resolved from the tokenizer files.</summary>
public sealed record SpecialTokenIds(int? Bos = null, int? Eos = null, int? Pad = null, int? Unk = null);

/// <summary>
/// The Hugging Face pipeline: added tokens are cut out of the text, the rest goes through
/// normalizer → pre-tokenizer → model, then the post-processor adds special tokens; decoding runs the decoder
/// chain. Built from <c>tokenizer.json</c> (<see cref="TokenizerJson"/>) or assembled by the other loaders
/// (vocab.json + merges.txt, tiktoken, GGUF). Thread-safe.
/// </summary>
public sealed class Tokenizer : ITokenizer
{
    private readonly Dictionary<string, int> mergedVocab;
    private readonly ByteLevelFastPath? fastPath;
    private readonly string?[] idToPiece;

    public Tokenizer(ITokenizerModel model, INormalizer? normalizer, IPreTokenizer? preTokenizer, IPostProcessor? postProcessor,
        IDecoder? decoder, IEnumerable<AddedToken> addedTokens, SpecialTokenIds? specialTokens = null, string? whitespaceMarker = null)
    {
        Model = model;
        Normalizer = normalizer;
        PreTokenizer = preTokenizer;
        PostProcessor = postProcessor;
        Decoder = decoder;
        AddedVocabulary = new AddedVocabulary(addedTokens, normalizer);
        mergedVocab = new Dictionary<string, int>(model.Vocab, StringComparer.Ordinal);
        foreach (var t in AddedVocabulary.Tokens.Values) mergedVocab[t.Content] = t.Id;
        // id → piece for every id (added tokens win over the model's entry, as in HF).
        int maxId = mergedVocab.Count == 0 ? -1 : mergedVocab.Values.Max();
        idToPiece = new string?[maxId + 1];
        for (int id = 0; id <= maxId; id++) idToPiece[id] = AddedVocabulary.IdToContent(id) ?? model.IdToToken(id);
        var specials = specialTokens ?? new SpecialTokenIds();
        BosTokenId = specials.Bos;
        EosTokenId = specials.Eos;
        PadTokenId = specials.Pad;
        UnkTokenId = specials.Unk ?? (model.UnkToken is { } u ? TokenToId(u) : null);
        WhitespaceMarker = whitespaceMarker ?? DetectWhitespaceMarker();
        fastPath = ByteLevelFastPath.TryCreate(normalizer, preTokenizer, model);
    }

    public ITokenizerModel Model { get; }

    public INormalizer? Normalizer { get; }

    public IPreTokenizer? PreTokenizer { get; }

    public IPostProcessor? PostProcessor { get; }

    public IDecoder? Decoder { get; }

    public AddedVocabulary AddedVocabulary { get; }

    public int VocabSize => mergedVocab.Count;

    public int? BosTokenId { get; }

    public int? EosTokenId { get; }

    public int? PadTokenId { get; }

    public int? UnkTokenId { get; }

    public string WhitespaceMarker { get; }

    public IReadOnlyDictionary<string, int> GetVocab() => mergedVocab;

    public string? IdToToken(int id) => (uint)id < (uint)idToPiece.Length ? idToPiece[id] : null;

    public int? TokenToId(string token) => AddedVocabulary.TokenToId(token) ?? Model.TokenToId(token);

    /// <summary>A copy of this tokenizer with another post-processor (used to apply <c>tokenizer_config.json</c>).</summary>
    public Tokenizer WithPostProcessor(IPostProcessor? postProcessor, SpecialTokenIds? specialTokens = null) =>
        new(Model, Normalizer, PreTokenizer, postProcessor, Decoder, AddedVocabulary.Tokens.Values, specialTokens ?? new SpecialTokenIds(BosTokenId, EosTokenId, PadTokenId, UnkTokenId), WhitespaceMarker);

    public Encoding Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        TextChecks.RejectLoneSurrogates(text);
        var builder = new EncodingBuilder(IdToToken);
        if (fastPath is null || !fastPath.TryEncode(text, AddedVocabulary, builder)) EncodeGeneral(text, builder);
        PostProcessor?.Process(builder, addSpecialTokens);
        var pieces = new string[builder.Count];
        for (int k = 0; k < pieces.Length; k++) pieces[k] = IdToToken(builder.Ids[k]) ?? "";
        return new Encoding(builder.Ids.ToArray(), pieces, builder.Offsets.ToArray()) { SpecialTokensMask = builder.Special.ToArray() };
    }

    /// <summary>
    /// The stage-by-stage pipeline (the reference; <see cref="Encode"/> takes a fused fast path for byte-level BPE
    /// when the pipeline has that shape).
    /// </summary>
    internal void EncodeGeneral(string text, EncodingBuilder builder)
    {
        var pts = AddedVocabulary.ExtractAndNormalize(Normalizer, text);
        PreTokenizer?.PreTokenize(pts);
        var scratch = new List<ModelToken>();
        foreach (var piece in pts.Pieces)
        {
            var n = piece.Normalized;
            bool special = false;
            List<ModelToken> tokens;
            if (piece.Tokens is not null)
            {
                tokens = piece.Tokens;
                special = tokens.Count == 1 && AddedVocabulary.Tokens.TryGetValue(tokens[0].Id, out var at) && at.Special;
            }
            else
            {
                scratch.Clear();
                Model.Tokenize(n.Normalized, scratch);
                tokens = scratch;
            }
            foreach (var t in tokens)
            {
                var (s, e) = n.ToOriginal(t.Start, t.End);
                builder.Add(t.Id, (s + n.OriginalShift, e + n.OriginalShift), special);
            }
        }
    }

    /// <summary>True when <see cref="Encode"/> uses the fused byte-level fast path.</summary>
    internal bool HasFastPath => fastPath is not null;

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>(ids.Count);
        foreach (var id in ids)
        {
            var t = IdToToken(id);
            if (t is null) continue; // HF drops ids it does not know
            if (skipSpecialTokens && AddedVocabulary.IsSpecial(t)) continue;
            tokens.Add(t);
        }
        return Decoder is null ? string.Join(' ', tokens) : Decoder.Decode(tokens);
    }

    // The marker of word-initial pieces, from the pipeline (byte-level → 'Ġ', metaspace/prepend → '▁'), else from the vocabulary.
    private string DetectWhitespaceMarker()
    {
        static IEnumerable<object> Flatten(object? o) => o switch
        {
            null => [],
            SequenceNormalizer s => s.Normalizers.SelectMany(Flatten),
            SequencePreTokenizer s => s.PreTokenizers.SelectMany(Flatten),
            _ => [o],
        };
        foreach (var c in Flatten(PreTokenizer).Concat(Flatten(Normalizer)))
        {
            switch (c)
            {
                case ByteLevelPreTokenizer or ByteLevelNormalizer: return "Ġ";
                case MetaspacePreTokenizer m: return m.Replacement;
                case PrependNormalizer p when p.Prepend.Length > 0: return p.Prepend;
                case ReplaceNormalizer r when r.LiteralPattern == " ": return r.Content;
            }
        }
        int meta = 0, g = 0;
        foreach (var t in Model.Vocab.Keys)
        {
            if (t.StartsWith('\u2581')) meta++;
            else if (t.StartsWith('Ġ')) g++;
        }
        return meta == 0 && g == 0 ? "" : meta >= g ? "\u2581" : "Ġ";
    }
}

/// <summary>Checks on text handed to a tokenizer.</summary>
internal static class TextChecks
{
    /// <summary>Rejects unpaired surrogates (not valid Unicode; no tokenizer can encode them as UTF-8).</summary>
    public static void RejectLoneSurrogates(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }
            throw new TokenizerException($"the text has an unpaired surrogate (U+{(int)c:X4}) at index {i}", "pass valid Unicode text");
        }
    }
}
