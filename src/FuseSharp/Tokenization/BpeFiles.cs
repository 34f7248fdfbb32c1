using FuseSharp.Tokenization.Decoders;
using FuseSharp.Tokenization.Models;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.PostProcessors;
using FuseSharp.Tokenization.PreTokenizers;

namespace FuseSharp.Tokenization;

/// <summary>
/// GPT-2-style <c>vocab.json</c> + <c>merges.txt</c> (the files of transformers' slow byte-level BPE tokenizers),
/// assembled into the pipeline transformers' fast conversion builds: GPT-2 byte-level pre-tokenization, or for
/// <c>Qwen2Tokenizer</c> NFC + the Qwen2 split regex + byte-level. The added and special tokens of
/// <c>tokenizer_config.json</c> are cut out of the text first.
/// </summary>
public static class BpeFiles
{
    /// <summary>The Qwen2 split pattern (isolated), from Qwen2's tokenizer.json.</summary>
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Loads vocab.json + merges.txt, with <paramref name="config"/> (may be null) for added tokens and the tokenizer class.</summary>
    /// <exception cref="TokenizerException">A file is missing or malformed (merges errors give the line).</exception>
    public static Tokenizer Load(string vocabPath, string mergesPath, TokenizerConfig? config)
    {
        var vocab = ReadVocab(vocabPath);
        var merges = ReadMerges(mergesPath, out var lines);
        var model = new BpeModel(vocab, merges, new BpeOptions(), k => $"{mergesPath}: line {lines[k]}");
        bool qwen = config?.TokenizerClass?.StartsWith("Qwen2", StringComparison.Ordinal) == true;
        INormalizer? normalizer = qwen ? new UnicodeNormalizer(Unicode.UnicodeForm.Nfc) : null;
        IPreTokenizer preTokenizer = qwen
            ? new SequencePreTokenizer([new SplitPreTokenizer(FastSplitPatterns.ForRegex(Qwen2Pattern), SplitBehavior.Isolated, false, Qwen2Pattern), new ByteLevelPreTokenizer(false, false)])
            : new ByteLevelPreTokenizer(config?.Raw["add_prefix_space"]?.GetValue<bool>() ?? false, true);
        var added = ConfigAddedTokens(config, t => model.TokenToId(t));
        return new Tokenizer(model, normalizer, preTokenizer, new ByteLevelProcessor(false, false), new ByteLevelDecoder(), added, whitespaceMarker: "Ġ");
    }

    /// <summary>Reads a <c>{"token": id}</c> vocabulary file.</summary>
    public static Dictionary<string, int> ReadVocab(string path)
    {
        if (!File.Exists(path)) throw new TokenizerException($"{path}: not found");
        var bytes = Utf8.ReadValidated(path);
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(bytes);
            return BpeModel.ReadVocab(new JsonSection(doc.RootElement, path, "(root)"));
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new TokenizerException($"{path}: line {(e.LineNumber ?? 0) + 1}: not valid JSON ({e.Message})");
        }
    }

    /// <summary>
    /// Reads merges.txt: one merge "a b" per line in rank order; "#version" lines and blank lines are skipped, CRLF is
    /// accepted. <paramref name="lineNumbers"/> gives the file line of each merge for error messages.
    /// </summary>
    /// <exception cref="TokenizerException">A line is not two tokens separated by one space (the message gives the line).</exception>
    public static List<(string A, string B)> ReadMerges(string path, out List<int> lineNumbers)
    {
        if (!File.Exists(path)) throw new TokenizerException($"{path}: not found");
        var text = Utf8.ReadFile(path);
        var merges = new List<(string, string)>();
        lineNumbers = [];
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.EndsWith('\r') ? raw[..^1] : raw;
            if (line.Length == 0 || line.StartsWith("#version", StringComparison.Ordinal)) continue;
            int sp = line.IndexOf(' ', StringComparison.Ordinal);
            if (sp <= 0 || sp == line.Length - 1 || line.IndexOf(' ', sp + 1) >= 0)
                throw new TokenizerException($"{path}: line {lineNo}: a merge must be two tokens separated by one space, got \"{line}\"", "merges.txt has one merge per line, e.g. \"Ġ t\"");
            merges.Add((line[..sp], line[(sp + 1)..]));
            lineNumbers.Add(lineNo);
        }
        return merges;
    }

    /// <summary>
    /// The tokens transformers' slow tokenizers never split: <c>added_tokens_decoder</c> (with their flags) and the
    /// special tokens named in the config, when the vocabulary knows them.
    /// </summary>
    internal static List<AddedToken> ConfigAddedTokens(TokenizerConfig? config, Func<string, int?> lookup)
    {
        var result = new Dictionary<int, AddedToken>();
        if (config is null) return [];
        foreach (var (id, spec) in config.AddedTokensDecoder)
            result[id] = new AddedToken(id, spec.Content, spec.Special, spec.SingleWord, spec.LStrip, spec.RStrip, spec.Normalized);
        var named = new[] { config.BosToken, config.EosToken, config.UnkToken, config.PadToken }.Concat(config.AdditionalSpecialTokens);
        foreach (var spec in named)
        {
            if (spec is null || result.Values.Any(t => t.Content == spec.Content)) continue;
            if (lookup(spec.Content) is { } id) result[id] = new AddedToken(id, spec.Content, true, spec.SingleWord, spec.LStrip, spec.RStrip, spec.Normalized);
        }
        return [.. result.Values.OrderBy(t => t.Id)];
    }
}
