using System.Globalization;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Tokenizer;

/// <summary>
/// The output tokenizer and, when one is configured, the row alignment of every model's embeddings to it
/// (mergekit <c>BuildTokenizer</c> + <c>PermutedEmbeddings</c>, spec §1.3, §4.3). For an output token a model that
/// has it contributes its own row (unless the token's setting forces a source); otherwise the row comes from the
/// token's configured source, else the only model that has it, else zero (none has it), else the base, else the
/// mean of the models that have it. <c>pad_to_multiple_of</c> pads with each model's mean row.
/// Without a tokenizer setting the alignment is inactive and the donor's tokenizer is copied.
/// </summary>
public sealed class TokenizerAlignment
{
    private readonly Vocabulary? _output;
    private readonly IReadOnlyDictionary<int, int[]> _permutations; // model index -> output id -> model row (-1: absent)
    private readonly InputModel? _base;
    private readonly TokenizerDefinition? _definition;
    private readonly int _rows;

    private TokenizerAlignment(TokenizerOutput output, Vocabulary? vocabulary, IReadOnlyDictionary<int, int[]> permutations, InputModel? baseModel,
        TokenizerDefinition? definition, int rows)
    {
        Output = output;
        _output = vocabulary;
        _permutations = permutations;
        _base = baseModel;
        _definition = definition;
        _rows = rows;
    }

    public TokenizerOutput Output { get; }

    /// <summary>True when embeddings are re-indexed to an output vocabulary.</summary>
    public bool Active => _output is not null;

    /// <summary>
    /// Builds the output vocabulary (<see cref="OutputVocabulary"/>) and every model's row permutation to it, before any weight is read.
    /// </summary>
    /// <exception cref="MergeConfigException">A tokenizer that cannot be read.</exception>
    public static TokenizerAlignment Build(MergeConfiguration config, IReadOnlyList<InputModel> models, InputModel baseModel,
        MergeOptions options, List<string> warnings, Action<string>? log)
    {
        var def = config.Tokenizer;
        if (def is null)
        {
            var donor = baseModel;
            return new TokenizerAlignment(new TokenizerOutput
            {
                DonorFolder = options.CopyTokenizer ? donor.Path : null,
                Description = options.CopyTokenizer ? $"tokenizer copied from {donor.Name}" : "no tokenizer (--no-copy-tokenizer)",
            }, null, new Dictionary<int, int[]>(), null, null, 0);
        }
        var loc = def.Location;
        var vocabularies = new Dictionary<string, Vocabulary?>(StringComparer.Ordinal);
        Vocabulary? VocabularyOf(string folder)
        {
            if (!vocabularies.TryGetValue(folder, out var v)) vocabularies[folder] = v = Vocabulary.Read(folder);
            return v;
        }
        Vocabulary Required(string folder) => VocabularyOf(folder) ?? throw new MergeConfigException(loc.File, loc.Line,
            $"cannot read the tokenizer of {folder} (no tokenizer.json, tokenizer.model, vocab.json or .gguf there)", "give a model that has its tokenizer files");

        // The starting tokenizer: the base stripped of ids >= its vocab_size (padding ids without embeddings), or a named model's as it is.
        string donorFolder;
        Vocabulary start;
        int? strip = null;
        var baseVocab = Required(baseModel.Path);
        if (baseModel.Config?.VocabSize is int vs && baseVocab.Count > vs)
        {
            strip = vs;
            baseVocab = baseVocab.Below(vs);
        }
        if (def.IsUnion || def.IsBase)
        {
            donorFolder = baseModel.Path;
            start = baseVocab;
            if (strip is not null) warnings.Add($"base tokenizer has ids >= vocab_size {strip}; they are dropped from the output tokenizer");
        }
        else
        {
            var source = models.FirstOrDefault(m => m.Reference.SameModel(def.SourceModel!));
            donorFolder = source?.Path ?? ModelResolver.Resolve(def.SourceModel!, config.SourcePath);
            start = Required(donorFolder);
            strip = null;
        }
        var built = new OutputVocabulary(start);
        if (def.IsUnion)
        {
            var others = new List<(string, Vocabulary, int)> { (baseModel.Name, baseVocab, int.MaxValue) };
            foreach (var m in models.Where(m => m != baseModel))
            {
                if (VocabularyOf(m.Path) is { } mv) others.Add((m.Name, mv, m.Config?.VocabSize ?? mv.Count));
                else warnings.Add($"cannot read the tokenizer of {m.Name}; assuming it is the same as the base's");
            }
            built.AddUnion(others, warnings);
        }
        // mergekit passes the tokens listed under 'tokens:' to add_tokens: a token no tokenizer has gets a new id.
        foreach (var (token, _) in def.Tokens) built.Add(OutputVocabulary.Plain(token));
        var vocab = built.ToVocabulary();
        var rewritten = built.RewriteFiles(donorFolder, strip);
        if (built.NewTokens.Count > 0) log?.Invoke($"tokenizer: {built.NewTokens.Count} tokens added to {(def.IsUnion ? "the base" : "the source")} tokenizer");

        int count = vocab.Count;
        int rows = def.PadToMultipleOf is int p && p > 0 ? (count + p - 1) / p * p : count;
        var perms = new Dictionary<int, int[]>();
        foreach (var m in models)
        {
            var mv = m == baseModel ? baseVocab : VocabularyOf(m.Path) ?? baseVocab; // mergekit: an unreadable tokenizer is taken as the base's
            int limit = m.Config?.VocabSize ?? int.MaxValue;
            var perm = new int[count];
            Array.Fill(perm, -1);
            foreach (var (tok, id) in vocab.Tokens)
                if (mv.Tokens.TryGetValue(tok, out var mid) && mid < limit) perm[id] = mid;
            perms[m.Index] = perm;
            int missing = perm.Count(x => x < 0);
            if (missing > 0) log?.Invoke($"tokenizer: {m.Name} lacks {missing} of {count} output tokens");
        }
        var output = new TokenizerOutput
        {
            DonorFolder = options.CopyTokenizer ? donorFolder : null,
            Rewritten = rewritten,
            VocabSize = rows,
            Description = string.Create(CultureInfo.InvariantCulture, $"tokenizer from {(def.IsUnion ? "union" : def.IsBase ? "base" : def.SourceModel!.Text)} ({count} tokens{(rows != count ? $", padded to {rows}" : "")})"),
        };
        return new TokenizerAlignment(output, vocab, perms, baseModel, def, rows);
    }

