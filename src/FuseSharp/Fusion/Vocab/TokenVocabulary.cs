using FuseSharp.Tokenization;

namespace FuseSharp.Fusion.Vocab;

/// <summary>
/// What fusion needs of a tokenizer's vocabulary: the piece of every id (the reference's
/// <c>convert_ids_to_tokens</c>), the id of every piece (<c>get_vocab()</c>), the whitespace marker and the special
/// ids. Immutable and thread-safe.
/// </summary>
public sealed class TokenVocabulary
{
    private readonly string?[] _pieces;
    private readonly Dictionary<string, int> _ids;

    /// <summary>
    /// A vocabulary from pieces indexed by id (null for unused ids). <c>get_vocab()</c> is built in id order, so a
    /// piece that occurs twice maps to its last id (as a Python dict comprehension over ids does).
    /// </summary>
    public TokenVocabulary(IReadOnlyList<string?> pieces, string marker, int? bosId = null, int? eosId = null, int? unkId = null, string? name = null, string? tokenizerClass = null)
        : this(pieces, marker, bosId, eosId, unkId, name, tokenizerClass, ids: null)
    {
    }

    private TokenVocabulary(IReadOnlyList<string?> pieces, string marker, int? bosId, int? eosId, int? unkId, string? name, string? tokenizerClass, IReadOnlyDictionary<string, int>? ids)
    {
        TokenizerClass = tokenizerClass;
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(marker);
        _pieces = pieces.ToArray();
        Marker = marker;
        BosId = bosId;
        EosId = eosId;
        UnkId = unkId;
        Name = name ?? "tokenizer";
        if (ids is not null)
        {
            _ids = new Dictionary<string, int>(ids, StringComparer.Ordinal);
        }
        else
        {
            _ids = new Dictionary<string, int>(_pieces.Length, StringComparer.Ordinal);
            for (int i = 0; i < _pieces.Length; i++)
            {
                if (_pieces[i] is { } p) _ids[p] = i;
            }
        }
    }

    /// <summary>
    /// The vocabulary of a tokenizer: pieces from <see cref="ITokenizer.IdToToken"/>, ids from
    /// <see cref="ITokenizer.GetVocab"/>, the marker from <see cref="ITokenizer.WhitespaceMarker"/> unless
    /// <paramref name="markerOverride"/> is given.
    /// </summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="markerOverride">The whitespace marker to use instead of the tokenizer's.</param>
    /// <param name="name">A label for messages.</param>
    /// <param name="tokenizerClass"><c>tokenizer_class</c> from tokenizer_config.json (FuseLLM keys one rule on it), if known.</param>
    /// <exception cref="FusionException">The tokenizer has no known whitespace marker and none was given.</exception>
    public static TokenVocabulary FromTokenizer(ITokenizer tokenizer, string? markerOverride = null, string? name = null, string? tokenizerClass = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var marker = markerOverride ?? tokenizer.WhitespaceMarker;
        if (string.IsNullOrEmpty(marker))
            throw new FusionException($"{name ?? "tokenizer"}: its whitespace marker is unknown (neither '▁' nor 'Ġ')",
                "pass the marker explicitly (--base-marker / --blending-marker '▁' or 'Ġ')");
        var pieces = new string?[tokenizer.VocabSize];
        for (int i = 0; i < pieces.Length; i++) pieces[i] = tokenizer.IdToToken(i);
        return new TokenVocabulary(pieces, marker, tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.UnkTokenId, name, tokenizerClass, tokenizer.GetVocab());
    }

    /// <summary>A label for messages (the tokenizer's path or name).</summary>
    public string Name { get; }

    /// <summary>The HF <c>tokenizer_class</c> (e.g. "LlamaTokenizer", "GPTNeoXTokenizer"), when known.</summary>
    public string? TokenizerClass { get; }

    /// <summary>Size of the id space (<c>len(tokenizer)</c>).</summary>
    public int Count => _pieces.Length;

    /// <summary>"▁" (SentencePiece) or "Ġ" (byte-level BPE); "" when the family has none.</summary>
    public string Marker { get; }

    public int? BosId { get; }

    public int? EosId { get; }

    public int? UnkId { get; }

    /// <summary>The piece of <paramref name="id"/>, or null (out of range or unused).</summary>
    public string? Piece(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] : null;

    /// <summary>The id of <paramref name="piece"/> as <c>get_vocab()[piece]</c>, or null.</summary>
    public int? Id(string piece) => _ids.TryGetValue(piece, out var id) ? id : null;

    /// <summary>True when <paramref name="piece"/> is a key of <c>get_vocab()</c>.</summary>
    public bool Contains(string piece) => _ids.ContainsKey(piece);

    /// <summary>The piece of <paramref name="id"/>; throws for an id the vocabulary does not have.</summary>
    /// <exception cref="FusionException">The id is outside the vocabulary.</exception>
    public string RequirePiece(int id) =>
        Piece(id) ?? throw new FusionException($"{Name}: token id {id} is not in the vocabulary of {Count} entries",
            "the representation was made with a different tokenizer, or the model's logit dimension exceeds the tokenizer's vocabulary");
}
