using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.IO;

namespace FuseSharp.Tokenization.Training;

/// <summary>One unigram EM sub-iteration: the pieces it started with and the objective (average negative log-likelihood per word) of its E-step.</summary>
public sealed record UnigramEmStep(int Round, int SubIteration, int Pieces, double Objective);

/// <summary>What a training run measured (for the CLI summary and the benchmark).</summary>
public sealed class TrainingStats
{
    /// <summary>Bytes of the input files (0 for in-memory documents).</summary>
    public long InputBytes { get; init; }

    /// <summary>Characters (UTF-16 units) of training text read.</summary>
    public long Characters { get; init; }

    /// <summary>Words counted (with repetition) and distinct words.</summary>
    public long Words { get; init; }

    public int UniqueWords { get; init; }

    /// <summary>Base symbols: the 256 byte characters, or the covered characters.</summary>
    public int BaseSymbols { get; internal set; }

    /// <summary>Tokens learnt beyond the base symbols (merges or multi-character pieces).</summary>
    public int LearnedTokens { get; internal set; }

    /// <summary>SentencePiece BPE: merges of pairs that no longer occur, added (as SentencePiece does) after the text ran out of pairs.</summary>
    public int ZeroCountMerges { get; internal set; }

    /// <summary>Unigram: seed pieces the EM started from.</summary>
    public int SeedPieces { get; internal set; }

    /// <summary>Unigram: the objective of every EM sub-iteration.</summary>
    public IReadOnlyList<UnigramEmStep> EmSteps { get; internal set; } = [];

    public TimeSpan CountTime { get; init; }

    public TimeSpan TrainTime { get; internal set; }

    /// <summary>Something the user should know (the vocabulary came out smaller than asked), or null.</summary>
    public string? Notice { get; internal set; }
}

/// <summary>
/// A trained tokenizer: its vocabulary (index = id), merges (BPE) or scores (unigram), and the Hugging Face files
/// that describe it. <see cref="Build"/> loads it with the project's own <c>tokenizer.json</c> loader.
/// </summary>
public sealed class TrainedTokenizer
{
    internal TrainedTokenizer(TokenizerTrainingOptions options, List<string> vocabulary, List<(string, string)> merges, List<double>? scores, TrainingStats stats)
    {
        Options = options;
        Vocabulary = vocabulary;
        Merges = merges;
        Scores = scores;
        Stats = stats;
        for (int i = 0; i < vocabulary.Count; i++) ids[vocabulary[i]] = i;
    }

    private readonly Dictionary<string, int> ids = new(StringComparer.Ordinal);

    /// <summary>The resolved options it was trained with.</summary>
    public TokenizerTrainingOptions Options { get; }

    /// <summary>Every token, by id.</summary>
    public IReadOnlyList<string> Vocabulary { get; }

    /// <summary>BPE merges in rank order (empty for unigram).</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; }

    /// <summary>Unigram log-probabilities by id (0 for special and byte pieces); null for BPE.</summary>
    public IReadOnlyList<double>? Scores { get; }

    public TrainingStats Stats { get; }

    /// <summary>The id of a token, or null.</summary>
    public int? IdOf(string token) => ids.TryGetValue(token, out int id) ? id : null;

