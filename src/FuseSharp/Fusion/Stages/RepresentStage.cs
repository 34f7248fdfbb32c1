using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Report;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Text;
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

    /// <summary>Sequences per scorer call.</summary>
    public int BatchSize { get; init; } = 8;

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
            for (int start = 0; start < seqs.Length; start += options.BatchSize)
            {
                cancel.ThrowIfCancellationRequested();
                int n = Math.Min(options.BatchSize, seqs.Length - start);
                var batch = seqs.Skip(start).Take(n).Select(s => s.Ids).ToList();
                var scored = scorer.Score(batch, options.K, cancel);
                if (scored.Count != n) throw new InvalidOperationException($"the scorer returned {scored.Count} results for {n} sequences");
                for (int j = 0; j < n; j++)
                {
                    int i = start + j;
                    var (ids, labels) = seqs[i];
                    var s = scored[j];
                    if (s.Positions != ids.Length || s.K != options.K) throw new InvalidOperationException($"the scorer returned {s.Positions} positions x {s.K} for {ids.Length} tokens at k = {options.K}");
                    var ce = new float[ids.Length];
                    double sum = 0;
                    int count = 0;
                    for (int t = 0; t < ids.Length; t++)
                    {
                        bool supervised = t + 1 < ids.Length && labels[t + 1] != -100;
                        ce[t] = supervised ? (float)(Half)s.NextTokenCe[t] : float.NaN;
                        if (supervised)
                        {
                            sum += s.NextTokenCe[t];
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
                task.Advance(n);
            }
            writer.Write(part, rows);
        }
        report.Set("tokens", tokens);
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
