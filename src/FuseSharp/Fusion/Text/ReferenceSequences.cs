using System.Globalization;
using FuseSharp.Fusion.Vocab;
using FuseSharp.Tokenization;

namespace FuseSharp.Fusion.Text;

/// <summary>
/// The token sequences and per-token strings the reference pipelines build from a text, independent of how a
/// tokenizer treats special-token text inside its input.
/// </summary>
public static class ReferenceSequences
{
    /// <summary>
    /// FuseLLM (<c>forward_for_logits.py</c>): <c>tokenizer(text + eos_token, add_special_tokens=False)</c>. Hugging Face
    /// splits the EOS text out as the special token, so this is <c>ids(text) + [eos]</c>; the id is appended directly
    /// (a tokenizer that does not split special-token text would otherwise spell "&lt;/s&gt;" out).
    /// </summary>
    public static int[] FuseLlm(ITokenizer tokenizer, string text, int? eosId)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = tokenizer.Encode(text, addSpecialTokens: false).Ids;
        return eosId is int e ? [.. ids, e] : [.. ids];
    }

    /// <summary>
    /// FuseChat v2 plain-text rows: <c>tokenizer(text + eos_token)</c> with special tokens, i.e. the post-processor's
    /// prefix (Llama's BOS), <c>ids(text)</c>, the EOS, then any suffix the post-processor adds.
    /// </summary>
    public static int[] FuseChatText(ITokenizer tokenizer, string text, int? eosId)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var plain = tokenizer.Encode(text, addSpecialTokens: false).Ids;
        var full = tokenizer.Encode(text, addSpecialTokens: true).Ids;
        int prefix = 0;
        // The plain ids sit inside the full ones after the prefix specials (usually 0 or 1 of them).
        while (prefix + plain.Count <= full.Count && !full.Skip(prefix).Take(plain.Count).SequenceEqual(plain)) prefix++;
        if (prefix + plain.Count > full.Count) prefix = full.Count - plain.Count; // unreachable for sane post-processors
        var r = new List<int>(full.Count + 1);
        r.AddRange(full.Take(prefix + plain.Count));
        if (eosId is int e) r.Add(e);
        r.AddRange(full.Skip(prefix + plain.Count));
        return [.. r];
    }

    /// <summary>
    /// The per-token strings FuseChat v2 compares: <c>tokenizer.decode([id])</c> of transformers 4.39.1 with the slow
    /// tokenizers it loads. For SentencePiece ("▁") vocabularies that is Llama's slow decode: a special token is its
    /// own text; otherwise one leading "▁" is removed (the prefix space the tokenizer added), then SentencePiece
    /// decodes the rest ("▁" to spaces, dropping one leading space; byte pieces to their byte, an incomplete UTF-8
    /// sequence to U+FFFD) — so "▁the" gives "the", "▁▁" gives "", "▁▁▁▁" gives two spaces. Other families use the
    /// tokenizer's own decoding followed, where transformers does it, by its <c>clean_up_tokenization_spaces</c>
    /// (" ." to ".", " 's" to "'s", ...): on when tokenizer_config.json says so, else by transformers' class default
    /// (on, except for Qwen2 tokenizers).
    /// </summary>
    public static Func<int, string> PerTokenDecoder(ITokenizer tokenizer, TokenVocabulary vocabulary, bool? cleanUpTokenizationSpaces = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (vocabulary.Marker != "▁")
        {
            bool clean = cleanUpTokenizationSpaces ?? !(vocabulary.TokenizerClass?.StartsWith("Qwen2", StringComparison.Ordinal) ?? false);
            return clean ? id => CleanUp(tokenizer.Decode([id])) : id => tokenizer.Decode([id]);
        }
        var specials = new HashSet<int>(new[] { vocabulary.BosId, vocabulary.EosId, vocabulary.UnkId, tokenizer.PadTokenId }.OfType<int>());
        return id =>
        {
            var piece = vocabulary.RequirePiece(id);
            if (specials.Contains(id)) return piece;
            if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
                && byte.TryParse(piece.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b))
                return b < 0x80 ? ((char)b).ToString() : "\uFFFD";
            var s = piece.StartsWith('▁') ? piece[1..] : piece;
            s = s.Replace('▁', ' ');
            return s.StartsWith(' ') ? s[1..] : s;
        };
    }

    /// <summary>transformers' <c>clean_up_tokenization</c>: spaces before punctuation and English contractions removed.</summary>
    public static string CleanUp(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s.Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal).Replace(" !", "!", StringComparison.Ordinal)
            .Replace(" ,", ",", StringComparison.Ordinal).Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
            .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" 's", "'s", StringComparison.Ordinal).Replace(" 've", "'ve", StringComparison.Ordinal)
            .Replace(" 're", "'re", StringComparison.Ordinal);
    }
}
