using System.Globalization;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Methods;
using FuseSharp.Merging.Tokenizer;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Planning;

/// <summary>
/// Builds a <see cref="MergePlan"/> from a config: resolves and opens every model (headers only), checks
/// architectures, turns <c>models:</c> into one slice, lays out the output tensors (pre-layer tensors from the first
/// slice's sources, renumbered layers, post-layer tensors from the last slice's), finds each input tensor (with
/// tied LM heads), reconciles embedding shapes, resolves every parameter for every tensor and lets the method
/// validate it: everything that can be wrong is found before a single weight is read (STYLE.md §2).
/// </summary>
public static class MergePlanner
{
    private sealed record PlanSlice(OutputSliceDefinition Definition, IReadOnlyList<(InputModel Model, SliceSourceDefinition Source)> Sources, InputModel? Base);

    /// <exception cref="MergeConfigException">The config cannot run (with file and line).</exception>
    /// <exception cref="MergeException">A tensor is missing, shapes differ, a method rejects its inputs.</exception>
    public static MergePlan Plan(MergeConfiguration config, MergeOptions options, Action<string>? log = null, CancellationToken ct = default)
    {
        if (!MergeMethodRegistry.TryGet(config.MergeMethod, out var method))
        {
            var close = MergeMethodRegistry.Names.MinBy(n => MergeConfigParser.Distance(n, config.MergeMethod))!;
            throw new MergeConfigException(config.SourcePath, config.MergeMethodLocation.Line, $"unknown merge_method '{config.MergeMethod}'",
                MergeConfigParser.Distance(close, config.MergeMethod) <= 3 ? $"did you mean '{close}'?" : $"available: {string.Join(", ", MergeMethodRegistry.Names)}");
        }
        var resolver = new ParameterResolver(method, config);
        var warnings = new List<string>(resolver.CheckNames());
        if (config.Slices?.Any(s => s.ResidualWeight is not null) == true) warnings.Add("residual_weight is parsed but unused (as in mergekit)");

        var models = new List<InputModel>();
        try
        {
            var refs = config.ReferencedModels();
            for (int i = 0; i < refs.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                var path = ModelResolver.Resolve(refs[i], config.SourcePath);
                log?.Invoke($"model [{i}] {refs[i].Text}: {path}");
                models.Add(InputModel.Open(i, refs[i], path));
            }
            return Build(config, options, method, resolver, models, warnings, log, ct);
        }
        catch
        {
            foreach (var m in models) m.Dispose();
            throw;
        }
    }

