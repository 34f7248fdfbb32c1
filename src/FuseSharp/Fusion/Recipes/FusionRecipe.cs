using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Text;
using FuseSharp.Fusion.Vocab;
using FuseSharp.Tokenization.Training;
using FuseSharp.Training;

namespace FuseSharp.Fusion.Recipes;

/// <summary>A model of the recipe: its name (folder names in the output), its folder, and for sources how they are aligned.</summary>
/// <param name="Name">Short name (letters, digits, '-', '_').</param>
/// <param name="Path">The Hugging Face model folder (tokenizer included); empty for a model the run builds.</param>
/// <param name="Align">Alignment method (fusellm-soft, fusellm-hard, fusechat-em, fusechat-mined, fusechat-ms, copy) or auto.</param>
/// <param name="Build">How the run builds the model itself (miniature experiments), instead of <paramref name="Path"/>.</param>
public sealed record RecipeModel(string Name, string Path, string Align = "auto", ModelBuild? Build = null);

/// <summary>
/// A small model built by the run itself (spec §18: tokenizers and models of a miniature reproduction): a tokenizer
/// trained on <see cref="TokenizerData"/>, a randomly initialised model of <see cref="Architecture"/> with
/// <see cref="Config"/> (vocab_size set from the tokenizer), and optionally causal-LM pretraining on
/// <see cref="PretrainData"/> (each file repeated as often as listed, concatenated in order).
/// </summary>
public sealed record ModelBuild(
    TokenizerKind TokenizerKind,
    int VocabSize,
    IReadOnlyList<string> TokenizerData,
    string Architecture,
    JsonObject Config,
    long Seed,
    IReadOnlyList<string> PretrainData,
    int BlockSize,
    TrainingOptions? Pretrain);

/// <summary>A held-out evaluation set: JSONL with a text field (one document per line) or a plain text file (one document).</summary>
public sealed record HeldOutSet(string Name, string Path, string TextField = "text");

/// <summary>
/// One knowledge-fusion run described in YAML (<c>fusesharp fuse run RECIPE.yml OUT</c>): FuseLLM (corpus → split →
/// represent target and sources → vocabulary maps → align → pack → fuse → train, with a causal-LM-only baseline on
/// the same blocks) or FuseChat (chat corpus → represent → align or copy → filter NaN → fuse → one pairwise target
/// per source → merge them with the merge engine, SCE by default), followed by held-out bits per byte of every
/// model. Paths are relative to the recipe file. Defaults are the papers' (spec fusion.md §7.3) unless the recipe
/// says otherwise.
/// </summary>
public sealed record FusionRecipe
{
    public required FusionRecipeKind Kind { get; init; }

    public required RecipeModel Target { get; init; }

    public required IReadOnlyList<RecipeModel> Sources { get; init; }

    /// <summary>The training corpus (JSONL: <c>{"text": ...}</c> for FuseLLM, conversations for FuseChat).</summary>
    public required string Corpus { get; init; }

    /// <summary>FuseLLM: cut long documents first (split_long_text) with every model's tokenizer.</summary>
    public bool Split { get; init; } = true;

    public int SplitBlockSize { get; init; } = 2048;

    public int SplitMargin { get; init; } = 48;

    public required RepresentOptions Represent { get; init; }

    /// <summary>The one-hot fallback of alignment.</summary>
    public FallbackTarget Fallback { get; init; } = FallbackTarget.Next;

    public PackingOptions Pack { get; init; } = new();

    public FusionOptions Fusion { get; init; } = new();

    public required TrainingOptions Train { get; init; }

    /// <summary>Also train the target on the same rows with λ = 1 (the "Llama-2 CLM" baseline).</summary>
    public bool ClmBaseline { get; init; } = true;

    /// <summary>
    /// FuseChat: the merge method of the pairwise targets (mergekit name). FuseLLM with <see cref="MergeSources"/>: the
    /// method that merges the sources themselves (same architecture and vocabulary as the target, e.g. the target
    /// continually trained on each domain: the weight-merging baseline of FuseLLM's Table 7).
    /// </summary>
    public string MergeMethod { get; init; } = "sce";

    /// <summary>FuseLLM: also merge the sources' weights over the target as base (the recipe has a <c>merge</c> section).</summary>
    public bool MergeSources { get; init; }

