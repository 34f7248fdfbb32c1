namespace FuseSharp.Tokenization;

/// <summary>
/// The result of encoding one text: ids, pieces (the vocabulary strings, e.g. "▁the" or "Ġthe") and, per token,
/// the [Start, End) range in UTF-16 code units of the original (un-normalized) string that produced it.
/// Special tokens added by the post-processor have the empty range (0, 0).
/// </summary>
public sealed record Encoding(IReadOnlyList<int> Ids, IReadOnlyList<string> Tokens, IReadOnlyList<(int Start, int End)> Offsets)
{
    /// <summary>Per token: true when it is a special token (added by the template or matched as a special added token).</summary>
    public IReadOnlyList<bool>? SpecialTokensMask { get; init; }

    public int Count => Ids.Count;
}

/// <summary>
/// A tokenizer as knowledge fusion and the engine need it, whatever the file format behind it (tokenizer.json,
/// SentencePiece .model, vocab.json + merges.txt, tiktoken ranks, GGUF). Implementations must be thread-safe
/// for concurrent Encode/Decode calls.
/// </summary>
public interface ITokenizer
{
    /// <summary>Encodes <paramref name="text"/>; with <paramref name="addSpecialTokens"/>, applies the post-processor (BOS/EOS, templates).</summary>
    Encoding Encode(string text, bool addSpecialTokens = false);

    /// <summary>
    /// Encodes several texts, in parallel over <see cref="Tensors.Parallelism.MaxThreads"/> threads; the result is in
    /// input order and equal to calling <see cref="Encode"/> on each text.
    /// </summary>
    IReadOnlyList<Encoding> EncodeBatch(IReadOnlyList<string> texts, bool addSpecialTokens = false) => BatchEncoding.Run(this, texts, addSpecialTokens);

    /// <summary>Decodes ids to text; <paramref name="skipSpecialTokens"/> drops special tokens first, as HF's decode does.</summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false);

    /// <summary>Number of ids (the base vocabulary plus added tokens), as HF's <c>len(tokenizer)</c>.</summary>
    int VocabSize { get; }

    /// <summary>The piece of an id, or null when out of range.</summary>
    string? IdToToken(int id);

    /// <summary>The id of a piece, or null when it is not in the vocabulary.</summary>
    int? TokenToId(string token);

    /// <summary>Every piece with its id (base vocabulary and added tokens).</summary>
    IReadOnlyDictionary<string, int> GetVocab();

    int? BosTokenId { get; }

    int? EosTokenId { get; }

    int? PadTokenId { get; }

    int? UnkTokenId { get; }

    /// <summary>The marker this family's pieces use for a leading space: "▁" (SentencePiece) or "Ġ" (byte-level BPE); "" if none.</summary>
    string WhitespaceMarker { get; }
}
