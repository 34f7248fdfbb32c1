using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Report;
using FuseSharp.Tokenization;

namespace FuseSharp.Fusion.Text;

/// <summary>
/// FuseLLM's <c>split_long_text.py</c> (spec §1): documents too long for any tokenizer are cut into chunks that fit
/// every one of them. Every later stage tokenizes the same chunk strings with each model's tokenizer, which is what
/// keeps the rows of all representations about the same text.
/// </summary>
public static class TextSplitter
{
    /// <summary>
    /// Splits one document. Each tokenizer encodes it without special tokens; if every length is at most
    /// <c>blockSize − margin</c> the text is kept whole; otherwise the tokenizer with the most tokens (the first on
    /// ties, in the order given: base, blending, ...) has its ids cut into runs of <c>blockSize − margin</c> and each
    /// run is decoded back to text (special tokens skipped). The margin absorbs re-tokenization drift and the EOS.
    /// </summary>
    public static IReadOnlyList<string> Split(string text, IReadOnlyList<ITokenizer> tokenizers, int blockSize = 2048, int margin = 48)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(tokenizers);
        int threshold = blockSize - margin;
        if (tokenizers.Count == 0) throw new FusionException("split needs at least one tokenizer");
        if (threshold <= 0) throw new FusionException($"block size {blockSize} minus margin {margin} leaves no room", "use a larger --block-size or a smaller --margin");
        IReadOnlyList<int>? longest = null;
        ITokenizer? best = null;
        foreach (var tok in tokenizers)
        {
            var ids = tok.Encode(text, addSpecialTokens: false).Ids;
            if (longest is null || ids.Count > longest.Count) { longest = ids; best = tok; }
        }
        if (longest!.Count <= threshold) return [text];
        var chunks = new List<string>();
        for (int start = 0; start < longest.Count; start += threshold)
        {
            int n = Math.Min(threshold, longest.Count - start);
            chunks.Add(best!.Decode(longest.Skip(start).Take(n).ToArray(), skipSpecialTokens: true));
        }
        return chunks;
    }

    /// <summary>
    /// Splits a JSONL text corpus into another (<c>{"text": chunk}</c> per line, in input order), streaming batches of
    /// documents through all cores; the output appears only when complete (written to a temporary sibling, then renamed).
    /// </summary>
    public static StageReport SplitCorpus(string input, string output, IReadOnlyList<ITokenizer> tokenizers, int blockSize = 2048, int margin = 48,
        string textField = "text", IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        progress ??= NullProgress.Instance;
        var report = new StageReport("split");
        var temp = $"{output}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        long docs = 0, chunks = 0;
        try
        {
            using (var w = new StreamWriter(temp, append: false, new System.Text.UTF8Encoding(false)))
            using (var task = progress.Start("split", 0))
            {
                w.NewLine = "\n";
                var batch = new List<CorpusRecord>(1024);
                void Flush()
                {
                    var results = new IReadOnlyList<string>[batch.Count];
                    FusionParallel.ForEach(Enumerable.Range(0, batch.Count), i => results[i] = Split(batch[i].Text!, tokenizers, blockSize, margin), cancel);
                    foreach (var r in results)
                    {
                        report.Add("documents", r.Count == 1 ? "kept whole" : "split");
                        foreach (var c in r)
                        {
                            w.WriteLine(new JsonObject { ["text"] = c }.ToJsonString());
                            chunks++;
                        }
                    }
                    task.Advance(batch.Count);
                    docs += batch.Count;
                    batch.Clear();
                }
                foreach (var d in FusionCorpus.Read(input, CorpusFormat.Text, textField))
                {
                    batch.Add(d);
                    if (batch.Count == 1024) Flush();
                }
                if (batch.Count > 0) Flush();
            }
            File.Move(temp, output, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FusionException($"{output}: cannot write ({e.Message})", "check free disk space and permissions", e);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        report.Set("documents_in", docs);
        report.Set("rows_out", chunks);
        report.Set("threshold", blockSize - margin);
        return report;
    }
}
