using FuseSharp.Tokenization.PostProcessors;

namespace FuseSharp.Tokenization;

/// <summary>How <see cref="TokenizerLoader"/> builds a tokenizer.</summary>
public sealed record TokenizerLoadOptions
{
    /// <summary>
    /// Apply <c>tokenizer_config.json</c> / <c>special_tokens_map.json</c> next to the files (special tokens,
    /// <c>add_bos_token</c>/<c>add_eos_token</c>, added tokens), as transformers' <c>AutoTokenizer</c> does. When false,
    /// a tokenizer.json behaves exactly as the Rust <c>tokenizers</c> library loads it.
    /// </summary>
    public bool ApplyTokenizerConfig { get; init; } = true;
}

/// <summary>
/// The one entry point for tokenizers: picks the format from a folder (tokenizer.json, else tokenizer.model —
/// SentencePiece protobuf or tiktoken ranks, detected from the content —, else vocab.json + merges.txt, else a .gguf)
/// or from a file, and applies <c>tokenizer_config.json</c> when present.
/// </summary>
public static class TokenizerLoader
{
    /// <summary>Loads the tokenizer at <paramref name="pathOrFolder"/>.</summary>
    /// <exception cref="TokenizerException">Nothing loadable there, or the files are malformed (the message says which and where).</exception>
    public static ITokenizer Load(string pathOrFolder, TokenizerLoadOptions? options = null)
    {
        options ??= new TokenizerLoadOptions();
        var (kind, file) = Detect(pathOrFolder);
        var folder = Path.GetDirectoryName(Path.GetFullPath(file))!;
        var config = options.ApplyTokenizerConfig && TokenizerConfig.Exists(folder) ? TokenizerConfig.Load(folder) : null;
        switch (kind)
        {
            case Format.TokenizerJson:
                return config is null ? TokenizerJson.Load(file) : ApplyConfig(TokenizerJson.Load(file), config);
            case Format.BpeFiles:
            {
                var vocab = Path.GetFileName(file) == "merges.txt" ? Path.Combine(folder, "vocab.json") : file;
                var merges = Path.Combine(folder, "merges.txt");
                return ApplyConfig(BpeFiles.Load(vocab, merges, config), config);
            }
            case Format.SentencePiece:
                return SentencePiece.SentencePieceFiles.Load(file, config);
            case Format.Gguf:
                return Gguf.GgufTokenizer.Load(file);
            case Format.Tiktoken:
                return ApplyConfig(Tiktoken.TiktokenFiles.Load(file, config), config);
            default:
                throw new TokenizerException($"{file}: unsupported tokenizer format {kind}");
        }
    }

    internal enum Format
    {
        TokenizerJson,
        BpeFiles,
        SentencePiece,
        Tiktoken,
        Gguf,
    }

    internal static (Format Kind, string File) Detect(string pathOrFolder)
    {
        if (Directory.Exists(pathOrFolder))
        {
            string P(string name) => Path.Combine(pathOrFolder, name);
            if (File.Exists(P("tokenizer.json"))) return (Format.TokenizerJson, P("tokenizer.json"));
            foreach (var name in new[] { "tokenizer.model", "tokenizer.model.v3", "spiece.model", "sentencepiece.bpe.model" })
                if (File.Exists(P(name))) return (SniffModel(P(name)), P(name));
            if (File.Exists(P("vocab.json")) && File.Exists(P("merges.txt"))) return (Format.BpeFiles, P("vocab.json"));
            var ggufs = Directory.GetFiles(pathOrFolder, "*.gguf");
            if (ggufs.Length == 1) return (Format.Gguf, ggufs[0]);
            if (ggufs.Length > 1) throw new TokenizerException($"{pathOrFolder}: several .gguf files; name the one to use");
            throw new TokenizerException($"{pathOrFolder}: no tokenizer found",
                "expected tokenizer.json, tokenizer.model (SentencePiece or tiktoken), vocab.json + merges.txt, or a .gguf file");
        }
        if (!File.Exists(pathOrFolder)) throw new TokenizerException($"{pathOrFolder}: no such file or folder");
        var fileName = Path.GetFileName(pathOrFolder);
        if (fileName.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) || HasMagic(pathOrFolder, "GGUF"u8)) return (Format.Gguf, pathOrFolder);
        if (fileName is "vocab.json" or "merges.txt") return (Format.BpeFiles, pathOrFolder);
        if (fileName.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return (Format.TokenizerJson, pathOrFolder);
        return (SniffModel(pathOrFolder), pathOrFolder);
    }

