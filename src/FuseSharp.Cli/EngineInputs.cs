using System.Globalization;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tokenization;

namespace FuseSharp.Cli;

/// <summary>What the engine commands (forward, generate, eval) share: loading a model and its tokenizer, reading ids.</summary>
internal static class EngineInputs
{
    /// <summary>Loads a model folder; <paramref name="allowLong"/> lets RoPE/ALiBi models run past max_position_embeddings.</summary>
    public static TransformerModel LoadModel(string folder, bool allowLong = false) =>
        TransformerModel.Load(folder, new ModelOptions { AllowLongerThanTrained = allowLong });

    /// <summary>The tokenizer of a model folder (tokenizer.json, tokenizer.model, vocab.json + merges.txt, ...), for text input and output.</summary>
    /// <exception cref="TokenizerException">The folder has no tokenizer FuseSharp can read.</exception>
    public static ITokenizer LoadTokenizer(string folder) => TokenizerLoader.Load(folder);

    /// <summary>Parses "1,2,3" (spaces allowed).</summary>
    public static int[] ParseIds(string text, string option)
    {
        var parts = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new FuseSharpException($"{option}: no token ids given", "write them comma-separated, e.g. 1,15043,3186");
        return parts.Select(p => int.TryParse(p, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var id) ? id
            : throw new FuseSharpException($"{option}: '{p}' is not a token id", "write integers, comma-separated")).ToArray();
    }

    /// <summary>
    /// Reads a JSON-lines file of <c>{"input_ids": [...]}</c> (optionally with <c>"attention_mask"</c>) or
    /// <c>{"text": ...}</c> lines into sequences (text needs <paramref name="tokenizer"/>).
    /// </summary>
    public static List<(int[] Ids, byte[]? Mask)> ReadSequences(string path, Func<ITokenizer> tokenizer, bool addSpecialTokens)
    {
        var rows = new List<(int[], byte[]?)>();
        foreach (var (lineNo, o) in JsonLines.Read(path))
        {
            if (o["input_ids"] is JsonArray ids)
            {
                var seq = ids.Select((x, i) => x is JsonValue v && v.TryGetValue<int>(out var id) ? id
                    : throw new FuseSharpException($"{path}:{lineNo}: input_ids[{i}] is not an integer")).ToArray();
                byte[]? mask = null;
                if (o["attention_mask"] is JsonArray m)
                {
                    if (m.Count != seq.Length) throw new FuseSharpException($"{path}:{lineNo}: attention_mask has {m.Count} entries, input_ids {seq.Length}");
                    mask = m.Select(x => (byte)(x is JsonValue v && v.TryGetValue<int>(out var b) && b != 0 ? 1 : 0)).ToArray();
                }
                rows.Add((seq, mask));
            }
            else if (o["text"] is JsonValue tv && tv.TryGetValue<string>(out var text))
            {
                rows.Add((tokenizer().Encode(text, addSpecialTokens).Ids.ToArray(), null));
            }
            else
            {
                throw new FuseSharpException($"{path}:{lineNo}: needs \"input_ids\" (a list of ids) or \"text\"");
            }
            if (rows[^1].Item1.Length == 0) throw new FuseSharpException($"{path}:{lineNo}: empty sequence");
        }
        if (rows.Count == 0) throw new FuseSharpException($"{path}: no sequences");
        return rows;
    }

    /// <summary>A progress bar over the layers of the next forward (long forwards of big models show where they are).</summary>
    public static IDisposable ShowLayerProgress(TransformerModel model)
    {
        var task = ConsoleProgress.Instance.Start("forward (layers)", model.Spec.NumLayers);
        model.Observer = new LayerProgress(task);
        return task;
    }

    private sealed class LayerProgress(Diagnostics.IProgressTask task) : ITensorObserver
    {
        public void Observe(string name, int layer, int rowOffset, ReadOnlySpan<float> values, int columns)
        {
            if (name == "residual") task.Advance();
        }
    }

    /// <summary>Right-pads sequences into one batch (an explicit mask wins over the length).</summary>
    public static TokenBatch Batch(IReadOnlyList<(int[] Ids, byte[]? Mask)> rows, int padId)
    {
        int t = rows.Max(r => r.Ids.Length);
        var ids = new int[rows.Count * t];
        var mask = new byte[ids.Length];
        Array.Fill(ids, padId);
        for (int b = 0; b < rows.Count; b++)
        {
            rows[b].Ids.CopyTo(ids, b * t);
            for (int i = 0; i < rows[b].Ids.Length; i++) mask[b * t + i] = rows[b].Mask?[i] ?? 1;
        }
        return new TokenBatch(rows.Count, t, ids, mask);
    }
}
