using System.Text;
using FuseSharp.Tokenization;

namespace FuseSharp.Fusion.Text;

/// <summary>
/// FuseChat's conversation template (FastChat <c>openchat</c> / <c>openchat_3.5</c>, spec §2.2), the same for every
/// model: <c>GPT4 Correct User: {u}&lt;SEP&gt;GPT4 Correct Assistant: {a}&lt;SEP&gt;...</c>, where the separator is each
/// model's own end token (its EOS, or a family token such as Llama-3's <c>&lt;|eot_id|&gt;</c>).
/// <para>
/// Instruction masking: labels are kept on each assistant response and the separator that closes it, and are -100 on
/// everything else (BOS, user turns with their header, the assistant header). FastChat derives this by re-tokenizing
/// each turn with hard-coded length corrections and warns when they disagree; here a token is supervised when its
/// character span (from the tokenizer's offsets) overlaps a response-plus-separator span, which is exact for every
/// tokenizer.
/// </para>
/// </summary>
public sealed record ChatFormat
{
    public string UserPrefix { get; init; } = "GPT4 Correct User: ";

    public string AssistantPrefix { get; init; } = "GPT4 Correct Assistant: ";

    /// <summary>The separator; null = the tokenizer's EOS token.</summary>
    public string? Separator { get; init; }

    /// <summary>Renders a conversation and returns the character spans whose tokens are supervised.</summary>
    public (string Text, List<(int Start, int End)> Supervised) Render(IReadOnlyList<ChatTurn> turns, string separator)
    {
        ArgumentNullException.ThrowIfNull(turns);
        var sb = new StringBuilder();
        var spans = new List<(int, int)>();
        foreach (var t in turns)
        {
            sb.Append(t.Assistant ? AssistantPrefix : UserPrefix);
            int start = sb.Length;
            sb.Append(t.Content).Append(separator);
            if (t.Assistant) spans.Add((start, sb.Length));
        }
        return (sb.ToString(), spans);
    }

    /// <summary>
    /// Tokenizes a conversation with special tokens (BOS where the tokenizer adds one) and builds its labels.
    /// </summary>
    /// <exception cref="FusionException">No separator was given and the tokenizer has no EOS token.</exception>
    public (int[] Ids, int[] Labels) Tokenize(IReadOnlyList<ChatTurn> turns, ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var sep = Separator ?? (tokenizer.EosTokenId is int e ? tokenizer.IdToToken(e) : null)
            ?? throw new FusionException("the tokenizer has no EOS token to separate turns", "give the separator explicitly (--separator)");
        // The reference's slow tokenizers split special-token text ("</s>") out as its id; a tokenizer that spells it out
        // as ordinary text (a bare SentencePiece .model) would silently build other sequences.
        if (tokenizer.TokenToId(sep) is int sepId && tokenizer.Encode(sep, addSpecialTokens: false).Ids is var sepIds && (sepIds.Count != 1 || sepIds[0] != sepId))
            throw new FusionException($"the tokenizer spells the separator \"{sep}\" out as text instead of reading it as token {sepId}",
                "load the model's tokenizer.json (Hugging Face's added-token splitting), or give a --separator the tokenizer reads as one token");
        var (text, spans) = Render(turns, sep);
        var enc = tokenizer.Encode(text, addSpecialTokens: true);
        var ids = enc.Ids.ToArray();
        var labels = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            var (s, end) = enc.Offsets[i];
            bool special = enc.SpecialTokensMask is { } m && m[i] && end == s;
            bool supervised = !special && end > s && spans.Any(sp => end > sp.Start && s < sp.End);
            labels[i] = supervised ? ids[i] : -100;
        }
        return (ids, labels);
    }
}
