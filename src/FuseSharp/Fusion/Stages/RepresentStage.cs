using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Report;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Text;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tokenization;

namespace FuseSharp.Fusion.Stages;

/// <summary>Options of <see cref="RepresentStage"/>.</summary>
public sealed record RepresentOptions
{
    public CorpusFormat Format { get; init; } = CorpusFormat.Text;

    /// <summary>The JSON field holding the text (text corpora).</summary>
    public string TextField { get; init; } = "text";

    /// <summary>Top-k logits kept per position (10 in FuseLLM / FuseChat).</summary>
    public int K { get; init; } = 10;

    /// <summary>Longest sequence; longer ones are truncated (and counted: `split` should have prevented it).</summary>
    public int MaxLength { get; init; } = 2048;

    /// <summary>
    /// How the engine batches (<see cref="RepresentStage.RunModel"/>): padded tokens and sequences per forward. The stage hands the
    /// scorer one part (<see cref="RowsPerPart"/> rows) at a time, which it sorts by length and packs.
    /// </summary>
    public ScoringOptions Scoring { get; init; } = new() { MaxTokensPerBatch = 16384 };

    /// <summary><see cref="RepresentStage.RunModel"/>: the tokenizer (file or folder); null = the model folder's own.</summary>
    public string? Tokenizer { get; init; }

    /// <summary>Text corpora: append the EOS token (FuseLLM appends its text, which the tokenizer turns into the EOS id). Default on.</summary>
    public bool AppendEos { get; init; } = true;

    /// <summary>Chat corpora: the conversation template.</summary>
    public ChatFormat Chat { get; init; } = new();

    public int RowsPerPart { get; init; } = 256;

    public ColumnCodecKind Codec { get; init; } = ColumnCodecKind.ShuffleZlib;

    public ShardSpec Shard { get; init; } = ShardSpec.All;

    public bool Overwrite { get; init; }
}

/// <summary>
/// <c>fuse represent</c> (FuseLLM <c>forward_for_logits.py</c>, FuseChat <c>get_data_representation.py</c>; spec §2):
/// tokenizes every corpus row with the model's own tokenizer, scores it, and stores per real position the top-k ids
/// and logits (float16) and the next-token CE, plus the row's <c>metric_ce</c>: the mean CE over the positions whose
/// next token is supervised (every position but the last for text; response tokens for chat; NaN when there is none).
/// Only this shard's rows are processed; finished parts are kept, so a killed run resumes.
/// </summary>
public static class RepresentStage
{
    /// <summary>
    /// Represents <paramref name="corpus"/> with the model in <paramref name="modelFolder"/> (config.json + safetensors,
    /// run by the CPU engine) and its own tokenizer (or <see cref="RepresentOptions.Tokenizer"/>), writing the
    /// representation store <paramref name="outFolder"/>. The store's provenance holds content fingerprints of the
    /// model and tokenizer (no paths), so shards written on different machines combine and a rerun resumes.
    /// The report is returned, not written (<see cref="StageReport.Write"/>).
    /// </summary>
    /// <exception cref="FuseSharpException">The model, tokenizer or corpus is unusable, or the store belongs to another configuration.</exception>
    public static StageReport RunModel(string modelFolder, string corpus, string outFolder, RepresentOptions options,
        IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(modelFolder);
        ArgumentNullException.ThrowIfNull(options);
        var tokenizerPath = options.Tokenizer ?? modelFolder;
        var tokenizer = TokenizerLoader.Load(tokenizerPath);
        using var scorer = ModelTopKScorer.Load(modelFolder, options.Scoring);
        var info = new JsonObject
        {
            ["model_type"] = scorer.Model.Architecture.ModelType,
            ["fingerprint"] = scorer.Fingerprint,
            ["tokenizer_sha256"] = TokenizerFingerprint(tokenizerPath),
        };
        return Run(corpus, tokenizer, scorer, outFolder, options, info, progress, cancel);
    }

