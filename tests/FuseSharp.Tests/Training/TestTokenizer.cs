using FuseSharp.Tokenization;
using FuseSharp.Training.Data;

namespace FuseSharp.Tests.Training;

/// <summary>
/// A character-level tokenizer for the data tests: special tokens matched in the text first, then one id per printable
/// ASCII character (others map to unk). Offsets are UTF-16 ranges of the input, as the real tokenizers give them.
/// </summary>
internal sealed class TestTokenizer : ITokenizer
{
    private static readonly string[] Specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<unk>"];
    private const int CharBase = 6;

    public TestTokenizer(bool addBos = true, bool hasEos = true)
    {
        AddBos = addBos;
        HasEos = hasEos;
    }

    public bool AddBos { get; }

    public bool HasEos { get; }

    public int VocabSize => CharBase + 96; // printable ASCII, then newline

    public int? BosTokenId => 1;

    public int? EosTokenId => HasEos ? 2 : null;

    public int? PadTokenId => 0;

    public int? UnkTokenId => 5;

    public string WhitespaceMarker => "";

    public Encoding Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>();
        var offsets = new List<(int, int)>();
        if (addSpecialTokens && AddBos) { ids.Add(1); offsets.Add((0, 0)); }
        int i = 0;
        while (i < text.Length)
        {
            int special = Array.FindIndex(Specials, s => string.CompareOrdinal(text, i, s, 0, s.Length) == 0);
            if (special >= 0)
            {
                ids.Add(special);
                offsets.Add((i, i + Specials[special].Length));
                i += Specials[special].Length;
                continue;
            }
            char ch = text[i];
            ids.Add(ch >= ' ' && ch <= '~' ? CharBase + ch - ' ' : ch == '\n' ? CharBase + 95 : 5);
            offsets.Add((i, i + 1));
            i++;
        }
        return new Encoding(ids, ids.Select(id => IdToToken(id) ?? "?").ToList(), offsets);
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false) =>
        string.Concat(ids.Where(id => !skipSpecialTokens || id >= CharBase).Select(id => IdToToken(id)));

    public string? IdToToken(int id) => id switch
    {
        < 0 => null,
        < CharBase => Specials[id],
        < CharBase + 95 => ((char)(' ' + id - CharBase)).ToString(),
        CharBase + 95 => "\n",
        _ => null,
    };

    public int? TokenToId(string token)
    {
        int s = Array.IndexOf(Specials, token);
        if (s >= 0) return s;
        if (token == "\n") return CharBase + 95;
        return token.Length == 1 && token[0] >= ' ' && token[0] <= '~' ? CharBase + token[0] - ' ' : null;
    }

    public IReadOnlyDictionary<string, int> GetVocab() =>
        Enumerable.Range(0, VocabSize).ToDictionary(i => IdToToken(i)!, i => i);
}

/// <summary>A ChatML renderer (Qwen's template without a default system prompt): the assistant span is its content plus "&lt;|im_end|&gt;\n".</summary>
internal sealed class ChatMlRenderer : IChatRenderer
{
    public RenderedChat Render(IReadOnlyList<ChatTurn> messages)
    {
        var sb = new System.Text.StringBuilder();
        var spans = new List<(int, int)>();
        foreach (var m in messages)
        {
            sb.Append("<|im_start|>").Append(m.Role).Append('\n');
            int start = sb.Length;
            sb.Append(m.Content).Append("<|im_end|>\n");
            if (m.Role == "assistant") spans.Add((start, sb.Length));
        }
        return new RenderedChat(sb.ToString(), spans);
    }
}