    /// <summary>Views of every model's embedding re-indexed to the output vocabulary.</summary>
    public IReadOnlyList<TensorSource> Align(string name, IReadOnlyList<InputModel> models, IReadOnlyList<StoredTensorSource> stored, List<string> notes)
    {
        var vocab = _output!;
        long cols = stored[0].Shape[1];
        if (stored.Any(s => s.Shape[1] != cols))
            throw new MergeException($"embedding widths differ: {string.Join(", ", stored.Select(s => s.Describe + " " + s.Shape))}", name, "the models have different hidden sizes");
        int count = vocab.Count;
        var perms = models.Select(m => Clip(_permutations[m.Index], stored[models.ToList().IndexOf(m)].Shape[0])).ToList();
        var byToken = vocab.Tokens.ToDictionary(p => p.Value, p => p.Key);

        // Default rows for tokens some model lacks: one producer per token, shared by every model that lacks it.
        var defaults = new List<Func<float[]>>();
        var defaultOf = new Dictionary<int, int>();
        int Default(int id, Func<float[]> make)
        {
            if (!defaultOf.TryGetValue(id, out var k))
            {
                k = defaults.Count;
                defaults.Add(make);
                defaultOf[id] = k;
            }
            return k;
        }
        float[] Row(int model, int row)
        {
            var r = new float[cols];
            stored[model].Read(row * stored[model].Shape[1], r);
            return r;
        }
        int baseIdx = _base is null ? -1 : models.ToList().IndexOf(_base);
        int zeros = 0;
        var maps = new int[models.Count][];
        for (int i = 0; i < models.Count; i++) maps[i] = new int[_rows];
        for (int id = 0; id < count; id++)
        {
            TokenEmbeddingSettings? setting = null;
            if (byToken.TryGetValue(id, out var tok)) _definition!.Tokens.TryGetValue(tok, out setting);
            var present = Enumerable.Range(0, models.Count).Where(i => perms[i][id] >= 0).ToList();
            int? defaultRow = null;
            for (int i = 0; i < models.Count; i++)
            {
                if (perms[i][id] >= 0 && setting?.Force != true)
                {
                    maps[i][id] = perms[i][id];
                    continue;
                }
                defaultRow ??= Default(id, DefaultProducer(id, setting, present, perms, baseIdx, models, Row, ref zeros, name, tok));
                maps[i][id] = -1 - defaultRow.Value;
            }
        }
        // pad_to_multiple_of rows: each model's own mean row.
        var views = new List<TensorSource>();
        for (int i = 0; i < models.Count; i++)
        {
            var mine = new List<Func<float[]>>(defaults);
            if (_rows > count)
            {
                var s = stored[i];
                mine.Add(() => RowMappedSource.MeanRow(s, cols));
                for (int r = count; r < _rows; r++) maps[i][r] = -mine.Count;
            }
            views.Add(new RowMappedSource(stored[i], _rows, cols, maps[i], mine, "aligned to the output tokenizer"));
        }
        if (zeros > 0) notes.Add($"{name}: {zeros} output tokens are in no model; their rows are zero");
        if (defaults.Count > 0) notes.Add($"{name}: {defaults.Count} tokens missing from some models get a substitute row");
        return views;
    }