    // tiktoken rank files are text lines "<base64> <rank>"; anything else is read as a SentencePiece protobuf.
    private static Format SniffModel(string path)
    {
        using var f = File.OpenRead(path);
        var head = new byte[256];
        int n = f.Read(head);
        int nl = Array.IndexOf(head, (byte)'\n', 0, n);
        var line = System.Text.Encoding.ASCII.GetString(head, 0, nl < 0 ? n : nl).TrimEnd('\r');
        int sp = line.IndexOf(' ', StringComparison.Ordinal);
        bool tiktoken = sp > 0 && line[..sp].All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=') && line[(sp + 1)..].All(char.IsAsciiDigit) && sp + 1 < line.Length;
        return tiktoken ? Format.Tiktoken : Format.SentencePiece;
    }

    private static bool HasMagic(string path, ReadOnlySpan<byte> magic)
    {
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        return f.Read(head) == 4 && head.SequenceEqual(magic);
    }

    /// <summary>
    /// Applies a <c>tokenizer_config.json</c> to a pipeline tokenizer: special-token ids, and BOS/EOS addition as
    /// transformers does (Llama/Gemma-family classes rebuild their template from <c>add_bos_token</c> (default true) and
    /// <c>add_eos_token</c> (default false); other classes only when the config sets the flags).
    /// </summary>
    public static Tokenizer ApplyConfig(Tokenizer tokenizer, TokenizerConfig? config)
    {
        if (config is null) return tokenizer;
        var specials = ResolveSpecials(tokenizer, config);
        bool llamaFamily = config.TokenizerClass is { } c && (c.StartsWith("LlamaTokenizer", StringComparison.Ordinal) || c.StartsWith("CodeLlamaTokenizer", StringComparison.Ordinal) || c.StartsWith("GemmaTokenizer", StringComparison.Ordinal));
        bool? addBos = config.AddBosToken ?? (llamaFamily ? true : null);
        bool? addEos = config.AddEosToken ?? (llamaFamily ? false : null);
        if (addBos is null && addEos is null) return tokenizer.WithPostProcessor(tokenizer.PostProcessor, specials);
        int? bos = addBos == true ? specials.Bos ?? throw new TokenizerException($"{config.Path}: add_bos_token is set but the BOS token is unknown") : null;
        int? eos = addEos == true ? specials.Eos ?? throw new TokenizerException($"{config.Path}: add_eos_token is set but the EOS token is unknown") : null;
        return tokenizer.WithPostProcessor(new BosEosProcessor(tokenizer.PostProcessor, bos, eos), specials);
    }

    /// <summary>Special-token ids from the config, else from the post-processor template and common names.</summary>
    internal static SpecialTokenIds ResolveSpecials(ITokenizer tokenizer, TokenizerConfig? config)
    {
        int? Id(AddedTokenSpec? spec) => spec is null ? null : tokenizer.TokenToId(spec.Content);
        int? First(params string[] names) => names.Select(tokenizer.TokenToId).FirstOrDefault(id => id is not null);
        if (config is not null)
            return new SpecialTokenIds(Id(config.BosToken), Id(config.EosToken), Id(config.PadToken), Id(config.UnkToken) ?? tokenizer.UnkTokenId);
        int? templateBos = tokenizer is Tokenizer { PostProcessor: TemplateProcessing tp } ? tp.PrefixIds.Cast<int?>().FirstOrDefault() : null;
        int? templateEos = tokenizer is Tokenizer { PostProcessor: TemplateProcessing tp2 } ? tp2.SuffixIds.Cast<int?>().LastOrDefault() : null;
        return new SpecialTokenIds(
            templateBos ?? tokenizer.BosTokenId ?? First("<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "[CLS]", "<|endoftext|>"),
            templateEos ?? tokenizer.EosTokenId ?? First("</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>", "[SEP]"),
            tokenizer.PadTokenId ?? First("<pad>", "[PAD]", "<|padding|>", "<|pad|>"),
            tokenizer.UnkTokenId ?? First("<unk>", "[UNK]"));
    }
}
