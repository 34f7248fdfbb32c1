namespace FuseSharp.Tokenization.SentencePiece;

/// <summary>
/// The pieces of a SentencePiece model with SentencePiece's lookup rules (model_interface.cc): normal, user-defined
/// and unused pieces can be produced by the model; control, unknown and byte pieces are reserved; an unknown string
/// maps to the unknown id.
/// </summary>
internal sealed class SentencePieceVocabulary
{
    private readonly Dictionary<string, int> pieces = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> reserved = new(StringComparer.Ordinal);

    public SentencePieceVocabulary(IReadOnlyList<SentencePieceEntry> entries, bool byteFallback, string source)
    {
        Entries = entries;
        UnkId = -1;
        var byteFound = new bool[256];
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            bool normal = e.Type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused;
            if (!(normal ? pieces : reserved).TryAdd(e.Piece, i)) throw new TokenizerException($"{source}: piece '{e.Piece}' is defined twice");
            if (e.Type == PieceType.UserDefined) UserDefined.Add(e.Piece);
            if (e.Type == PieceType.Unknown)
            {
                if (UnkId >= 0) throw new TokenizerException($"{source}: more than one unknown piece");
                UnkId = i;
            }
            if (e.Type == PieceType.Byte)
            {
                int b = PieceToByte(e.Piece);
                if (b < 0) throw new TokenizerException($"{source}: byte piece '{e.Piece}' is not <0xNN>");
                byteFound[b] = true;
                ByteIds[b] = i;
            }
        }
        if (UnkId < 0) throw new TokenizerException($"{source}: the model has no unknown piece");
        ByteFallback = byteFallback;
        if (byteFallback && Array.IndexOf(byteFound, false) is int missing and >= 0)
            throw new TokenizerException($"{source}: byte_fallback is on but the byte piece <0x{missing:X2}> is missing");
        foreach (var e in entries)
        {
            if (e.Type != PieceType.Normal) continue;
            MinScore = Math.Min(MinScore, e.Score);
            MaxScore = Math.Max(MaxScore, e.Score);
        }
    }

    public IReadOnlyList<SentencePieceEntry> Entries { get; }

    public int UnkId { get; }

    public bool ByteFallback { get; }

    public int[] ByteIds { get; } = new int[256];

    public List<string> UserDefined { get; } = [];

    /// <summary>Smallest score of a normal piece (C++ starts from FLT_MAX).</summary>
    public float MinScore { get; } = float.MaxValue;

    /// <summary>Largest score of a normal piece (C++ starts from FLT_MIN, the smallest positive normal float).</summary>
    public float MaxScore { get; } = 1.17549435E-38f;

    /// <summary>The pieces the model may produce (normal, user-defined, unused).</summary>
    public IReadOnlyDictionary<string, int> ModelPieces => pieces;

    public PieceType TypeOf(int id) => Entries[id].Type;

    /// <summary>SentencePiece <c>PieceToId</c>: reserved pieces first, then model pieces, else the unknown id.</summary>
    public int PieceToId(string piece) => reserved.TryGetValue(piece, out int id) ? id : pieces.TryGetValue(piece, out id) ? id : UnkId;

    /// <summary>The id of a piece, or null when it is not in the vocabulary at all.</summary>
    public int? TryPieceToId(string piece) => reserved.TryGetValue(piece, out int id) ? id : pieces.TryGetValue(piece, out id) ? id : null;

    /// <summary>"&lt;0x41&gt;" → 0x41, else -1.</summary>
    public static int PieceToByte(string piece) =>
        piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
        && int.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out int b) ? b : -1;
}