    private Func<float[]> DefaultProducer(int id, TokenEmbeddingSettings? setting, List<int> present, List<int[]> perms, int baseIdx,
        IReadOnlyList<InputModel> models, Func<int, int, float[]> row, ref int zeros, string name, string? token)
    {
        switch (setting?.Source)
        {
            case ZeroEmbeddingSource:
                return () => new float[row(0, 0).Length];
            case ModelEmbeddingSource ms:
            {
                int i = IndexOf(models, ms.Model, name);
                if (perms[i][id] < 0) throw new MergeException($"token '{token}' is not in {ms.Model.Text}, its configured source", name);
                int r = perms[i][id];
                return () => row(i, r);
            }
            case ModelTokenEmbeddingSource mt:
            {
                int i = IndexOf(models, mt.Model, name);
                int r = mt.TokenId ?? (Vocabulary.Read(models[i].Path)?.Tokens.TryGetValue(mt.Token!, out var tid) == true ? tid
                    : throw new MergeException($"token '{mt.Token}' not found in {mt.Model.Text}", name));
                return () => row(i, r);
            }
        }
        if (present.Count == 1)
        {
            int i = present[0], r = perms[i][id];
            return () => row(i, r);
        }
        if (present.Count == 0)
        {
            zeros++;
            return () => new float[row(0, 0).Length];
        }
        if (baseIdx >= 0 && perms[baseIdx][id] >= 0)
        {
            int r = perms[baseIdx][id];
            return () => row(baseIdx, r);
        }
        var donors = present.Select(i => (i, perms[i][id])).ToList();
        return () =>
        {
            var sum = new double[row(donors[0].i, donors[0].Item2).Length];
            foreach (var (i, r) in donors)
            {
                var v = row(i, r);
                for (int c = 0; c < v.Length; c++) sum[c] += v[c];
            }
            return sum.Select(x => (float)(x / donors.Count)).ToArray();
        };
    }

    private static int IndexOf(IReadOnlyList<InputModel> models, ModelReference r, string name)
    {
        for (int i = 0; i < models.Count; i++)
            if (models[i].Reference.SameModel(r)) return i;
        throw new MergeException($"token source {r.Text} is not one of the models merged into this tensor", name);
    }

    /// <summary>A permutation limited to the rows the model's embedding actually has.</summary>
    private static int[] Clip(int[] perm, long rows) => perm.Select(r => r < rows ? r : -1).ToArray();
}