    private static MergePlan Build(MergeConfiguration config, MergeOptions options, IMergeMethod method, ParameterResolver resolver,
        List<InputModel> models, List<string> warnings, Action<string>? log, CancellationToken ct)
    {
        InputModel ModelOf(ModelReference r) => models.First(m => m.Reference.SameModel(r));
        CheckArchitectures(models, options.AllowCrimes, warnings);
        var slices = Normalize(config, models, ModelOf);
        var baseModel = config.BaseModel is null ? null : ModelOf(config.BaseModel);
        var donor = baseModel ?? slices[0].Sources[0].Model;

        // LM-Cocktail weights from data, computed once before any parameter is resolved.
        Dictionary<int, IReadOnlyDictionary<string, double>>? overrides = null;
        IReadOnlyList<double>? dataWeights = null;
        if (method is LmCocktail && config.Parameters.TryGet("example_data", out var ex) && ex.Evaluate("", 0) is { } exPath)
        {
            var inputs = slices[0].Sources.Select(s => s.Model).Distinct().ToList();
            double T = config.Parameters.TryGet("temperature", out var ts) && ts.Evaluate("", 0) is { Kind: ParameterKind.Number } tv ? tv.NumberValue : 5.0;
            int maxLen = config.Parameters.TryGet("max_input_length", out var ml) && ml.Evaluate("", 0) is { Kind: ParameterKind.Number } mv ? (int)mv.NumberValue : 2048;
            int batch = config.Parameters.TryGet("batch_size", out var bs) && bs.Evaluate("", 0) is { Kind: ParameterKind.Number } bv ? (int)bv.NumberValue : 2;
            var examplePath = exPath.ToString();
            if (!File.Exists(examplePath) && config.SourcePath is not null && !Path.IsPathRooted(examplePath))
                examplePath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(config.SourcePath))!, examplePath);
            var w = LmCocktail.WeightsFromData(options.ExampleLossScorer, inputs.Select(m => m.Path).ToList(), examplePath, T, maxLen, batch, log, ct);
            dataWeights = w;
            overrides = inputs.Select((m, i) => (m.Index, w[i])).ToDictionary(p => p.Index, p => (IReadOnlyDictionary<string, double>)new Dictionary<string, double> { ["weight"] = p.Item2 });
        }

        var tokenizer = TokenizerAlignment.Build(config, models, baseModel ?? donor, options, warnings, log);
        var tasks = new List<TensorTask>();
        var context = new TaskBuilder(config, options, method, resolver, overrides, tokenizer, warnings);

        // Pre-layer tensors from the first slice's sources, t = 0.
        foreach (var name in UnionNames(slices[0].Sources.Select(s => s.Model.PreLayer)))
            tasks.Add(context.Build(name, TensorRole.Pre, -1, 0, slices[0], slices[0].Sources.Select(s => (s.Model, s.Source, name)).ToList()));
        int outLayer = 0;
        foreach (var slice in slices)
        {
            int length = slice.Sources[0].Source.LayerCount;
            for (int j = 0; j < length; j++, outLayer++)
            {
                ct.ThrowIfCancellationRequested();
                double t = length > 1 ? (double)j / (length - 1) : 1;
                var perSource = slice.Sources.Select(s => (s.Model, s.Source, Tensors: s.Model.Layer(s.Source.LayerStart + j))).ToList();
                // Output tensors: the first source's layer tensors, then any others only some sources have (they fail as missing below).
                var suffixes = new List<string>();
                foreach (var ps in perSource)
                    foreach (var (_, layer) in ps.Tensors)
                        if (!suffixes.Contains(layer.Prefix + "\u0000" + layer.Suffix)) suffixes.Add(layer.Prefix + "\u0000" + layer.Suffix);
                foreach (var key in suffixes)
                {
                    var parts = key.Split('\u0000');
                    var outName = $"{parts[0]}{outLayer}{parts[1]}";
                    var inputs = perSource.Select(ps => (ps.Model, ps.Source, $"{parts[0]}{ps.Source.LayerStart + j}{parts[1]}")).ToList();
                    tasks.Add(context.Build(outName, TensorRole.Layer, outLayer, t, slice, inputs));
                }
            }
        }
        foreach (var name in UnionNames(slices[^1].Sources.Select(s => s.Model.PostLayer)))
            tasks.Add(context.Build(name, TensorRole.Post, -1, 0, slices[^1], slices[^1].Sources.Select(s => (s.Model, s.Source, name)).ToList()));
        if (tasks.Count == 0) throw new MergeException("the merge produces no tensors", null, "check the layer ranges and that the models hold weights");
        var dup = tasks.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new MergeException("two output tensors get the same name", dup.Key, "check the slices' layer ranges");

        var outputConfig = OutputConfig(donor, tasks, outLayer, config, tokenizer.Output, warnings);
        string? chatTemplate = null;
        if (config.ChatTemplate is { } ctSetting)
        {
            chatTemplate = ChatTemplates.Resolve(ctSetting, models.Select(m => TryChatTemplate(m.Path)));
            if (chatTemplate is null) warnings.Add("chat_template: auto found no template in the input models; keeping the donor's tokenizer config");
        }
        return new MergePlan
        {
            Config = config,
            Method = method,
            Models = models,
            Tasks = tasks,
            OutputConfig = outputConfig,
            Donor = donor,
            Tokenizer = tokenizer.Output,
            ChatTemplate = chatTemplate,
            OutputLayers = outLayer,
            Options = options,
            Warnings = warnings,
            DataWeights = dataWeights,
        };
    }

    private static string? TryChatTemplate(string folder)
    {
        try
        {
            return FuseSharp.Tokenization.TokenizerConfig.Exists(folder) ? FuseSharp.Tokenization.TokenizerConfig.Load(folder).ChatTemplate : null;
        }
        catch (FuseSharpException)
        {
            return null;
        }
    }

    private static List<string> UnionNames(IEnumerable<IEnumerable<string>> lists)
    {
        var result = new List<string>();
        foreach (var l in lists)
            foreach (var n in l)
                if (!result.Contains(n)) result.Add(n);
        return result;
    }

    private static void CheckArchitectures(List<InputModel> models, bool allowCrimes, List<string> warnings)
    {
        var first = models[0];
        string Arch(InputModel m) => string.Join(",", m.Config?.Architectures ?? []) is { Length: > 0 } a ? a : m.Config?.ModelType ?? "?";
        foreach (var m in models.Skip(1))
        {
            if (Arch(m) == Arch(first) && m.Config?.ModelType == first.Config?.ModelType) continue;
            var problem = $"models have different architectures: {first.Name} is {Arch(first)} ({first.Config?.ModelType}), {m.Name} is {Arch(m)} ({m.Config?.ModelType})";
            if (!allowCrimes) throw new MergeException(problem, null, "merging different architectures rarely works; pass --allow-crimes to try anyway");
            warnings.Add(problem + " (--allow-crimes)");
        }
    }

    /// <summary>mergekit's normalize_config: <c>models:</c> becomes one slice over all layers (the base appended when not listed).</summary>
    private static List<PlanSlice> Normalize(MergeConfiguration config, List<InputModel> models, Func<ModelReference, InputModel> modelOf)
    {
        var result = new List<PlanSlice>();
        if (config.Models is { } list)
        {
            var sources = new List<(InputModel, SliceSourceDefinition)>();
            foreach (var m in list)
            {
                var model = modelOf(m.Model);
                sources.Add((model, new SliceSourceDefinition(m.Model, 0, model.LayerCount, m.Parameters, m.Location)));
            }
            if (config.BaseModel is { } b && !list.Any(m => m.Model.SameModel(b)))
            {
                var model = modelOf(b);
                sources.Add((model, new SliceSourceDefinition(b, 0, model.LayerCount, ParameterSet.Empty, b.Location)));
            }
            var counts = sources.Select(s => s.Item1.LayerCount).Distinct().ToList();
            if (counts.Count > 1)
                throw new MergeConfigException(config.SourcePath, 0,
                    $"the models have different numbers of layers ({string.Join(", ", sources.Select(s => $"{s.Item1.Name}: {s.Item1.LayerCount}"))})",
                    "merge them with 'slices' and explicit layer_range entries of equal length");
            var def = new OutputSliceDefinition(sources.Select(s => s.Item2).ToList(), null, ParameterSet.Empty, null, default);
            result.Add(new PlanSlice(def, sources, config.BaseModel is null ? null : modelOf(config.BaseModel)));
            return result;
        }
        int k = 0;
        foreach (var s in config.Slices!)
        {
            k++;
            var sources = new List<(InputModel, SliceSourceDefinition)>();
            foreach (var src in s.Sources)
            {
                var model = modelOf(src.Model);
                if (src.LayerEnd > model.LayerCount)
                    throw new MergeConfigException(src.Location.File, src.Location.Line,
                        $"layer_range [{src.LayerStart}, {src.LayerEnd}] of {model.Name} goes past its {model.LayerCount} layers",
                        $"use an end of at most {model.LayerCount} (end is exclusive)");
                sources.Add((model, src));
            }
            var lengths = s.Sources.Select(x => x.LayerCount).Distinct().ToList();
            if (lengths.Count > 1)
                throw new MergeConfigException(s.Location.File, s.Location.Line,
                    $"slice {k}: all sources must span the same number of layers, got {string.Join(", ", s.Sources.Select(x => $"{x.Model.Text}: {x.LayerCount}"))}",
                    "make the layer ranges of one slice equally long");
            var baseRef = s.BaseModel ?? config.BaseModel;
            result.Add(new PlanSlice(s, sources, baseRef is null ? null : modelOf(baseRef)));
        }
        return result;
    }

    private static JsonObject OutputConfig(InputModel donor, List<TensorTask> tasks, int layers, MergeConfiguration config, TokenizerOutput tokenizer, List<string> warnings)
    {
        var cfg = (JsonObject)(donor.Config?.Raw.DeepClone() ?? new JsonObject());
        foreach (var key in new[] { "num_hidden_layers", "n_layer", "n_layers", "num_layers" })
            if (cfg.ContainsKey(key)) cfg[key] = layers;
        if (!cfg.ContainsKey("num_hidden_layers") && !cfg.ContainsKey("n_layer") && !cfg.ContainsKey("n_layers") && !cfg.ContainsKey("num_layers"))
            cfg["num_hidden_layers"] = layers;
        var dtypes = tasks.Where(t => !t.CopyOnly).Select(t => t.OutputDType).Distinct().ToList();
        var dtype = config.OutDType ?? config.DType ?? (dtypes.Count == 1 ? dtypes[0] : (DType?)null);
        if (dtype is { } d)
        {
            cfg["torch_dtype"] = d.TorchName();
            if (cfg.ContainsKey("dtype")) cfg["dtype"] = d.TorchName();
        }
        var embed = tasks.FirstOrDefault(t => t.IsInputEmbedding) ?? tasks.FirstOrDefault(t => t.IsEmbedding);
        int? vocab = tokenizer.VocabSize ?? (embed is null ? null : (int)embed.Shape[0]);
        if (vocab is { } v)
        {
            var key = cfg.ContainsKey("padded_vocab_size") && !cfg.ContainsKey("vocab_size") ? "padded_vocab_size" : "vocab_size";
            if (cfg[key] is JsonValue old && old.TryGetValue<int>(out var o) && o != v) warnings.Add($"config {key} {o} -> {v} (rows of the merged embeddings)");
            cfg[key] = v;
        }
        bool hasHead = tasks.Any(t => TensorNames.IsOutputEmbedding(t.Name));
        if (hasHead && cfg["tie_word_embeddings"] is JsonValue tie && tie.TryGetValue<bool>(out var tied) && tied)
        {
            cfg["tie_word_embeddings"] = false;
            warnings.Add("an input has a separate LM head, so the output has one: tie_word_embeddings set to false");
        }
        return cfg;
    }

    /// <summary>Builds one <see cref="TensorTask"/>: inputs, views, parameters, validation.</summary>
    private sealed class TaskBuilder(MergeConfiguration config, MergeOptions options, IMergeMethod method, ParameterResolver resolver,
        Dictionary<int, IReadOnlyDictionary<string, double>>? overrides, TokenizerAlignment tokenizer, List<string> warnings)
    {
        public TensorTask Build(string outName, TensorRole role, int layer, double t, PlanSlice slice,
            IReadOnlyList<(InputModel Model, SliceSourceDefinition Source, string InputName)> sources)
        {
            var notes = new List<string>();
            var stored = new List<StoredTensorSource>();
            foreach (var (model, _, inputName) in sources) stored.Add(Find(model, inputName, outName, notes));

            bool isEmbed = TensorNames.IsEmbedding(outName) && stored.All(s => s.Shape.Rank == 2);
            var dtypes = stored.Select(s => s.DType).Distinct().ToList();
            if (dtypes.Any(d => d is DType.F8E4M3 or DType.F8E5M2))
                throw new MergeException($"FP8 weights ({string.Join(", ", dtypes)}) cannot be merged without their scales", outName, "merge the unquantized (BF16/F16/F32) checkpoints");
            bool allFloat = dtypes.All(d => d.IsFloat()), anyFloat = dtypes.Any(d => d.IsFloat());
            if (anyFloat && !allFloat)
                throw new MergeException($"dtype mix: {string.Join(", ", sources.Select((s, i) => $"{s.Model.Name} {stored[i].DType.SafetensorsName()}"))}", outName,
                    "the same tensor is a float in some models and an integer in others; the checkpoints do not match");

            // Base detection: the slice's base among its sources (methods with a base role).
            int baseIndex = -1;
            if (method.BasePolicy != BaseModelPolicy.Input && slice.Base is { } b)
            {
                baseIndex = sources.ToList().FindIndex(s => s.Model == b);
                if (baseIndex < 0)
                    throw new MergeConfigException(config.SourcePath, slice.Definition.Location.Line,
                        $"base model {b.Name} is not among the sources of the slice that produces '{outName}'",
                        "add the base model to the slice's sources with the same layer_range length");
            }

            // Shapes: equal, except embeddings (method policy or tokenizer alignment).
            IReadOnlyList<TensorSource> views = stored;
            if (isEmbed && (tokenizer.Active || stored.Select(s => s.Shape).Distinct().Count() > 1))
                views = tokenizer.Active
                    ? tokenizer.Align(outName, sources.Select(s => s.Model).ToList(), stored, notes)
                    : EmbeddingShapes.Reconcile(outName, method.EmbeddingPolicy, sources.Select(s => s.Model.Name).ToList(), stored, baseIndex, notes);
            else if (stored.Select(s => s.Shape).Distinct().Count() > 1)
                throw new MergeException(
                    $"shape mismatch: {string.Join(", ", sources.Select((s, i) => $"{s.Model.Name} {stored[i].Shape}"))}", outName,
                    "the models have different sizes (hidden/intermediate size); only models of the same shape can be merged");

            var outDType = allFloat ? config.OutDType ?? config.DType ?? stored[baseIndex >= 0 ? baseIndex : 0].DType : stored[0].DType;
            if (!allFloat)
            {
                var copyFrom = baseIndex >= 0 ? baseIndex : 0;
                var only = new TaskInput(sources[copyFrom].Model.Index, sources[copyFrom].Model.Name, sources[copyFrom].InputName, views[copyFrom], ParameterValues.Empty);
                notes.Add($"{stored[0].DType.SafetensorsName()} tensor copied from {only.ModelName}");
                return new TensorTask
                {
                    Name = outName, Shape = views[copyFrom].Shape, OutputDType = outDType, Inputs = [only], Parameters = ParameterValues.Empty,
                    Role = role, Layer = layer, T = t, CopyOnly = true, Notes = notes,
                };
            }

            var global = resolver.Global(slice.Definition, outName, t);
            var inputs = new List<TaskInput>();
            TaskInput? baseInput = null;
            for (int i = 0; i < sources.Count; i++)
            {
                var (model, src, inputName) = sources[i];
                bool isBase = i == baseIndex;
                ParameterValues p;
                if (isBase) p = ParameterValues.Empty;
                else
                {
                    IReadOnlyDictionary<string, double>? ov = null;
                    overrides?.TryGetValue(model.Index, out ov);
                    try
                    {
                        p = resolver.PerModel(slice.Definition, src.Parameters, model.Name, inputName, t, ov);
                    }
                    catch (MergeConfigException e) when (method.BasePolicy == BaseModelPolicy.Input && slice.Base == model)
                    {
                        throw new MergeConfigException(e.FilePath, e.Line, e.Message.Split(": ", 2).Last(),
                            $"{method.Name} merges base_model like any other model: give it parameters, or remove base_model");
                    }
                }
                var input = new TaskInput(model.Index, model.Name, inputName, views[i], p);
                if (isBase) baseInput = input;
                else inputs.Add(input);
            }
            var task = new TensorTask
            {
                Name = outName,
                Shape = views[0].Shape,
                OutputDType = outDType,
                Inputs = inputs,
                Base = baseInput,
                Parameters = global,
                Role = role,
                Layer = layer,
                T = t,
                IsEmbedding = isEmbed,
                IsInputEmbedding = isEmbed && TensorNames.IsInputEmbedding(outName),
                Notes = notes,
            };
            method.Validate(task);
            foreach (var n in notes) if (!warnings.Contains(n)) warnings.Add(n);
            _ = options;
            return task;
        }

        /// <summary>The stored tensor, or the tied input embedding for a missing LM head.</summary>
        private static StoredTensorSource Find(InputModel model, string name, string outName, List<string> notes)
        {
            if (model.Weights.TryGetEntry(name, out var entry)) return new StoredTensorSource(model.Weights, entry, model.Name);
            if (TensorNames.IsOutputEmbedding(name))
            {
                var tied = model.PreLayer.FirstOrDefault(TensorNames.IsInputEmbedding);
                if (tied is not null && model.Weights.TryGetEntry(tied, out var te))
                {
                    notes.Add($"{model.Name} has no {name}; its tied input embedding {tied} is used");
                    return new StoredTensorSource(model.Weights, te, model.Name);
                }
            }
            var similar = model.Weights.Tensors.Select(t => t.Name).OrderBy(n => MergeConfigParser.Distance(n, name)).Take(2).ToList();
            throw new MergeException($"absent in model {model.Name} ({model.Path})", outName,
                $"every merged model needs this tensor; closest names there: {string.Join(", ", similar)}. The models may be of different architectures");
        }
    }
}

