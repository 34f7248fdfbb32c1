using System.Text;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Gguf;

/// <summary>
/// llama.cpp's WordPiece ("bert" GGUF vocabularies, llm_tokenizer_wpm): NFD, lowercase, split on white space,
/// isolate punctuation, ASCII symbols and CJK ideographs, drop control characters; each word gets a leading '▁' and is
/// cut greedily into the longest vocabulary entries; a word that cannot be covered becomes the unknown token.
/// Word-initial vocabulary entries carry '▁' (GGUF conversion replaces BERT's "##" convention).
/// </summary>
public sealed class LlamaCppWordPieceTokenizer : ITokenizer
{
    private readonly string[] tokens;
    private readonly Func<int, int> typeOf;
    private readonly Dictionary<string, int> vocab = new(StringComparer.Ordinal);
    private readonly int maxTokenLength;
    private readonly bool addCls, addSep;
    private readonly int? cls, sep;

    public LlamaCppWordPieceTokenizer(string[] tokens, Func<int, int> typeOf, int? unk, int? cls, int? sep, int? pad, bool addCls, bool addSep)
    {
        this.tokens = tokens;
        this.typeOf = typeOf;
        for (int i = 0; i < tokens.Length; i++)
        {
            vocab[tokens[i]] = i;
            maxTokenLength = Math.Max(maxTokenLength, tokens[i].Length);
        }
        UnkTokenId = unk ?? (vocab.TryGetValue("[UNK]", out int u) ? u : null);
        this.cls = cls;
        this.sep = sep;
        this.addCls = addCls;
        this.addSep = addSep;
        BosTokenId = cls;
        EosTokenId = sep;
        PadTokenId = pad;
    }

    public int VocabSize => tokens.Length;

    public int? BosTokenId { get; }

    public int? EosTokenId { get; }

    public int? PadTokenId { get; }

    public int? UnkTokenId { get; }

    public string WhitespaceMarker => "\u2581";

    public IReadOnlyDictionary<string, int> GetVocab() => vocab;

    public string? IdToToken(int id) => id >= 0 && id < tokens.Length ? tokens[id] : null;

    public int? TokenToId(string token) => vocab.TryGetValue(token, out int id) ? id : null;

    public Encoding Encode(string text, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        TextChecks.RejectLoneSurrogates(text);
        var ids = new List<int>();
        var offsets = new List<(int, int)>();
        if (addSpecialTokens && addCls && cls is { } c)
        {
            ids.Add(c);
            offsets.Add((0, 0));
        }
        foreach (var (word, start, end) in Words(text))
        {
            var w = "\u2581" + word;
            int before = ids.Count;
            for (int i = 0; i < w.Length;)
            {
                int found = -1, foundEnd = i;
                for (int j = Math.Min(w.Length, i + maxTokenLength); j > i; j--)
                {
                    if (vocab.TryGetValue(w[i..j], out int id))
                    {
                        found = id;
                        foundEnd = j;
                        break;
                    }
                }
                if (found < 0)
                {
                    ids.RemoveRange(before, ids.Count - before);
                    offsets.RemoveRange(before, offsets.Count - before);
                    break;
                }
                ids.Add(found);
                offsets.Add((start, end));
                i = foundEnd;
            }
            if (ids.Count == before && UnkTokenId is { } unk)
            {
                ids.Add(unk);
                offsets.Add((start, end));
            }
        }
        if (addSpecialTokens && addSep && sep is { } s)
        {
            ids.Add(s);
            offsets.Add((0, 0));
        }
        return new Encoding(ids.ToArray(), ids.Select(id => tokens[id]).ToArray(), offsets.ToArray());
    }

    // llama.cpp preprocess: words with their original [start, end) ranges.
    private static List<(string Word, int Start, int End)> Words(string text)
    {
        var words = new List<(string, int, int)>();
        var current = new StringBuilder();
        int wordStart = 0, wordEnd = 0;
        void Close()
        {
            if (current.Length > 0) words.Add((current.ToString(), wordStart, wordEnd));
            current.Clear();
        }
        foreach (var (cp, s, e) in UnicodeNormalization.NormalizeWithSources(text, UnicodeForm.Nfd))
        {
            if (UnicodeChars.IsWhiteSpace(cp))
            {
                Close();
                continue;
            }
            if (cp == 0 || cp == 0xFFFD || UnicodeChars.InCategories(cp, UnicodeChars.Bit(System.Globalization.UnicodeCategory.Control) | UnicodeChars.Bit(System.Globalization.UnicodeCategory.Format)))
                continue;
            var lower = new StringBuilder();
            UnicodeNormalization.AppendCodePoint(lower, System.Text.Rune.IsValid(cp) ? System.Text.Rune.ToLowerInvariant(new System.Text.Rune(cp)).Value : cp);
            bool isolate = UnicodeChars.InCategories(cp, UnicodeChars.PunctuationMask) || (cp < 0x7F && UnicodeChars.InCategories(cp, UnicodeChars.SymbolMask)) || UnicodeChars.IsChineseChar(cp);
            if (isolate)
            {
                Close();
                words.Add((lower.ToString(), s, e));
                continue;
            }
            if (current.Length == 0) wordStart = s;
            current.Append(lower);
            wordEnd = e;
        }
        Close();
        return words;
    }

    /// <summary>Joins pieces, turning '▁' into spaces and dropping the first one; control tokens vanish unless kept.</summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
    {
        var sb = new StringBuilder();
        foreach (var id in ids)
        {
            if (id < 0 || id >= tokens.Length) continue;
            if (skipSpecialTokens && typeOf(id) is 2 or 3) continue;
            sb.Append(tokens[id].Replace('\u2581', ' '));
        }
        return sb.Length > 0 && sb[0] == ' ' ? sb.ToString(1, sb.Length - 1) : sb.ToString();
    }
}
