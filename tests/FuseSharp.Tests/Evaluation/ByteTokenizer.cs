using FuseSharp.Tokenization;

namespace FuseSharp.Tests.Evaluation;

/// <summary>A test tokenizer: one id per UTF-8 byte (byte + 3), 0 pad, 1 BOS, 2 EOS. Fits stories260K's 512 ids.</summary>
internal sealed class ByteTokenizer : ITokenizer
{
    public Encoding Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>();
        var tokens = new List<string>();
        var offsets = new List<(int, int)>();
        if (addSpecialTokens) { ids.Add(1); tokens.Add("<s>"); offsets.Add((0, 0)); }
        for (int i = 0; i < text.Length; i++)
        {
            int len = char.IsSurrogatePair(text, i) ? 2 : 1;
            foreach (var b in System.Text.Encoding.UTF8.GetBytes(text.Substring(i, len)))
            {
                ids.Add(b + 3);
                tokens.Add($"<0x{b:X2}>");
                offsets.Add((i, i + len));
            }
            i += len - 1;
        }
        return new Encoding(ids, tokens, offsets);
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false) =>
        System.Text.Encoding.UTF8.GetString(ids.Where(i => i >= 3).Select(i => (byte)(i - 3)).ToArray());

    public int VocabSize => 259;

    public string? IdToToken(int id) => id switch { 0 => "<pad>", 1 => "<s>", 2 => "</s>", < 259 and > 2 => $"<0x{id - 3:X2}>", _ => null };

    public int? TokenToId(string token) => Enumerable.Range(0, 259).FirstOrDefault(i => IdToToken(i) == token, -1) is var i and >= 0 ? i : null;

    public IReadOnlyDictionary<string, int> GetVocab() => Enumerable.Range(0, 259).ToDictionary(i => IdToToken(i)!, i => i);

    public int? BosTokenId => 1;

    public int? EosTokenId => 2;

    public int? PadTokenId => 0;

    public int? UnkTokenId => null;

    public string WhitespaceMarker => "";
}
