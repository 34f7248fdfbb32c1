namespace FuseSharp.Tokenization.SentencePiece;

/// <summary>Loads a SentencePiece .model with the settings of a <c>tokenizer_config.json</c> next to it.</summary>
public static class SentencePieceFiles
{
    /// <summary>
    /// Reads <paramref name="path"/>. The config (may be null) decides <c>add_bos_token</c> (default true, as HF's
    /// LlamaTokenizer) / <c>add_eos_token</c> and the reported special tokens. Strings such as "&lt;s&gt;" in the text stay
    /// ordinary text, as in the C++ library; use tokenizer.json for Hugging Face's added-token splitting.
    /// </summary>
    public static SentencePieceTokenizer Load(string path, TokenizerConfig? config)
    {
        if (!File.Exists(path)) throw new TokenizerException($"{path}: not found");
        var proto = SentencePieceModelProto.Parse(File.ReadAllBytes(path), path);
        var options = new SentencePieceOptions { AddBos = config?.AddBosToken ?? true, AddEos = config?.AddEosToken ?? false };
        var tokenizer = new SentencePieceTokenizer(proto, options, path);
        if (config is null) return tokenizer;
        var specials = TokenizerLoader.ResolveSpecials(tokenizer, config);
        return new SentencePieceTokenizer(proto, options with { SpecialTokens = specials }, path);
    }
}
