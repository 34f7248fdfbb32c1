using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Report;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Text;
using FuseSharp.Fusion.Vocab;
using FuseSharp.IO;
using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Planning;
using FuseSharp.Models;
using FuseSharp.Tensors;
using FuseSharp.Tokenization.Training;
using FuseSharp.Training;
using FuseSharp.Training.Data;

namespace FuseSharp.Fusion.Recipes;

/// <summary>One stage of a recipe run: its name (also its marker file) and what it does.</summary>
/// <param name="Name">e.g. <c>represent-target</c>, <c>align-s1</c>, <c>train-fused</c>.</param>
/// <param name="Run">The work; it may be interrupted at any point and run again (every stage resumes or restarts cleanly).</param>
public sealed record RecipeStage(string Name, Action<CancellationToken> Run);

/// <summary>
/// Runs a <see cref="FusionRecipe"/> into an output folder, stage by stage. A finished stage leaves a marker
/// <c>stages/NAME.done</c>; a rerun skips marked stages and resumes the first unfinished one (stores resume by
/// parts, training from its newest checkpoint, files are written atomically), so a run killed at any point
/// continues where it stopped. The folder remembers its recipe: another recipe is refused.
/// <para>Layout: <c>split.jsonl</c>, <c>represent/NAME</c>, <c>maps/SOURCE.json</c>, <c>aligned/SOURCE</c>,
/// FuseLLM <c>packed</c>, <c>fused</c>, <c>train/fused</c>, <c>train/clm</c>, <c>merged</c> (the sources merged, with a merge section); FuseChat <c>data/SOURCE</c>,
/// <c>fused/SOURCE</c>, <c>train/SOURCE</c>, <c>merged</c>; <c>results.json</c> / <c>results.md</c>.</para>
/// </summary>
public sealed class RecipeRunner
{
    private readonly FusionRecipe _recipe;
    private readonly Func<string, ITrainableModel> _loadTrainable;
    private readonly IProgressReporter _progress;