    /// <summary>Also evaluate the probability-averaging ensemble of the sources (they must share one tokenizer).</summary>
    public bool Ensemble { get; init; }

    /// <summary>Merge-method parameters as given (default <c>select_topk: 1.0</c> for SCE).</summary>
    public IReadOnlyList<(string Key, string Value)> MergeParameters { get; init; } = [];

    public IReadOnlyList<HeldOutSet> HeldOut { get; init; } = [];

    /// <summary>Window of the held-out evaluation (tokens; at most every model's maximum positions).</summary>
    public int EvalBlockSize { get; init; } = 256;

    /// <summary>The recipe's text (its identity in the output folder).</summary>
    public required string Text { get; init; }

    /// <summary>SHA-256 of <see cref="Text"/>.</summary>
    public string Sha256 => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Text)));

    /// <summary>Reads a recipe file.</summary>
    /// <exception cref="FusionException">Invalid YAML, an unknown or misspelt option, a missing path or a bad value (file and line named).</exception>
    public static FusionRecipe Load(string path)
    {
        if (!File.Exists(path)) throw new FusionException($"{path}: no such recipe file");
        return Parse(File.ReadAllText(path), path, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Parses recipe text; relative paths are resolved against <paramref name="folder"/>.</summary>
    public static FusionRecipe Parse(string text, string file, string folder)
    {
        ArgumentNullException.ThrowIfNull(text);
        var y = RecipeYaml.Parse(text, file);
        string Resolve(string p) => Path.GetFullPath(Path.Combine(folder, p));
        var kind = y.Choice("kind", FusionRecipeKind.FuseLlm, ("fusellm", FusionRecipeKind.FuseLlm), ("fusechat", FusionRecipeKind.FuseChat));
        bool chat = kind == FusionRecipeKind.FuseChat;

        RecipeModel ModelOf(RecipeYaml section, string key, string name, string align)
        {
            if (section.IsScalar(key)) return new RecipeModel(name, Resolve(section.RequiredString(key)), align);
            var b = section.Section(key);
            if (!section.Has(key)) throw new FusionException($"{file}: {(section.Path.Length == 0 ? key : section.Path + "." + key)} is missing", "give a model folder, or a mapping with tokenizer/architecture/config/pretrain to build one");
            var tok = b.Section("tokenizer");
            var kindName = tok.Choice("kind", TokenizerKind.SentencePieceBpe, ("sp-bpe", TokenizerKind.SentencePieceBpe), ("byte-bpe", TokenizerKind.ByteLevelBpe), ("unigram", TokenizerKind.Unigram));
            int vocab = tok.Int("vocab_size", 1000);
            var tokData = tok.Strings("data").Select(Resolve).ToList();
            tok.Done();
            var arch = b.RequiredString("architecture");
            var config = b.Json("config");
            long seed = b.OptionalLong("seed") ?? 0;
            var pre = b.Section("pretrain");
            var preData = pre.Strings("data").Select(Resolve).ToList();
            int blockSize = pre.Int("block_size", 128);
            TrainingOptions? pretrain = null;
            if (preData.Count > 0)
            {
                pretrain = new TrainingOptions
                {
                    MaxSteps = pre.OptionalLong("steps") ?? 100,
                    BatchSize = pre.Int("batch_size", 8),
                    LearningRate = pre.Double("lr", 3e-3),
                    Schedule = ScheduleKind.Cosine,
                    WarmupRatio = pre.Double("warmup_ratio", 0.05),
                    Adam = new AdamWOptions(0.9, 0.95, 1e-8, pre.Double("weight_decay", 0.1)),
                    Seed = seed,
                    SaveSteps = pre.OptionalLong("save_steps") ?? 100,
                    SaveTotalLimit = 1,
                };
            }
            pre.Done();
            b.Done();
            if (tokData.Count == 0) tokData = preData;
            if (tokData.Count == 0) throw new FusionException($"{file}: {b.Path}.tokenizer.data is missing", "list the text files (JSONL with \"text\") the tokenizer is trained on");
            foreach (var f in tokData.Concat(preData).Distinct())
                if (!File.Exists(f)) throw new FusionException($"{file}: {b.Path}: the data file {f} does not exist");
            return new RecipeModel(name, "", align, new ModelBuild(kindName, vocab, tokData, arch, config, seed, preData, blockSize, pretrain));
        }

        var target = ModelOf(y, "target", "target", "auto");
        var sources = new List<RecipeModel>();
        foreach (var s in y.Sections("sources"))
        {
            var name = s.RequiredString("name");
            if (name.Length == 0 || name == "target" || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                throw new FusionException($"{file}: {s.Path}.name '{name}' must be letters, digits, '-' or '_' and not 'target'");
            if (sources.Any(o => o.Name == name)) throw new FusionException($"{file}: two sources are named '{name}'");
            var alignName = s.Choice("align", "auto",
                ("auto", "auto"), ("copy", "copy"), ("fusellm-soft", "fusellm-soft"), ("fusellm-hard", "fusellm-hard"),
                ("fusechat-em", "fusechat-em"), ("fusechat-mined", "fusechat-mined"), ("fusechat-ms", "fusechat-ms"));
            sources.Add(ModelOf(s, "model", name, alignName));
            s.Done();
        }
        if (sources.Count == 0) throw new FusionException($"{file}: the recipe has no sources", "list at least one source model under sources:");

        var corpus = y.Section("corpus");
        string corpusPath = Resolve(corpus.RequiredString("path"));
        var chatFormat = new ChatFormat();
        var template = corpus.Section("template");
        chatFormat = chatFormat with
        {
            UserPrefix = template.String("user", chatFormat.UserPrefix)!,
            AssistantPrefix = template.String("assistant", chatFormat.AssistantPrefix)!,
            Separator = template.String("separator", chatFormat.Separator),
        };
        template.Done();
        var textField = corpus.String("text_field", "text")!;
        corpus.Done();

        var split = y.Section("split");
        bool doSplit = split.Bool("enabled", !chat);
        int splitBlock = split.Int("block_size", 2048), splitMargin = split.Int("margin", 48);
        split.Done();

        var rep = y.Section("represent");
        var represent = new RepresentOptions
        {
            Format = chat ? CorpusFormat.Chat : CorpusFormat.Text,
            TextField = textField,
            Chat = chatFormat,
            K = rep.Int("top_k", 10),
            MaxLength = rep.Int("max_length", 2048),
            Scoring = new FuseSharp.Models.ScoringOptions { MaxTokensPerBatch = rep.Int("max_tokens_per_batch", 16384) },
            RowsPerPart = rep.Int("rows_per_part", 256),
        };
        rep.Done();

        var align = y.Section("align");
        var fallback = align.Choice("fallback", FallbackTarget.Next, ("next", FallbackTarget.Next), ("current", FallbackTarget.Current));
        align.Done();

        var pack = y.Section("pack");
        var packing = new PackingOptions
        {
            BlockSize = pack.Int("block_size", 2048),
            BatchDocuments = pack.Int("batch_documents", 1000),
            MetricLevel = pack.Choice("metric_level", MetricGranularity.Sequence, ("sequence", MetricGranularity.Sequence), ("token", MetricGranularity.Token)),
        };
        pack.Done();

        var fu = y.Section("fusion");
        var fusion = new FusionOptions
        {
            Rule = fu.Choice("rule", FusionRule.MinCe, ("minCE", FusionRule.MinCe), ("avgCE", FusionRule.AvgCe)),
            Granularity = fu.Choice("granularity", MetricGranularity.Sequence, ("sequence", MetricGranularity.Sequence), ("token", MetricGranularity.Token)),
            Temperature = (float)fu.Double("temperature", 1.0),
            WithTarget = fu.Bool("with_target", true),
            Precision = fu.Choice("precision", FusionPrecision.Bf16, ("bf16", FusionPrecision.Bf16), ("fp32", FusionPrecision.Fp32)),
        };
        fu.Done();

        var tr = y.Section("train");
        var defaults = TrainStage.Defaults(kind);
        var betas = tr.String("adam_betas");
        var adam = defaults.Adam;
        if (betas is not null)
        {
            var parts = betas.Split(',');
            if (parts.Length != 2 || !double.TryParse(parts[0], System.Globalization.CultureInfo.InvariantCulture, out double b1) || !double.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out double b2))
                throw new FusionException($"{file}: train.adam_betas must be two numbers like \"0.9,0.95\" (got '{betas}')");
            adam = adam with { Beta1 = b1, Beta2 = b2 };
        }
        adam = adam with { WeightDecay = tr.Double("weight_decay", adam.WeightDecay) };
        long? steps = tr.OptionalLong("steps");
        var train = defaults with
        {
            LearningRate = tr.Double("lr", defaults.LearningRate),
            MaxSteps = steps,
            Epochs = steps is null ? tr.Double("epochs", defaults.Epochs ?? 1) : null,
            BatchSize = tr.Int("batch_size", 8),
            GradientAccumulation = tr.Int("grad_accum", 1),
            Schedule = tr.Choice("schedule", defaults.Schedule, ("cosine", ScheduleKind.Cosine), ("linear", ScheduleKind.Linear), ("constant", ScheduleKind.Constant)),
            WarmupRatio = tr.Double("warmup_ratio", defaults.WarmupRatio),
            Adam = adam,
            MaxGradNorm = tr.Double("max_grad_norm", defaults.MaxGradNorm),
            Seed = tr.OptionalLong("seed") ?? 42,
            SaveSteps = tr.OptionalLong("save_steps") ?? 500,
            SaveTotalLimit = 2,
            Objective = defaults.Objective with
            {
                LmLossWeight = tr.Double("lm_loss_weight", defaults.Objective.LmLossWeight),
                FusionLoss = tr.Choice("fusion_loss", FusionLossKind.CrossEntropy, ("ce", FusionLossKind.CrossEntropy), ("kl", FusionLossKind.KlDivergence)),
                FusionMask = tr.Choice("fusion_mask", defaults.Objective.FusionMask, ("all", FusionLossMask.AllTokens), ("supervised", FusionLossMask.SupervisedTokens)),
            },
        };
        bool clm = tr.Bool("clm_baseline", !chat);
        tr.Done();
        try
        {
            train.Validate();
        }
        catch (TrainingException e)
        {
            throw new FusionException($"{file}: train: {e.Message}", e.Hint);
        }

        bool mergeSources = !chat && y.Has("merge");
        var merge = y.Section("merge");
        var mergeMethod = merge.String("method", "sce")!;
        var mergeParams = merge.Scalars("parameters");
        if (mergeParams.Count == 0 && mergeMethod == "sce") mergeParams = [("select_topk", "1.0")];
        merge.Done();

        var ev = y.Section("evaluate");
        int evalBlock = ev.Int("block_size", 256);
        bool ensemble = ev.Bool("ensemble", false);
        var heldOut = ev.Sections("held_out").Select(h =>
        {
            var set = new HeldOutSet(h.RequiredString("name"), Resolve(h.RequiredString("path")), h.String("text_field", "text")!);
            h.Done();
            return set;
        }).ToList();
        ev.Done();
        y.Done();

        foreach (var (p, what) in new[] { (target.Path, "target") }.Concat(sources.Select(s => (s.Path, $"source {s.Name}"))))
            if (p.Length > 0 && !Directory.Exists(p)) throw new FusionException($"{file}: the {what} model folder {p} does not exist");
        if (!File.Exists(corpusPath)) throw new FusionException($"{file}: the corpus {corpusPath} does not exist");
        foreach (var h in heldOut)
            if (!File.Exists(h.Path)) throw new FusionException($"{file}: the held-out set {h.Name} ({h.Path}) does not exist");
        if (doSplit && chat) throw new FusionException($"{file}: split applies to plain-text corpora (FuseLLM), not to chat data");

        return new FusionRecipe
        {
            Kind = kind,
            Target = target,
            Sources = sources,
            Corpus = corpusPath,
            Split = doSplit,
            SplitBlockSize = splitBlock,
            SplitMargin = splitMargin,
            Represent = represent,
            Fallback = fallback,
            Pack = packing,
            Fusion = fusion,
            Train = train,
            ClmBaseline = clm,
            MergeMethod = mergeMethod,
            MergeParameters = mergeParams,
            MergeSources = mergeSources,
            Ensemble = ensemble,
            HeldOut = heldOut,
            EvalBlockSize = evalBlock,
            Text = text,
        };
    }
}
