using System.Globalization;
using FuseSharp.Tokenization.Decoders;
using FuseSharp.Tokenization.Models;
using FuseSharp.Tokenization.PostProcessors;
using FuseSharp.Tokenization.PreTokenizers;

namespace FuseSharp.Tokenization.Tiktoken;

/// <summary>
/// A tiktoken rank file (Llama-3's <c>tokenizer.model</c>: one "base64-token rank" per line) as a pipeline tokenizer:
/// the special tokens are cut out of the text (tiktoken <c>allowed_special="all"</c>), the rest is split with the
/// Llama-3 regex and merged by rank; pieces are shown in the GPT-2 byte-level alphabet, as Hugging Face's Llama-3
/// tokenizer.json does. Meta's wrapper additionally cuts inputs longer than 400 000 characters and runs of 25 000
/// (non-)space characters into chunks; that guard is not reproduced.
/// </summary>
public static class TiktokenFiles
{
    /// <summary>The Llama-3 split pattern (Meta's <c>pat_str</c>).</summary>
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Meta's Llama-3 special tokens (ids follow the 128 000 ranks), from tokenizer.py.</summary>
    public static IReadOnlyList<string> Llama3SpecialTokens { get; } = BuildLlama3Specials();

    private static List<string> BuildLlama3Specials()
    {
        var list = new List<string>
        {
            "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
            "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
            "<|eot_id|>", "<|python_tag|>", "<|image|>",
        };
        int fixedCount = list.Count;
        for (int i = 0; i < 256 - fixedCount; i++) list.Add(string.Create(CultureInfo.InvariantCulture, $"<|reserved_special_token_{2 + i}|>"));
        return list;
    }

    /// <summary>Reads the rank file; returns byte-level token → rank.</summary>
    /// <exception cref="TokenizerException">A line is malformed (the message gives the line).</exception>
    public static Dictionary<string, int> ReadRanks(string path)
    {
        if (!File.Exists(path)) throw new TokenizerException($"{path}: not found");
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            int sp = line.IndexOf(' ', StringComparison.Ordinal);
            byte[] bytes;
            if (sp <= 0 || !int.TryParse(line.AsSpan(sp + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int rank))
                throw new TokenizerException($"{path}: line {lineNo}: expected \"<base64 token> <rank>\"", "a tiktoken file has one base64-encoded token and its rank per line");
            try
            {
                bytes = Convert.FromBase64String(line[..sp]);
            }
            catch (FormatException)
            {
                throw new TokenizerException($"{path}: line {lineNo}: '{line[..sp]}' is not base64");
            }
            if (bytes.Length == 0) throw new TokenizerException($"{path}: line {lineNo}: empty token");
            var token = string.Create(bytes.Length, bytes, static (span, b) =>
            {
                for (int k = 0; k < span.Length; k++) span[k] = ByteLevelAlphabet.Encode(b[k]);
            });
            if (!ranks.TryAdd(token, rank)) throw new TokenizerException($"{path}: line {lineNo}: token listed twice");
        }
        if (ranks.Count == 0) throw new TokenizerException($"{path}: no tokens");
        return ranks;
    }

    /// <summary>
    /// Loads a tiktoken rank file. Special tokens come from <paramref name="config"/>'s <c>added_tokens_decoder</c> when
    /// present, else Meta's Llama-3 list for a 128 000-rank file. With special tokens, BOS (&lt;|begin_of_text|&gt;)
    /// is prepended when encoding with special tokens (Llama-3's convention; the config may override).
    /// </summary>
    public static Tokenizer Load(string path, TokenizerConfig? config)
    {
        var ranks = ReadRanks(path);
        var model = BpeModel.FromRanks(ranks, new BpeOptions { IgnoreMerges = true });
        List<AddedToken> added;
        if (config is not null && config.AddedTokensDecoder.Count > 0)
        {
            added = BpeFiles.ConfigAddedTokens(config, model.TokenToId);
        }
        else if (ranks.Count == 128_000)
        {
            added = Llama3SpecialTokens.Select((t, i) => new AddedToken(ranks.Count + i, t, true)).ToList();
        }
        else
        {
            added = [];
        }
        var pre = new SequencePreTokenizer([
            new SplitPreTokenizer(FastSplitPatterns.ForRegex(Llama3Pattern), SplitBehavior.Isolated, false, Llama3Pattern),
            new ByteLevelPreTokenizer(false, false)]);
        int? bos = added.FirstOrDefault(t => t.Content == "<|begin_of_text|>")?.Id;
        int? eos = added.FirstOrDefault(t => t.Content == "<|end_of_text|>")?.Id;
        IPostProcessor? post = bos is { } b ? new BosEosProcessor(null, b, null) : null;
        return new Tokenizer(model, null, pre, post, new ByteLevelDecoder(), added, new SpecialTokenIds(bos, eos), "Ġ");
    }
}