    /// <param name="recipe">The recipe.</param>
    /// <param name="outFolder">The run's folder (created; a rerun on it resumes).</param>
    /// <param name="loadTrainable">The training engine's loader.</param>
    /// <param name="progress">Progress and stage headers.</param>
    public RecipeRunner(FusionRecipe recipe, string outFolder, Func<string, ITrainableModel> loadTrainable, IProgressReporter? progress = null)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(outFolder);
        ArgumentNullException.ThrowIfNull(loadTrainable);
        _recipe = recipe;
        _loadTrainable = loadTrainable;
        _progress = progress ?? NullProgress.Instance;
        Out = Path.GetFullPath(outFolder);
        Stages = BuildStages();
    }

    public string Out { get; }

    /// <summary>The stages in order.</summary>
    public IReadOnlyList<RecipeStage> Stages { get; }

    /// <summary>A path inside the run folder.</summary>
    public string OutPath(string relative) => Path.Combine(Out, relative);

    /// <summary>The folder of the final model: FuseLLM's trained target or FuseChat's merged model.</summary>
    public string FinalModel => _recipe.Kind == FusionRecipeKind.FuseLlm ? OutPath("train/fused") : OutPath("merged");

    /// <summary>Whether stage <paramref name="name"/> has finished in this folder.</summary>
    public bool IsDone(string name) => File.Exists(Marker(name));

    /// <summary>
    /// Runs every unfinished stage (or up to and including <paramref name="until"/>) and returns the evaluation, if
    /// the evaluate stage ran or had run.
    /// </summary>
    /// <exception cref="FusionException">The folder belongs to another recipe, or a stage fails.</exception>
    public RecipeResults? Run(string? until = null, CancellationToken cancel = default)
    {
        if (until is not null && Stages.All(s => s.Name != until))
            throw new FusionException($"no stage named '{until}'", $"stages: {string.Join(", ", Stages.Select(s => s.Name))}");
        ClaimFolder();
        int i = 0;
        foreach (var stage in Stages)
        {
            i++;
            cancel.ThrowIfCancellationRequested();
            if (IsDone(stage.Name))
            {
                _progress.Message($"[{i}/{Stages.Count}] {stage.Name}: done earlier");
            }
            else
            {
                _progress.Message($"[{i}/{Stages.Count}] {stage.Name}");
                stage.Run(cancel);
                AtomicFile.WriteAllText(Marker(stage.Name), new JsonObject
                {
                    ["stage"] = stage.Name,
                    ["finished_utc"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
                }.ToJsonString() + "\n");
            }
            if (stage.Name == until) break;
        }
        var results = OutPath(RecipeResults.FileName);
        return File.Exists(results) ? RecipeResults.Load(results) : null;
    }

    private string Marker(string name) => Path.Combine(Out, "stages", name + ".done");

    private void ClaimFolder()
    {
        Directory.CreateDirectory(Path.Combine(Out, "stages"));
        var recipeCopy = OutPath("recipe.yml");
        if (File.Exists(recipeCopy))
        {
            if (File.ReadAllText(recipeCopy) != _recipe.Text)
                throw new FusionException($"{Out} holds a run of a different recipe (its copy is {recipeCopy})",
                    "run this recipe into a new folder, or delete the folder to start over");
            return;
        }
        if (Directory.EnumerateFileSystemEntries(Out).Any(e => Path.GetFileName(e) != "stages"))
            throw new FusionException($"{Out} is not empty and holds no recipe run", "choose a new output folder");
        AtomicFile.WriteAllText(recipeCopy, _recipe.Text);
    }

    private List<RecipeStage> BuildStages()
    {
        var r = _recipe;
        var stages = new List<RecipeStage>();
        var all = new[] { r.Target }.Concat(r.Sources).ToList();
        foreach (var m in all.Where(m => m.Build is not null))
        {
            stages.Add(new($"build-{m.Name}", c => BuildModel(m, c)));
            if (m.Build!.Pretrain is not null) stages.Add(new($"pretrain-{m.Name}", c => Pretrain(m, c)));
        }
        string corpus = r.Corpus;
        if (r.Kind == FusionRecipeKind.FuseLlm && r.Split)
        {
            corpus = OutPath("split.jsonl");
            stages.Add(new("split", c =>
            {
                var toks = all.Select(m => FusionTokenizers.Load(ModelPath(m))).ToList();
                var report = TextSplitter.SplitCorpus(r.Corpus, corpus, toks, r.SplitBlockSize, r.SplitMargin, r.Represent.TextField, _progress, c);
                report.Write(OutPath("split-report"));
            }));
        }
        foreach (var m in all)
        {
            stages.Add(new($"represent-{m.Name}", c =>
            {
                var outDir = Rep(m);
                var report = RepresentStage.RunModel(ModelPath(m), corpus, outDir, r.Represent, _progress, c);
                report.Write(Path.Combine(outDir, "represent-report"));
            }));
        }
        foreach (var s in r.Sources)
        {
            var method = AlignMethodFor(s);
            if (method.Map is { } mapType)
            {
                stages.Add(new($"vocab-map-{s.Name}", c =>
                {
                    var baseTok = FusionTokenizers.Load(ModelPath(r.Target));
                    var blendTok = FusionTokenizers.Load(ModelPath(s));
                    var baseVocab = FusionTokenizers.Vocabulary(baseTok, ModelPath(r.Target), null);
                    var blendVocab = FusionTokenizers.Vocabulary(blendTok, ModelPath(s), null);
                    CoAlignmentCounts? counts = mapType == VocabMapType.Ms
                        ? VocabMapStage.CountCorpus(corpus, baseTok, blendTok, baseVocab, blendVocab, r.Represent.Format,
                            ReferenceSequences.PerTokenDecoder(baseTok, baseVocab, FusionTokenizers.CleanUpSpaces(ModelPath(r.Target))),
                            ReferenceSequences.PerTokenDecoder(blendTok, blendVocab, FusionTokenizers.CleanUpSpaces(ModelPath(s))), _progress, c)
                        : null;
                    var (map, report) = VocabMapStage.Run(blendVocab, baseVocab, mapType, counts, MsScorer.Faithful, _progress, c);
                    Directory.CreateDirectory(OutPath("maps"));
                    map.WriteFuseLlmJson(MapPath(s), baseVocab);
                    report.Write(Path.ChangeExtension(MapPath(s), null) + ".report");
                }));
            }
            stages.Add(new($"align-{s.Name}", c =>
            {
                var b = FusionTokenizers.ForAlign(ModelPath(r.Target), null);
                var src = FusionTokenizers.ForAlign(ModelPath(s), null);
                VocabMap? map = method.Map is null ? null : VocabMap.Read(MapPath(s), src.Vocabulary, b.Vocabulary);
                var options = new AlignStageOptions
                {
                    Copy = method.Copy,
                    Aligner = new DistributionAlignerOptions { Method = method.Method, Fallback = r.Fallback },
                };
                var report = AlignStage.Run(StoreReader.Open(Rep(r.Target)), StoreReader.Open(Rep(s)), b, src, map, Aligned(s), options, _progress, c);
                report.Write(Path.Combine(Aligned(s), "align-report"));
            }));
        }
        if (r.Kind == FusionRecipeKind.FuseLlm) AddFuseLlm(stages);
        else AddFuseChat(stages);
        if (r.HeldOut.Count > 0)
        {
            stages.Add(new("evaluate", c =>
            {
                var models = new List<(string Name, string Path, string Role)> { ("target", ModelPath(r.Target), "before") };
                if (r.Kind == FusionRecipeKind.FuseLlm)
                {
                    if (r.ClmBaseline) models.Add(("clm", OutPath("train/clm"), "causal-LM only"));
                    models.Add(("fused", OutPath("train/fused"), "FuseLLM"));
                }
                else
                {
                    if (r.ClmBaseline) models.Add(("clm", OutPath("train/clm"), "SFT on the same data"));
                    models.AddRange(r.Sources.Select(s => ($"target-{s.Name}", OutPath($"train/{s.Name}"), $"pairwise with {s.Name}")));
                    models.Add(("merged", OutPath("merged"), $"merged ({r.MergeMethod})"));
                }
                if (r.MergeSources) models.Add(("merged", OutPath("merged"), $"merged sources ({r.MergeMethod})"));
                models.AddRange(r.Sources.Select(s => (s.Name, ModelPath(s), "source")));
                var ensembles = r.Ensemble ? [("ensemble", r.Sources.Select(ModelPath).ToList(), "sources' mean probability")] : new List<(string, IReadOnlyList<string>, string)>();
                var results = RecipeEvaluation.Run(models, r.HeldOut, r.EvalBlockSize, _progress, c, ensembles);
                results.Save(OutPath(RecipeResults.FileName));
                AtomicFile.WriteAllText(OutPath("results.md"), results.Table());
            }));
        }
        return stages;
    }

    private void AddFuseLlm(List<RecipeStage> stages)
    {
        var r = _recipe;
        stages.Add(new("pack", c =>
        {
            var data = FusionDataset.Join(StoreReader.Open(Rep(r.Target)), r.Sources.Select(s => StoreReader.Open(Aligned(s))).ToList());
            var report = PackStage.Run(data, OutPath("packed"), r.Pack, progress: _progress, cancel: c);
            report.Write(OutPath("packed/pack-report"));
        }));
        stages.Add(new("fuse", c =>
        {
            var report = FuseStage.Run(FusionDataset.FromDataset(StoreReader.Open(OutPath("packed"))), OutPath("fused"), r.Fusion, ShardSpec.All, progress: _progress, cancel: c);
            report.Write(OutPath("fused/fuse-report"));
        }));
        stages.Add(new("train-fused", c => Train(OutPath("train/fused"), () => FusionTrainingDataset.FromFusedStore(StoreReader.Open(OutPath("fused")), _progress, c), r.Train, c)));
        if (r.ClmBaseline)
        {
            stages.Add(new("train-clm", c => Train(OutPath("train/clm"),
                () => FusionTrainingDataset.LanguageModeling(FusionDataset.FromDataset(StoreReader.Open(OutPath("packed"))), c),
                r.Train with { Objective = r.Train.Objective with { LmLossWeight = 1 } }, c)));
        }
        if (r.MergeSources) stages.Add(new("merge", c => Merge(r.Sources.Select(ModelPath), c)));
    }

    private void AddFuseChat(List<RecipeStage> stages)
    {
        var r = _recipe;
        foreach (var s in r.Sources)
        {
            stages.Add(new($"filter-nan-{s.Name}", c =>
            {
                var data = FusionDataset.Join(StoreReader.Open(Rep(r.Target)), [StoreReader.Open(Aligned(s))]);
                var report = FilterNanStage.Run(data, OutPath($"data/{s.Name}"), progress: _progress, cancel: c);
                report.Write(OutPath($"data/{s.Name}/filter-nan-report"));
            }));
            stages.Add(new($"fuse-{s.Name}", c =>
            {
                var report = FuseStage.Run(FusionDataset.FromDataset(StoreReader.Open(OutPath($"data/{s.Name}"))), OutPath($"fused/{s.Name}"), r.Fusion, ShardSpec.All, progress: _progress, cancel: c);
                report.Write(OutPath($"fused/{s.Name}/fuse-report"));
            }));
            stages.Add(new($"train-{s.Name}", c => Train(OutPath($"train/{s.Name}"), () => FusionTrainingDataset.FromFusedStore(StoreReader.Open(OutPath($"fused/{s.Name}")), _progress, c), r.Train, c)));
        }
        if (r.ClmBaseline)
        {
            // The SFT baseline trains on the rows every pairwise run kept (those of the first source's filtered data).
            var first = r.Sources[0];
            stages.Add(new("train-clm", c => Train(OutPath("train/clm"),
                () => FusionTrainingDataset.LanguageModeling(FusionDataset.FromDataset(StoreReader.Open(OutPath($"data/{first.Name}"))), c),
                r.Train with { Objective = r.Train.Objective with { LmLossWeight = 1 } }, c)));
        }
        stages.Add(new("merge", c => Merge(new[] { ModelPath(r.Target) }.Concat(r.Sources.Select(s => OutPath($"train/{s.Name}"))), c)));
    }

    private void Train(string outDir, Func<FusionTrainingDataset> data, TrainingOptions options, CancellationToken cancel) =>
        Resumably(outDir, resume => TrainStage.Run(ModelPath(_recipe.Target), data(), outDir, options, _loadTrainable, resume, _progress, cancel: cancel));

    /// <summary>Runs a training into <paramref name="outDir"/>, resuming from its newest checkpoint if it has one.</summary>
    private static void Resumably(string outDir, Action<bool> train)
    {
        // A run killed before its first checkpoint leaves a folder the trainer will not start in: begin it again.
        bool resume = new CheckpointManager(outDir).Latest() is not null;
        if (!resume && Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        train(resume);
    }

    /// <summary>The folder of a model: given, or where the run builds it.</summary>
    private string ModelPath(RecipeModel m) =>
        m.Build is null ? m.Path : OutPath(m.Build.Pretrain is null ? $"models/{m.Name}/init" : $"models/{m.Name}/model");

    /// <summary>Trains the model's tokenizer and writes the initialised model with it.</summary>
    private void BuildModel(RecipeModel m, CancellationToken cancel)
    {
        var b = m.Build!;
        var tokDir = OutPath($"models/{m.Name}/tokenizer");
        var texts = b.TokenizerData.SelectMany(f => RecipeEvaluation.ReadTexts(new HeldOutSet(f, f))).ToList();
        bool bytes = b.TokenizerKind == TokenizerKind.ByteLevelBpe;
        var trained = TokenizerTrainer.Train(texts, new TokenizerTrainingOptions
        {
            Kind = b.TokenizerKind,
            VocabSize = b.VocabSize,
            SpecialTokens = bytes ? ["<s>", "</s>"] : ["<unk>", "<s>", "</s>"],
            UnkToken = bytes ? null : "<unk>",
            BosToken = "<s>",
            EosToken = "</s>",
        }, _progress, cancel);
        trained.Save(tokDir, overwrite: true);
        var tok = FusionTokenizers.Load(tokDir);
        var raw = (JsonObject)b.Config.DeepClone();
        raw["model_type"] = b.Architecture;
        raw["vocab_size"] = tok.VocabSize;
        raw["bos_token_id"] = tok.BosTokenId;
        raw["eos_token_id"] = tok.EosTokenId;
        var arch = ArchitectureRegistry.Get(b.Architecture);
        var (config, spec) = ModelInitializer.PrepareConfig(arch, raw, DType.F32, $"{m.Name}.config");
        var init = OutPath($"models/{m.Name}/init");
        ModelInitializer.WriteFolder(init, arch, config, spec, b.Seed, DType.F32, overwrite: true, _progress, cancel);
        foreach (var f in Directory.GetFiles(tokDir)) File.Copy(f, Path.Combine(init, Path.GetFileName(f)), overwrite: true);
        _progress.Message($"  {m.Name}: {b.Architecture}, {arch.Parameters(spec).Sum(p => p.ElementCount):N0} parameters, {b.TokenizerKind} vocabulary of {tok.VocabSize}");
    }

    /// <summary>Causal-LM pretraining of a built model on its data (plain text packed into blocks with EOS between documents).</summary>
    private void Pretrain(RecipeModel m, CancellationToken cancel)
    {
        var b = m.Build!;
        var init = OutPath($"models/{m.Name}/init");
        var dataFile = OutPath($"models/{m.Name}/pretrain.jsonl");
        var sb = new StringBuilder();
        foreach (var f in b.PretrainData)
            foreach (var t in RecipeEvaluation.ReadTexts(new HeldOutSet(f, f))) sb.Append(new JsonObject { ["text"] = t }.ToJsonString()).Append('\n');
        AtomicFile.WriteAllText(dataFile, sb.ToString());
        var tok = FusionTokenizers.Load(init);
        var data = TrainingData.Load(dataFile, new DataOptions(DataFormat.Auto, b.BlockSize), tok, null, _progress, cancel);
        var outDir = OutPath($"models/{m.Name}/model");
        Resumably(outDir, resume => new Trainer(b.Pretrain!, data, outDir, _progress).Run(init, _loadTrainable, resume, cancel));
    }

    /// <summary>
    /// Merges <paramref name="modelFolders"/> over the target as base into <c>merged</c>: FuseChat's pairwise targets
    /// (with the pivot itself), or FuseLLM's same-architecture sources.
    /// </summary>
    private void Merge(IEnumerable<string> modelFolders, CancellationToken cancel)
    {
        var r = _recipe;
        // mergekit YAML over the target as base, float32 (the trained precision).
        var yaml = new StringBuilder();
        yaml.Append("models:\n");
        foreach (var m in modelFolders) yaml.Append("  - model: ").Append(Quote(m)).Append('\n');
        yaml.Append("merge_method: ").Append(r.MergeMethod).Append('\n');
        yaml.Append("base_model: ").Append(Quote(ModelPath(r.Target))).Append('\n');
        if (r.MergeParameters.Count > 0)
        {
            yaml.Append("parameters:\n");
            foreach (var (k, v) in r.MergeParameters) yaml.Append("  ").Append(k).Append(": ").Append(v).Append('\n');
        }
        yaml.Append("dtype: float32\n");
        Directory.CreateDirectory(OutPath("merge"));
        AtomicFile.WriteAllText(OutPath("merge/merge.yml"), yaml.ToString());
        var config = MergeConfigParser.Parse(yaml.ToString(), OutPath("merge/merge.yml"));
        var options = new MergeOptions { Overwrite = true, WriteModelCard = true };
        using var plan = MergePlanner.Plan(config, options, _progress.Message, cancel);
        MergeExecutor.Run(plan, OutPath("merged"), _progress, cancel);
    }

    private static string Quote(string path) => "'" + path.Replace("'", "''", StringComparison.Ordinal) + "'";

    private string Rep(RecipeModel m) => OutPath($"represent/{m.Name}");

    private string Aligned(RecipeModel s) => OutPath($"aligned/{s.Name}");

    private string MapPath(RecipeModel s) => OutPath($"maps/{s.Name}.json");

    /// <summary>The alignment of a source: the method, whether it is a copy, and which vocabulary map it needs.</summary>
    private (AlignmentMethod Method, bool Copy, VocabMapType? Map) AlignMethodFor(RecipeModel s)
    {
        string name = s.Align;
        if (name == "auto")
        {
            // Models the run builds have no tokenizer yet: they are aligned (give `align: copy` for a shared vocabulary).
            bool same = _recipe.Target.Build is null && s.Build is null && SameVocabulary(ModelPath(_recipe.Target), ModelPath(s));
            name = same ? "copy" : _recipe.Kind == FusionRecipeKind.FuseLlm ? "fusellm-soft" : "fusechat-mined";
        }
        return name switch
        {
            "copy" => (AlignmentMethod.FuseLlmSoft, true, null),
            "fusellm-soft" => (AlignmentMethod.FuseLlmSoft, false, VocabMapType.MinEd),
            "fusellm-hard" => (AlignmentMethod.FuseLlmHard, false, null),
            "fusechat-em" => (AlignmentMethod.FuseChatEm, false, null),
            "fusechat-mined" => (AlignmentMethod.FuseChatMinEd, false, VocabMapType.MinEd),
            "fusechat-ms" => (AlignmentMethod.FuseChatMs, false, VocabMapType.Ms),
            _ => throw new FusionException($"unknown alignment method '{name}' for source {s.Name}"),
        };
    }

    private static bool SameVocabulary(string a, string b)
    {
        var ta = FusionTokenizers.Load(a).GetVocab();
        var tb = FusionTokenizers.Load(b).GetVocab();
        return ta.Count == tb.Count && ta.All(kv => tb.TryGetValue(kv.Key, out int id) && id == kv.Value);
    }
}
