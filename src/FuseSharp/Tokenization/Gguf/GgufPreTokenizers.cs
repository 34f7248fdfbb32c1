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
            @"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
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
