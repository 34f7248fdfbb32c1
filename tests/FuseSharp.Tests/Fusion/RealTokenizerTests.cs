using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Text;
using FuseSharp.Fusion.Vocab;
using FuseSharp.Tokenization;
using Xunit;

namespace FuseSharp.Tests.Fusion;

/// <summary>The fusion fixtures that need the real Llama-2 / GPT-NeoX / Qwen2 tokenizers (Fixtures/tokenizers).</summary>
public sealed class RealTokenizerTests : ScratchFolderTest
{
    private static readonly Dictionary<string, string> Folders = new()
    {
        ["llama2"] = "llama2",
        ["neox"] = "gpt-neox-20b",
        ["qwen2"] = "qwen2",
    };

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ITokenizer> Cache = new();

    private static readonly Lazy<string> MptFolder = new(MakeMptFolder);

    /// <summary>
    /// The tokenizer folder of a model: Llama-2 and Qwen2 as they are; NeoX as MPT-7B ships it (the fixtures' 50277
    /// entries: the copied tokenizer.json lists four later added tokens, 50277..50280, which would split "assistant"
    /// out of code; and a tokenizer_config.json naming &lt;|endoftext|&gt; as BOS/EOS/UNK, as MPT's does).
    /// </summary>
    internal static string FolderOf(string name) => name == "neox" ? MptFolder.Value : TestPaths.Fixture("tokenizers", Folders[name]);

    internal static ITokenizer Tokenizer(string name) => Cache.GetOrAdd(name, n => TokenizerLoader.Load(FolderOf(n)));

    /// <summary>The vocabulary view with the class its tokenizer_config.json names (transformers' decoding defaults depend on it).</summary>
    internal static TokenVocabulary Vocabulary(string name) =>
        TokenVocabulary.FromTokenizer(Tokenizer(name), name: name, tokenizerClass: TokenizerConfig.Exists(FolderOf(name)) ? TokenizerConfig.Load(FolderOf(name)).TokenizerClass : "LlamaTokenizer");

    private static string MakeMptFolder()
    {
        var dir = Path.Combine(Path.GetTempPath(), "fusesharp-tests", "mpt-tokenizer-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(TestPaths.Fixture("tokenizers", "gpt-neox-20b", "tokenizer.json")))!.AsObject();
        var added = json["added_tokens"]!.AsArray();
        foreach (var t in added.Where(t => t!["id"]!.GetValue<int>() >= 50277).ToList()) added.Remove(t);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"bos_token\": \"<|endoftext|>\", \"eos_token\": \"<|endoftext|>\", \"unk_token\": \"<|endoftext|>\", \"tokenizer_class\": \"GPTNeoXTokenizer\"}");
        return dir;
    }

    public static TheoryData<string, string> Snippets()
    {
        var data = new TheoryData<string, string>();
        foreach (var l in FusionFixtures.Lines("tokenizations.jsonl"))
            foreach (var tok in new[] { "llama2", "neox", "qwen2" })
                if (l[tok] is not null) data.Add(l["id"]!.GetValue<string>(), tok);
        return data;
    }

    [Theory]
    [MemberData(nameof(Snippets))]
    public void TokenizationsMatchTheReference(string snippet, string tokenizer)
    {
        var line = FusionFixtures.Lines("tokenizations.jsonl").Single(l => l["id"]!.GetValue<string>() == snippet);
        var enc = Tokenizer(tokenizer).Encode(line["text"]!.GetValue<string>(), addSpecialTokens: false);
        Assert.Equal(FusionFixtures.Ints(line[tokenizer]!["ids"]), enc.Ids);
        Assert.Equal(FusionFixtures.Strings(line[tokenizer]!["pieces"]), enc.Tokens);
    }

    [Fact]
    public void FuseLlmSequencesAreTextPlusEos()
    {
        foreach (var line in FusionFixtures.Lines("dist_align_fusellm.jsonl"))
        {
            var text = FusionFixtures.Lines("tokenizations.jsonl").Single(l => l["id"]!.GetValue<string>() == line["snippet"]!.GetValue<string>())["text"]!.GetValue<string>();
            var b = Tokenizer("llama2");
            var s = Tokenizer(line["blending"]!.GetValue<string>());
            Assert.Equal(FusionFixtures.Ints(line["base_ids"]), ReferenceSequences.FuseLlm(b, text, b.EosTokenId));
            Assert.Equal(FusionFixtures.Ints(line["blending_ids"]), ReferenceSequences.FuseLlm(s, text, s.EosTokenId));
        }
    }

    [Theory]
    [InlineData("llama2", "▁")]
    [InlineData("neox", "Ġ")]
    [InlineData("qwen2", "Ġ")]
    public void VocabulariesOfTheLoadedTokenizersAreTheTestVocabularies(string name, string marker)
    {
        var v = TokenVocabulary.FromTokenizer(Tokenizer(name), name: name);
        Assert.Equal(marker, v.Marker);
        var expected = TestVocabularies.Get(name);
        for (int id = 0; id < expected.Count; id++)
        {
            if (expected.Piece(id) is { } p) Assert.Equal(p, v.Piece(id));
        }
    }

