using FuseSharp.IO;
using FuseSharp.Tokenization.Decoders;
using FuseSharp.Tokenization.Models;
using FuseSharp.Tokenization.PostProcessors;
using FuseSharp.Tokenization.PreTokenizers;
using FuseSharp.Tokenization.SentencePiece;

namespace FuseSharp.Tokenization.Gguf;

/// <summary>
/// The tokenizer stored in a GGUF file as llama.cpp writes it (<c>tokenizer.ggml.*</c>): "llama" vocabularies
/// (SentencePiece BPE with scores and byte fallback), "gpt2" (byte-level BPE with merges and the pre-tokenizer named by
/// <c>tokenizer.ggml.pre</c>) and "bert" (WordPiece as llama.cpp runs it). Control, user-defined and unknown-type
/// tokens are cut out of the text first (llama.cpp with <c>parse_special</c>); BOS/EOS follow
/// <c>tokenizer.ggml.add_bos_token</c>/<c>add_eos_token</c> or llama.cpp's defaults per vocabulary type.
/// </summary>
public static class GgufTokenizer
{
    private const int TypeUnknown = 2, TypeControl = 3, TypeUserDefined = 4;

    /// <summary>Reads the tokenizer of a GGUF file.</summary>
    /// <exception cref="TokenizerException">The file has no tokenizer or an unsupported one.</exception>
    public static ITokenizer Load(string path)
    {
        GgufFile file;
        try
        {
            file = GgufFile.Read(path);
        }
        catch (GgufException e)
        {
            throw new TokenizerException(e.Message, e.Hint, e);
        }
        return FromGguf(file);
    }