/// <summary>Brings embedding matrices of different sizes to one shape by the method's policy (spec §1.3, §2.14.6).</summary>
internal static class EmbeddingShapes
{
    public static IReadOnlyList<TensorSource> Reconcile(string name, EmbeddingShapePolicy policy, IReadOnlyList<string> modelNames,
        IReadOnlyList<StoredTensorSource> stored, int baseIndex, List<string> notes)
    {
        var shapes = stored.Select(s => (Rows: s.Shape[0], Cols: s.Shape[1])).ToList();
        string Describe() => string.Join(", ", modelNames.Select((m, i) => $"{m} [{shapes[i].Rows}, {shapes[i].Cols}]"));
        switch (policy)
        {
            case EmbeddingShapePolicy.CutToBase when baseIndex >= 0:
            {
                var (rows, cols) = shapes[baseIndex];
                for (int i = 0; i < stored.Count; i++)
                    if (shapes[i].Rows < rows || shapes[i].Cols < cols)
                        throw new MergeException($"embedding smaller than the base's: {Describe()}", name,
                            "set 'tokenizer_source: base' (or a model) so the embeddings are aligned by token");
                notes.Add($"{name}: embeddings cut to the base's shape [{rows}, {cols}] ({Describe()})");
                return Cut(stored, rows, cols);
            }
            case EmbeddingShapePolicy.PadToLargestWithMean:
            {
                long rows = shapes.Max(s => s.Rows), cols = shapes[0].Cols;
                if (shapes.Any(s => s.Cols != cols))
                    throw new MergeException($"embedding widths differ: {Describe()}", name, "the models have different hidden sizes");
                notes.Add($"{name}: embeddings padded to {rows} rows with each model's mean row ({Describe()})");
                return stored.Select(s => s.Shape[0] == rows ? (TensorSource)s : new RowMappedSource(s, rows, cols,
                    Enumerable.Range(0, (int)rows).Select(r => r < s.Shape[0] ? r : -1).ToArray(),
                    [() => RowMappedSource.MeanRow(s, cols)], $"padded to {rows} rows with the mean row")).ToList();
            }
            default:
            {
                long rows = shapes.Min(s => s.Rows), cols = shapes.Min(s => s.Cols);
                notes.Add($"{name}: embeddings cut to the common sub-matrix [{rows}, {cols}] ({Describe()})");
                return Cut(stored, rows, cols);
            }
        }
    }

    private static List<TensorSource> Cut(IReadOnlyList<StoredTensorSource> stored, long rows, long cols) =>
        stored.Select(s => s.Shape[0] == rows && s.Shape[1] == cols
            ? (TensorSource)s
            : new RowMappedSource(s, rows, cols, null, null, string.Create(CultureInfo.InvariantCulture, $"[:{rows}, :{cols}] of {s.Shape}"))).ToList();
}