    [Fact]
    public void PerTokenDecodingMatchesTransformers()
    {
        // FuseChat v2 compares tokenizer.decode([id]) per token (transformers 4.39.1): Llama strips one leading "▁",
        // byte-level tokenizers decode bytes (NeoX also cleans up tokenization spaces).
        var b = Tokenizer("llama2");
        var bd = ReferenceSequences.PerTokenDecoder(b, Vocabulary("llama2"));
        foreach (var line in FusionFixtures.Lines("dist_align_fusechat_v2.jsonl"))
        {
            var s = Tokenizer(line["blending"]!.GetValue<string>());
            var sd = ReferenceSequences.PerTokenDecoder(s, Vocabulary(line["blending"]!.GetValue<string>()));
            var baseIds = FusionFixtures.Ints(line["base_ids"]);
            var blendIds = FusionFixtures.Ints(line["blending_ids"]);
            Assert.Equal(FusionFixtures.Strings(line["base_decoded"]), baseIds.Select(bd).ToArray());
            Assert.Equal(FusionFixtures.Strings(line["blending_decoded"]), blendIds.Select(sd).ToArray());
            // The sequences themselves: text + EOS with special tokens.
            var text = FusionFixtures.Lines("tokenizations.jsonl").Single(l => l["id"]!.GetValue<string>() == line["snippet"]!.GetValue<string>())["text"]!.GetValue<string>();
            Assert.Equal(baseIds, ReferenceSequences.FuseChatText(b, text, b.EosTokenId));
            Assert.Equal(blendIds, ReferenceSequences.FuseChatText(s, text, s.EosTokenId));
        }
    }

    public static TheoryData<string> MsFiles() => ["ms_mapping_qwen2_to_llama2.json", "ms_mapping_neox_to_llama2.json"];

    [Theory]
    [MemberData(nameof(MsFiles))]
    public void MsMapFromRawTextMatchesFuseChatV2(string file)
    {
        // From the corpus text to the map: FuseChat v2 tokenization (text + EOS with special tokens), per-token decoding,
        // DTW on decoded strings, distinct-id counts, then the shipped scorer.
        var f = FusionFixtures.Json(file);
        var texts = f["corpus"]!.AsArray().Select(id => FusionFixtures.Lines("tokenizations.jsonl").Single(l => l["id"]!.GetValue<string>() == id!.GetValue<string>())["text"]!.GetValue<string>());
        var corpus = Scratch("corpus.jsonl");
        File.WriteAllLines(corpus, texts.Select(t => new System.Text.Json.Nodes.JsonObject { ["text"] = t }.ToJsonString()));
        string src = f["source"]!.GetValue<string>();
        var b = Tokenizer("llama2");
        var s = Tokenizer(src);
        var bv = Vocabulary("llama2");
        var sv = Vocabulary(src);
        var counts = VocabMapStage.CountCorpus(corpus, b, s, bv, sv);
        var expected = f["counts"]!.AsArray().Select(c => (c![0]!.GetValue<int>(), c[1]!.GetValue<int>(), c[2]!.GetValue<int>())).ToList();
        Assert.Equal(expected, counts.Entries().ToList());
        var (map, _) = VocabMapStage.Run(sv, bv, VocabMapType.Ms, counts);
        var list = map.ToIdList(map.UnmappedId!.Value);
        var want = f["blending_to_base"]!.AsObject().ToDictionary(p => int.Parse(p.Key, System.Globalization.CultureInfo.InvariantCulture), p => p.Value!.GetValue<int>());
        int checkedIds = 0;
        for (int id = 0; id < Math.Min(list.Length, f["vocab_sizes"]!["source"]!.GetValue<int>()); id++, checkedIds++)
            Assert.Equal(want.TryGetValue(id, out int v) ? v : f["default_pivot_id"]!.GetValue<int>(), list[id]);
        Assert.True(checkedIds > 50000);
    }

    [Fact]
    public void SplitWithTheRealTokenizersKeepsChunksWithinTheBlock()
    {
        var text = string.Join(" ", FusionFixtures.Lines("tokenizations.jsonl").Select(l => l["text"]!.GetValue<string>()));
        var toks = new[] { Tokenizer("llama2"), Tokenizer("neox"), Tokenizer("qwen2") };
        var chunks = FuseSharp.Fusion.Text.TextSplitter.Split(text, toks, blockSize: 300, margin: 48);
        Assert.True(chunks.Count > 5);
        int longest = toks.Select(t => t.Encode(text).Count).Max();
        Assert.Equal((longest + 251) / 252, chunks.Count);
        foreach (var c in chunks)
            foreach (var t in toks) Assert.True(t.Encode(c).Count <= 300, $"a chunk has {t.Encode(c).Count} tokens");
    }
}
