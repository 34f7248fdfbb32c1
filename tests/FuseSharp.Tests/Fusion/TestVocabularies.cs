using System.Text.Json.Nodes;
using FuseSharp.Fusion.Vocab;

namespace FuseSharp.Tests.Fusion;

/// <summary>The Llama-2 / GPT-NeoX / Qwen2 piece lists in Fixtures/fusion/vocab (see SOURCES.md there).</summary>
internal static class TestVocabularies
{
    private static readonly Lazy<TokenVocabulary> LlamaLazy = new(() => Load("llama2"));
    private static readonly Lazy<TokenVocabulary> NeoxLazy = new(() => Load("neox"));
    private static readonly Lazy<TokenVocabulary> QwenLazy = new(() => Load("qwen2"));

    private static readonly Lazy<VocabMap> NeoxMinEdLazy = new(() => VocabMapper.MinEd(Neox, Llama2));

    public static TokenVocabulary Llama2 => LlamaLazy.Value;

    /// <summary>The MinED map NeoX → Llama-2 (computed once per test run).</summary>
    public static VocabMap NeoxToLlamaMinEd => NeoxMinEdLazy.Value;

    public static TokenVocabulary Neox => NeoxLazy.Value;

    /// <summary>Only the Qwen2 ids the fixtures use have pieces; the id space is the full 151646.</summary>
    public static TokenVocabulary Qwen2 => QwenLazy.Value;

    public static TokenVocabulary Get(string name) => name switch
    {
        "llama2" => Llama2,
        "neox" => Neox,
        "qwen2" => Qwen2,
        _ => throw new ArgumentException(name),
    };

    private static TokenVocabulary Load(string name)
    {
        var o = JsonNode.Parse(File.ReadAllText(Path.Combine(FusionFixtures.Dir, "vocab", name + ".json")))!.AsObject();
        var pieces = new string?[o["size"]!.GetValue<int>()];
        foreach (var (k, v) in o["pieces"]!.AsObject()) pieces[int.Parse(k, System.Globalization.CultureInfo.InvariantCulture)] = v!.GetValue<string>();
        string cls = name switch { "llama2" => "LlamaTokenizer", "neox" => "GPTNeoXTokenizerFast", _ => "Qwen2Tokenizer" };
        return new TokenVocabulary(pieces, o["marker"]!.GetValue<string>(), o["bos"]?.GetValue<int>(), o["eos"]?.GetValue<int>(), o["unk"]?.GetValue<int>(), name, cls);
    }
}