    /// <summary>The <c>tokenizer.json</c> text, laid out as Hugging Face <c>tokenizers</c> saves it.</summary>
    public string ToTokenizerJson()
    {
        var layout = TokenizerTrainer.Layout(Options, t => ids[t]);
        var added = new JsonArray();
        foreach (var t in Options.ResolvedSpecialTokens)
        {
            added.Add(new JsonObject
            {
                ["id"] = ids[t], ["content"] = t, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        }
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
        };
        foreach (var key in new[] { "normalizer", "pre_tokenizer", "post_processor", "decoder" }) root[key] = layout[key]?.DeepClone();
        root["model"] = Options.Kind == TokenizerKind.Unigram ? UnigramModel() : BpeModel();
        return HfJsonWriter.Write(root);
    }

    private JsonObject BpeModel()
    {
        var vocab = new JsonObject();
        for (int i = 0; i < Vocabulary.Count; i++) vocab[Vocabulary[i]] = i;
        var merges = new JsonArray();
        foreach (var (a, b) in Merges) merges.Add(new JsonArray(a, b));
        bool sp = Options.Kind == TokenizerKind.SentencePieceBpe;
        return new JsonObject
        {
            ["type"] = "BPE",
            ["dropout"] = null,
            ["unk_token"] = sp ? Options.UnkToken : null,
            ["continuing_subword_prefix"] = null,
            ["end_of_word_suffix"] = null,
            ["fuse_unk"] = sp,
            ["byte_fallback"] = Options.ByteFallback,
            ["ignore_merges"] = false,
            ["vocab"] = vocab,
            ["merges"] = merges,
        };
    }

    private JsonObject UnigramModel()
    {
        var vocab = new JsonArray();
        for (int i = 0; i < Vocabulary.Count; i++) vocab.Add(new JsonArray(Vocabulary[i], Scores![i]));
        return new JsonObject
        {
            ["type"] = "Unigram",
            ["unk_id"] = ids[Options.UnkToken!],
            ["vocab"] = vocab,
            ["byte_fallback"] = Options.ByteFallback,
        };
    }

    /// <summary>
    /// The <c>tokenizer_config.json</c> text as transformers' <c>save_pretrained</c> writes it (sorted keys): the special
    /// tokens by role, <c>added_tokens_decoder</c>, and <c>PreTrainedTokenizerFast</c> as the class, which loads any
    /// <c>tokenizer.json</c>.
    /// </summary>
    public string ToTokenizerConfigJson()
    {
        var decoder = new JsonObject();
        foreach (var t in Options.ResolvedSpecialTokens)
        {
            decoder[ids[t].ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["content"] = t, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true,
            };
        }
        var entries = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["added_tokens_decoder"] = decoder,
            ["clean_up_tokenization_spaces"] = false,
            ["extra_special_tokens"] = new JsonObject(),
            ["model_max_length"] = JsonValue.Create(JsonDocument.Parse("1000000000000000019884624838656").RootElement.Clone()),
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
        };
        foreach (var (key, value) in new[] { ("bos_token", Options.BosToken), ("eos_token", Options.EosToken), ("unk_token", Options.UnkToken), ("pad_token", Options.PadToken) })
            if (value is not null) entries[key] = value;
        if (Options.AddBosToken) entries["add_bos_token"] = true;
        if (Options.AddEosToken) entries["add_eos_token"] = true;
        var root = new JsonObject();
        foreach (var (k, v) in entries) root[k] = v;
        return HfJsonWriter.Write(root) + "\n";
    }

    /// <summary>Builds the tokenizer from its <c>tokenizer.json</c> with the project's loader.</summary>
    public Tokenizer Build()
    {
        using var doc = JsonDocument.Parse(ToTokenizerJson());
        return FuseSharp.Tokenization.TokenizerJson.Build(new JsonSection(doc.RootElement, "tokenizer.json", ""));
    }

    /// <summary>
    /// Writes <c>tokenizer.json</c> and <c>tokenizer_config.json</c> into <paramref name="folder"/>: a new or empty folder is
    /// built aside and renamed into place; into an existing folder (a model folder) the two files are written atomically,
    /// replacing existing tokenizer files only with <paramref name="overwrite"/>.
    /// </summary>
    /// <exception cref="FuseSharpException">The folder cannot be written, or already has tokenizer files and <paramref name="overwrite"/> is false.</exception>
    public void Save(string folder, bool overwrite = false)
    {
        var json = ToTokenizerJson();
        var config = ToTokenizerConfigJson();
        if (!Directory.Exists(folder) || !Directory.EnumerateFileSystemEntries(folder).Any())
        {
            using var output = AtomicOutputDirectory.Create(folder, overwrite: true);
            File.WriteAllText(Path.Combine(output.Path, "tokenizer.json"), json);
            File.WriteAllText(Path.Combine(output.Path, "tokenizer_config.json"), config);
            output.Commit();
            return;
        }
        foreach (var name in new[] { "tokenizer.json", "tokenizer_config.json" })
        {
            if (!overwrite && File.Exists(Path.Combine(folder, name)))
                throw new TokenizerTrainingException($"{Path.Combine(folder, name)}: already exists", "choose another output folder, or pass --overwrite to replace the tokenizer files");
        }
        AtomicFile.WriteAllText(Path.Combine(folder, "tokenizer.json"), json);
        AtomicFile.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config);
    }
}
