namespace FuseSharp.Tokenization.Gguf;

/// <summary>
/// The pre-tokenizers llama.cpp selects by <c>tokenizer.ggml.pre</c> (llama-vocab.cpp): a list of regexes applied
/// one after the other, each splitting the pieces of the previous one (matches and the text between them are both
/// kept), plus whether merges are ignored for words that are whole tokens. Where llama.cpp rewrote a Hugging Face
/// regex for its own engine (llama3, qwen2, tekken, gpt-4o), the original regex is used: it is what the model was
/// trained with, and this engine runs it as written.
/// </summary>
public static class GgufPreTokenizers
{
    /// <summary>A pre-tokenizer family: the regexes and whether a word that is a token skips the merges.</summary>
    public sealed record Family(string Name, IReadOnlyList<string> Regexes, bool IgnoreMerges = false, bool AddBos = false);

    private const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    private const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Poro = @" ?[^(\s|.,!?…。，、।۔،)]+";

    // DeepSeek LLM's letter class (the cased letters, Unicode LC), written with escapes: several ends of its ranges
    // (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) have singleton decompositions, and an editor that normalizes
    // text to NFC would silently turn them into other characters.
    private const string DeepSeekLetters = @"\s?[\x{0041}-\x{005A}\x{0061}-\x{007A}\x{00B5}\x{00C0}-\x{00D6}\x{00D8}-\x{00F6}\x{00F8}-\x{01BA}\x{01BC}-\x{01BF}\x{01C4}-\x{0293}\x{0295}-\x{02AF}\x{0370}-\x{0373}\x{0376}-\x{0377}\x{037B}-\x{037D}\x{037F}\x{0386}\x{0388}-\x{038A}\x{038C}\x{038E}-\x{03A1}\x{03A3}-\x{03F5}\x{03F7}-\x{0481}\x{048A}-\x{052F}\x{0531}-\x{0556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}-\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}-\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+";

    private static readonly Family Default = new("default", [@"[\p{P}\$\+<=>\^~\|]+", Gpt2, @"\p{N}+", "[0-9][0-9][0-9]"]);
    private static readonly Family Gpt2Family = new("gpt-2", [Gpt2]);
    private static readonly Family Llama3Family = new("llama3", [Llama3], IgnoreMerges: true, AddBos: true);
    private static readonly Family StarCoder = new("starcoder", [@"\p{N}", Gpt2]);
    private static readonly Family Qwen2Family = new("qwen2", [Qwen2]);
    private static readonly Family PoroFamily = new("poro", [Poro]);

    private static readonly Dictionary<string, Family> Table = new(StringComparer.Ordinal)
    {
        ["default"] = Default,
        ["llama3"] = Llama3Family,
        ["llama-v3"] = Llama3Family,
        ["llama-bpe"] = Llama3Family,
        ["falcon3"] = Llama3Family,
        ["dbrx"] = Llama3Family with { IgnoreMerges = false, AddBos = false },
        ["smaug-bpe"] = Llama3Family with { IgnoreMerges = false, AddBos = false },
        ["deepseek-llm"] = new("deepseek-llm", [
            "[\r\n]",
            DeepSeekLetters,
            @"\s?[!-/:-~！-／：-～‘-‟　-。]+",
            @"\s+$",
            "[一-龥ࠀ-一가-퟿]+",
            @"\p{N}+"]),
        ["deepseek-coder"] = new("deepseek-coder", ["[\r\n]", @"\s?\p{L}+", @"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", @"\p{N}"]),
        ["deepseek-v3"] = new("deepseek-v3", [@"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
            @"[!""#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"]),
        ["falcon"] = new("falcon", [@"[\p{P}\$\+<=>\^~\|`]+", Gpt2, "[0-9][0-9][0-9]"]),
        ["mpt"] = Gpt2Family with { Name = "mpt" },
        ["starcoder"] = StarCoder,
        ["refact"] = StarCoder with { Name = "refact" },
        ["command-r"] = StarCoder with { Name = "command-r" },
        ["smollm"] = StarCoder with { Name = "smollm" },
        ["codeshell"] = StarCoder with { Name = "codeshell" },
        ["exaone"] = StarCoder with { Name = "exaone" },
        ["minerva-7b"] = StarCoder with { Name = "minerva-7b" },
        ["gpt-2"] = Gpt2Family,
        ["phi-2"] = Gpt2Family,
        ["jina-es"] = Gpt2Family,
        ["jina-de"] = Gpt2Family,
        ["gigachat"] = Gpt2Family,
        ["jina-v1-en"] = Gpt2Family,
        ["jina-v2-es"] = Gpt2Family,
        ["jina-v2-de"] = Gpt2Family,
        ["jina-v2-code"] = Gpt2Family,
        ["roberta-bpe"] = Gpt2Family,
        ["olmo"] = Gpt2Family,
        ["jais"] = Gpt2Family,
        ["trillion"] = Gpt2Family,
        ["qwen2"] = Qwen2Family,
        ["deepseek-r1-qwen"] = Qwen2Family,
        ["megrez"] = Qwen2Family,
        ["stablelm2"] = Qwen2Family,
        ["hunyuan"] = Qwen2Family,
        ["poro-chat"] = PoroFamily,
        ["bloom"] = PoroFamily,
        ["gpt3-finnish"] = PoroFamily,
        ["viking"] = new("viking", [Poro, @"\p{N}"]),
        ["chatglm-bpe"] = new("chatglm-bpe", [Llama3]),
        ["tekken"] = new("tekken", [@"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"], IgnoreMerges: true, AddBos: true),
        ["gpt-4o"] = new("gpt-4o", [@"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"]),
    };

    /// <summary>The names this table knows.</summary>
    public static IEnumerable<string> Names => Table.Keys;

    /// <summary>The family for a <c>tokenizer.ggml.pre</c> value (missing = "default", as llama.cpp does).</summary>
    /// <exception cref="TokenizerException">Unknown name.</exception>
    public static Family Get(string? name, string source)
    {
        if (string.IsNullOrEmpty(name)) return Default;
        return Table.TryGetValue(name, out var f) ? f
            : throw new TokenizerException($"{source}: unknown pre-tokenizer type tokenizer.ggml.pre = '{name}'", $"known: {string.Join(", ", Table.Keys)}");
    }
}
