using System.CommandLine;
using System.Runtime.InteropServices;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tensors;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp forward --model DIR (--ids 1,2,3 | --text TEXT | --input FILE.jsonl) --out FILE.safetensors</c>:
/// runs the model and writes "logits" F32 [T, V] (or [B, T, V] for --input), plus "input_ids" (I64) and, for
/// padded batches, "attention_mask"; optionally top-k ("topk_ids" I64, "topk_logits" F32) and per-position
/// next-token cross-entropy ("ce" F32, NaN where there is no next token).
/// </summary>
internal static class ForwardCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + safetensors).", Required = true };
        var ids = new Option<string?>("--ids") { Description = "Token ids, comma-separated: one sequence." };
        var text = new Option<string?>("--text") { Description = "Text, tokenized with the model's tokenizer: one sequence." };
        var input = new Option<string?>("--input") { Description = "JSON lines {\"input_ids\": [...]} or {\"text\": ...}; unequal lengths are right-padded and masked." };
        var output = new Option<string>("--out") { Description = "Output .safetensors file.", Required = true };
        var topK = new Option<int>("--top-k") { Description = "Also write the k largest logits per position (topk_ids, topk_logits)." };
        var ce = new Option<bool>("--ce") { Description = "Also write the cross-entropy of each next token (ce)." };
        var noLogits = new Option<bool>("--no-logits") { Description = "Do not write the full logits (with --top-k / --ce: no (B, T, V) tensor is ever built)." };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "Tokenize text without the tokenizer's special tokens (BOS)." };
        var allowLong = new Option<bool>("--allow-long-context") { Description = "Let RoPE/ALiBi models run past max_position_embeddings." };
        var cmd = new Command("forward", "Run a model on token ids or text and write its logits to a safetensors file.")
            { model, ids, text, input, output, topK, ce, noLogits, noSpecial, allowLong };
        cmd.SetAction(pr => CliContext.Run(() => Execute(pr.GetValue(model)!, pr.GetValue(ids), pr.GetValue(text), pr.GetValue(input), pr.GetValue(output)!,
            pr.GetValue(topK), pr.GetValue(ce), pr.GetValue(noLogits), !pr.GetValue(noSpecial), pr.GetValue(allowLong))));
        return cmd;
    }

    private static int Execute(string modelDir, string? ids, string? text, string? input, string output, int topK, bool ce, bool noLogits, bool special, bool allowLong)
    {
        if ((ids is null ? 0 : 1) + (text is null ? 0 : 1) + (input is null ? 0 : 1) != 1)
            throw new FuseSharpException("give exactly one of --ids, --text or --input");
        if (noLogits && topK <= 0 && !ce) throw new FuseSharpException("--no-logits leaves nothing to write", "add --top-k K and/or --ce");
        var outDir = Path.GetDirectoryName(Path.GetFullPath(output))!;
        if (!Directory.Exists(outDir)) throw new FuseSharpException($"{outDir}: output folder does not exist");
        using var m = EngineInputs.LoadModel(modelDir, allowLong);
        TokenBatch batch;
        bool single = input is null;
        if (ids is not null) batch = TokenBatch.Single(EngineInputs.ParseIds(ids, "--ids"));
        else if (text is not null) batch = TokenBatch.Single(EngineInputs.LoadTokenizer(modelDir).Encode(text, special).Ids);
        else batch = EngineInputs.Batch(EngineInputs.ReadSequences(input!, () => EngineInputs.LoadTokenizer(modelDir), special), m.Spec.PadTokenId ?? 0);

        var full = noLogits ? null : new FullLogits();
        var top = topK > 0 ? new TopKLogits(Math.Min(topK, m.Spec.VocabSize)) : null;
        var loss = ce ? new NextTokenLoss() : null;
        using (EngineInputs.ShowLayerProgress(m))
            m.Forward(batch, new CompositeSink(new LogitsSink?[] { full, top, loss }.OfType<LogitsSink>().ToArray()));

        long[] Dims(params long[] tail) => (single ? new long[] { batch.Length } : [batch.BatchSize, batch.Length]).Concat(tail).ToArray();
        var specs = new List<TensorSpec> { new("input_ids", DType.I64, new Shape(Dims())) };
        if (batch.Mask is not null) specs.Add(new TensorSpec("attention_mask", DType.I64, new Shape(Dims())));
        if (full is not null) specs.Add(new TensorSpec("logits", DType.F32, new Shape(Dims(m.Spec.VocabSize))));
        if (top is not null)
        {
            specs.Add(new TensorSpec("topk_ids", DType.I64, new Shape(Dims(top.K))));
            specs.Add(new TensorSpec("topk_logits", DType.F32, new Shape(Dims(top.K))));
        }
        if (loss is not null) specs.Add(new TensorSpec("ce", DType.F32, new Shape(Dims())));
        using var writer = SafetensorsWriter.Create(output, specs);
        writer.Write("input_ids", MemoryMarshal.AsBytes(batch.Ids.Select(i => (long)i).ToArray().AsSpan()));
        if (batch.Mask is not null) writer.Write("attention_mask", MemoryMarshal.AsBytes(batch.Mask.Select(b => (long)b).ToArray().AsSpan()));
        if (full is not null) writer.WriteSingle("logits", full.Values);
        if (top is not null)
        {
            writer.Write("topk_ids", MemoryMarshal.AsBytes(top.Ids.Select(i => (long)i).ToArray().AsSpan()));
            writer.WriteSingle("topk_logits", top.Values);
        }
        if (loss is not null) writer.WriteSingle("ce", loss.CrossEntropy);
        writer.Commit();
        Console.Error.WriteLine($"wrote {output}: {string.Join(", ", specs.Select(s => $"{s.Name} {s.DType.SafetensorsName()} {s.Shape}"))}");
        return 0;
    }
}