    /// <summary>Builds the tokenizer described by a GGUF header.</summary>
    public static ITokenizer FromGguf(GgufFile f)
    {
        var src = f.Path;
        try
        {
            var kind = f.GetString("tokenizer.ggml.model") ?? throw new TokenizerException($"{src}: no tokenizer (tokenizer.ggml.model is missing)");
            var tokens = f.GetArray<string>("tokenizer.ggml.tokens") ?? throw new TokenizerException($"{src}: tokenizer.ggml.tokens is missing");
            var types = f.GetArray<int>("tokenizer.ggml.token_type");
            if (types is not null && types.Length != tokens.Length) throw new TokenizerException($"{src}: tokenizer.ggml.token_type has {types.Length} entries for {tokens.Length} tokens");
            int TypeOf(int id) => types is null ? 1 : types[id];
            int? Id(string key)
            {
                var v = f.GetInteger(key);
                if (v is null || v == -1 || v == uint.MaxValue) return null;
                if (v < 0 || v >= tokens.Length) throw new TokenizerException($"{src}: {key} = {v} is outside the vocabulary of {tokens.Length} tokens");
                return (int)v;
            }
            int? bos = Id("tokenizer.ggml.bos_token_id"), eos = Id("tokenizer.ggml.eos_token_id"), unk = Id("tokenizer.ggml.unknown_token_id"), pad = Id("tokenizer.ggml.padding_token_id");
            var name = (f.GetString("general.name") ?? "").ToLowerInvariant();
            switch (kind)
            {
                case "llama":
                {
                    var scores = f.GetArray<float>("tokenizer.ggml.scores");
                    if (scores is not null && scores.Length != tokens.Length) throw new TokenizerException($"{src}: tokenizer.ggml.scores has {scores.Length} entries for {tokens.Length} tokens");
                    unk ??= Enumerable.Range(0, tokens.Length).Cast<int?>().FirstOrDefault(i => TypeOf(i!.Value) == TypeUnknown) ?? 0;
                    var pieces = new List<SentencePieceEntry>(tokens.Length);
                    for (int i = 0; i < tokens.Length; i++)
                    {
                        int t = TypeOf(i);
                        // One unknown piece; other unknown-typed placeholders are kept out of the model like control pieces.
                        var type = i == unk ? PieceType.Unknown : t is TypeUnknown ? PieceType.Control : t is >= 1 and <= 6 ? (PieceType)t : PieceType.Normal;
                        pieces.Add(new SentencePieceEntry(tokens[i], scores?[i] ?? 0, type));
                    }
                    bool byteFallback = pieces.Count(p => p.Type == PieceType.Byte) == 256;
                    var normalizer = new NormalizerSpec("identity", [], f.GetBool("tokenizer.ggml.add_space_prefix") ?? true, f.GetBool("tokenizer.ggml.remove_extra_whitespaces") ?? false, true);
                    var proto = SentencePieceModelProto.Create(pieces, 2, byteFallback, normalizer);
                    var split = SpecialSplitTokens(tokens, TypeOf, name);
                    var options = new SentencePieceOptions
                    {
                        AddBos = f.GetBool("tokenizer.ggml.add_bos_token") ?? true,
                        AddEos = f.GetBool("tokenizer.ggml.add_eos_token") ?? false,
                        SplitTokens = split,
                        SpecialTokens = new SpecialTokenIds(bos, eos, pad, unk),
                    };
                    return new SentencePieceTokenizer(proto, options, src);
                }
                case "gpt2":
                {
                    var family = GgufPreTokenizers.Get(f.GetString("tokenizer.ggml.pre"), src);
                    var vocab = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
                    for (int i = 0; i < tokens.Length; i++) vocab[tokens[i]] = i;
                    var rawMerges = f.GetArray<string>("tokenizer.ggml.merges") ?? throw new TokenizerException($"{src}: tokenizer.ggml.merges is missing");
                    var merges = new List<(string, string)>(rawMerges.Length);
                    for (int k = 0; k < rawMerges.Length; k++)
                    {
                        // llama.cpp splits at the first space after the first character.
                        int sp = rawMerges[k].Length > 1 ? rawMerges[k].IndexOf(' ', 1) : -1;
                        if (sp < 0) throw new TokenizerException($"{src}: tokenizer.ggml.merges[{k}] \"{rawMerges[k]}\" is not two tokens separated by a space");
                        merges.Add((rawMerges[k][..sp], rawMerges[k][(sp + 1)..]));
                    }
                    var model = new BpeModel(vocab, merges, new BpeOptions { IgnoreMerges = family.IgnoreMerges }, k => $"{src}: tokenizer.ggml.merges[{k}]");
                    var stages = family.Regexes.Select(r => (IPreTokenizer)new SplitPreTokenizer(FastSplitPatterns.ForRegex(r), SplitBehavior.Isolated, false, r)).ToList();
                    stages.Add(new ByteLevelPreTokenizer(false, false));
                    bool addBos = f.GetBool("tokenizer.ggml.add_bos_token") ?? family.AddBos;
                    bool addEos = f.GetBool("tokenizer.ggml.add_eos_token") ?? false;
                    var post = new BosEosProcessor(null, addBos ? bos : null, addEos ? eos : null);
                    return new Tokenizer(model, null, new SequencePreTokenizer(stages), post, new ByteLevelDecoder(), SpecialSplitTokens(tokens, TypeOf, name), new SpecialTokenIds(bos, eos, pad, unk), "Ġ");
                }
                case "bert":
                {
                    int? sep = Id("tokenizer.ggml.seperator_token_id") ?? Id("tokenizer.ggml.separator_token_id");
                    int? cls = Id("tokenizer.ggml.cls_token_id") ?? bos;
                    return new LlamaCppWordPieceTokenizer(tokens, TypeOf, unk, cls, sep ?? eos, pad,
                        f.GetBool("tokenizer.ggml.add_bos_token") ?? true, f.GetBool("tokenizer.ggml.add_eos_token") ?? true);
                }
                default:
                    throw new TokenizerException($"{src}: tokenizer.ggml.model '{kind}' is not supported", "supported: llama (SentencePiece), gpt2 (byte-level BPE), bert (WordPiece)");
            }
        }
        catch (GgufException e)
        {
            throw new TokenizerException(e.Message, e.Hint, e);
        }
    }

    // llama.cpp's cache_special_tokens: control, user-defined and unknown-type tokens, with its per-model strip flags.
    private static List<AddedToken> SpecialSplitTokens(string[] tokens, Func<int, int> typeOf, string modelName)
    {
        bool phi3 = modelName.Contains("phi-3", StringComparison.Ordinal) || modelName.Contains("phi3", StringComparison.Ordinal);
        var result = new List<AddedToken>();
        for (int i = 0; i < tokens.Length; i++)
        {
            int t = typeOf(i);
            if (t is not (TypeControl or TypeUserDefined or TypeUnknown) || tokens[i].Length == 0) continue;
            // Phi-3: special tokens swallow the white space after them, except <unk>, <s> and <|endoftext|>.
            bool rstrip = phi3 && tokens[i] is not ("<unk>" or "<s>" or "<|endoftext|>");
            result.Add(new AddedToken(i, tokens[i], t != TypeUserDefined, RStrip: rstrip));
        }
        return result;
    }
}