    /// <summary>SHA-256 over the tokenizer's files (a file, or the tokenizer files of a folder in a fixed order, with their names).</summary>
    private static string TokenizerFingerprint(string path)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var files = Directory.Exists(path) ? ModelFolder.TokenizerFileNames.Select(n => Path.Combine(path, n)).Where(File.Exists) : [path];
        foreach (var f in files)
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetFileName(f) + "\n"));
            sha.AppendData(File.ReadAllBytes(f));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    public static StageReport Run(string corpus, ITokenizer tokenizer, ITopKScorer scorer, string outFolder, RepresentOptions options,
        JsonObject? modelInfo = null, IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(options);
        progress ??= NullProgress.Instance;
        if (options.K <= 0 || options.K > scorer.VocabSize) throw new FusionException($"k = {options.K} must be in 1..{scorer.VocabSize} (the model's vocabulary)");
        if (options.MaxLength <= 1) throw new FusionException($"--max-length {options.MaxLength} is too small");
        int maxLength = Math.Min(options.MaxLength, scorer.MaxSequenceLength);
        string? eos = tokenizer.EosTokenId is int e ? tokenizer.IdToToken(e) : null;
        if (options.Format == CorpusFormat.Text && options.AppendEos && eos is null)
            throw new FusionException("the tokenizer has no EOS token to append", "pass --no-eos to represent the texts as they are");

        // Pass 1: row hashes (the corpus identity every later stage checks).
        var hashes = new List<long>();
        using (var t = progress.Start("hashing the corpus", 0))
        {
            foreach (var r in FusionCorpus.Read(corpus, options.Format, options.TextField))
            {
                cancel.ThrowIfCancellationRequested();
                hashes.Add(r.Hash());
                t.Advance();
            }
        }
        if (hashes.Count == 0) throw new FusionException($"{corpus}: the corpus is empty");
        var info = new JsonObject
        {
            ["stage"] = "represent",
            ["model"] = modelInfo?.DeepClone() ?? new JsonObject { ["fingerprint"] = scorer.Fingerprint },
            ["tokenizer"] = new JsonObject { ["vocab_size"] = tokenizer.VocabSize, ["marker"] = tokenizer.WhitespaceMarker, ["eos"] = eos, ["bos"] = tokenizer.BosTokenId is int b ? tokenizer.IdToToken(b) : null },
            ["format"] = options.Format.ToString(),
            ["max_length"] = maxLength,
            ["append_eos"] = options.Format == CorpusFormat.Text ? options.AppendEos : null,
            ["chat"] = options.Format == CorpusFormat.Chat ? new JsonObject { ["user"] = options.Chat.UserPrefix, ["assistant"] = options.Chat.AssistantPrefix, ["separator"] = options.Chat.Separator ?? eos } : null,
        };
        var manifest = new StoreManifest
        {
            Kind = "representation",
            Rows = hashes.Count,
            CorpusSha256 = StoreManifest.HashCorpus(hashes),
            Shards = options.Shard.Count,
            RowsPerPart = options.RowsPerPart,
            Codec = options.Codec,
            K = options.K,
            HasLabels = true,
            HasTokenCe = true,
            Metrics = ["metric_ce"],
            Info = info,
        };
        var writer = StoreWriter.Open(outFolder, manifest, options.Shard, options.Overwrite);
        var report = new StageReport("represent");
        var pending = writer.Pending;
        report.Set("rows", hashes.Count);
        report.Set("shard", options.Shard.ToString());
        report.Set("parts_already_done", writer.Parts.Count - pending.Count);
        if (pending.Count == 0) return report;

        // Pass 2: this shard's pending rows, in order.
        using var task = progress.Start($"represent (k = {options.K})", pending.Sum(p => (long)p.Rows));
        using var records = FusionCorpus.Read(corpus, options.Format, options.TextField).GetEnumerator();
        long next = 0;
        long truncated = 0, tokens = 0, noSupervised = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (var part in pending)
        {
            var recs = new List<CorpusRecord>(part.Rows);
            while (next < part.FirstRow + part.Rows)
            {
                if (!records.MoveNext()) throw new FusionException($"{corpus}: the corpus changed while it was being read");
                if (next >= part.FirstRow) recs.Add(records.Current);
                next++;
            }
            var seqs = new (int[] Ids, int[] Labels)[recs.Count];
            FusionParallel.ForEach(Enumerable.Range(0, recs.Count), i => seqs[i] = Tokenize(recs[i], tokenizer, options), cancel);
            var rows = new StoreRow[recs.Count];
            for (int i = 0; i < seqs.Length; i++)
            {
                if (seqs[i].Ids.Length == 0)
                    throw new FusionException($"{corpus}:{recs[i].Line}: the row tokenizes to nothing", "remove empty rows from the corpus");
                if (seqs[i].Ids.Length > maxLength)
                {
                    truncated++;
                    seqs[i] = (seqs[i].Ids[..maxLength], seqs[i].Labels[..maxLength]);
                }
                foreach (int id in seqs[i].Ids)
                {
                    if ((uint)id >= (uint)scorer.VocabSize)
                        throw new FusionException($"{corpus}:{recs[i].Line}: token id {id} is outside the model's {scorer.VocabSize} logits", "the tokenizer does not belong to this model");
                }
            }
            var scored = scorer.Score(seqs.Select(q => q.Ids).ToList(), options.K, task, cancel);
            if (scored.Count != seqs.Length) throw new InvalidOperationException($"the scorer returned {scored.Count} results for {seqs.Length} sequences");
            for (int i = 0; i < seqs.Length; i++)
            {
                var (ids, labels) = seqs[i];
                var s = scored[i];
                if (s.Length != ids.Length || s.TopKIds.Length != ids.Length * options.K)
                    throw new InvalidOperationException($"the scorer returned {s.Length} positions x {s.TopKIds.Length / Math.Max(1, s.Length)} for {ids.Length} tokens at k = {options.K}");
                var ce = new float[ids.Length];
                double sum = 0;
                int count = 0;
                for (int t = 0; t < ids.Length; t++)
                {
                    bool supervised = t + 1 < ids.Length && labels[t + 1] != -100;
                    ce[t] = supervised ? (float)(Half)s.CrossEntropy[t] : float.NaN;
                    if (supervised)
                    {
                        sum += s.CrossEntropy[t];
                        count++;
                    }
                }
                if (count == 0) noSupervised++;
                rows[i] = new StoreRow
                {
                    Index = part.FirstRow + i,
                    Hash = hashes[(int)(part.FirstRow + i)],
                    InputIds = ids,
                    Labels = labels,
                    TopK = SparseRows.Dense(s.TopKIds, s.TopKLogits.Select(x => (float)(Half)x).ToArray(), options.K),
                    TokenCe = ce,
                    Metrics = [count == 0 ? double.NaN : sum / count],
                };
                tokens += ids.Length;
            }
            writer.Write(part, rows);
        }
        report.Set("tokens", tokens);
        report.Set("seconds", Math.Round(clock.Elapsed.TotalSeconds, 3));
        report.Set("tokens_per_second", Math.Round(tokens / Math.Max(1e-9, clock.Elapsed.TotalSeconds), 1));
        report.Add("rows", "truncated to max length", truncated);
        report.Add("rows", "no supervised token (metric NaN)", noSupervised);
        report.Add("rows", "complete", pending.Sum(p => (long)p.Rows) - truncated - noSupervised);
        return report;
    }

    /// <summary>The ids and labels of one row as the reference builds them.</summary>
    internal static (int[] Ids, int[] Labels) Tokenize(CorpusRecord r, ITokenizer tokenizer, RepresentOptions options)
    {
        if (options.Format == CorpusFormat.Chat) return options.Chat.Tokenize(r.Conversation!, tokenizer);
        // FuseLLM: text + eos, no special tokens added; labels = ids.
        var ids = ReferenceSequences.FuseLlm(tokenizer, r.Text!, options.AppendEos ? tokenizer.EosTokenId : null);
        return (ids, ids);
    }
}
