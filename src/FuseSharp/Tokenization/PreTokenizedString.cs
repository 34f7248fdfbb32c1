namespace FuseSharp.Tokenization;

/// <summary>A token produced by a model: its id and the [Start, End) range of the (normalized) word it was cut from.</summary>
public readonly record struct ModelToken(int Id, int Start, int End);

/// <summary>
/// The input cut into pieces (HF <c>PreTokenizedString</c>): added tokens already carry their token, the other pieces
/// are normalized, split by the pre-tokenizer and finally tokenized by the model one by one.
/// </summary>
public sealed class PreTokenizedString
{
    /// <summary>One piece; <see cref="Tokens"/> is null until the piece is tokenized (added tokens come with theirs).</summary>
    public sealed class Piece(NormalizedString normalized, List<ModelToken>? tokens = null)
    {
        public NormalizedString Normalized { get; set; } = normalized;

        public List<ModelToken>? Tokens { get; set; } = tokens;
    }

    public PreTokenizedString(string text) => Pieces.Add(new Piece(new NormalizedString(text)));

    public List<Piece> Pieces { get; private set; } = [];

    /// <summary>
    /// Replaces every piece that has no tokens yet by the pieces <paramref name="split"/> returns for it; empty pieces
    /// are dropped (as HF does), pieces with tokens are kept as they are.
    /// </summary>
    public void Split(Func<NormalizedString, IEnumerable<Piece>> split)
    {
        var next = new List<Piece>(Pieces.Count + 4);
        foreach (var piece in Pieces)
        {
            if (piece.Tokens is not null)
            {
                next.Add(piece);
                continue;
            }
            foreach (var p in split(piece.Normalized))
                if (!p.Normalized.IsEmpty) next.Add(p);
        }
        Pieces = next;
    }

    /// <summary>Splits the untokenized pieces into plain sub-pieces.</summary>
    public void Split(Func<NormalizedString, List<NormalizedString>> split) =>
        Split(n => split(n).Select(s => new Piece(s)));

    /// <summary>Applies <paramref name="normalize"/> to every piece that has no tokens yet.</summary>
    public void Normalize(Action<NormalizedString> normalize)
    {
        foreach (var piece in Pieces)
            if (piece.Tokens is null) normalize(piece.Normalized);
    }
}
