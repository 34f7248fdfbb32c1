using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Evaluation;
using FuseSharp.IO;
using FuseSharp.Tokenization;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N] [--temperature T]
/// [--top-p P] [--top-k K] [--seed N] [--json]</c>. Defaults come from generation_config.json (as transformers'
/// generate does); temperature 0 means greedy. Text streams to stdout as it is generated; --json prints
/// <c>{"ids": [new ids], "text": ..., "stop_reason": ...}</c> at the end.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder.", Required = true };
        var prompt = new Option<string?>("--prompt") { Description = "Prompt text (tokenized with the model's tokenizer, special tokens added)." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt token ids, comma-separated." };
        var maxNew = new Option<int?>("--max-new-tokens") { Description = "Tokens to generate at most (default: generation_config or 128)." };
        var temperature = new Option<float?>("--temperature") { Description = "0 = greedy (default unless generation_config samples)." };
        var topP = new Option<float?>("--top-p") { Description = "Nucleus sampling mass (1 = off)." };
        var topK = new Option<int?>("--top-k") { Description = "Sample among the k most likely tokens (0 = off)." };
        var penalty = new Option<float?>("--repetition-penalty") { Description = "Penalise tokens already present (1 = off)." };
        var seed = new Option<long>("--seed") { Description = "Seed of the sampling (default 0)." };
        var stop = new Option<string[]>("--stop") { Description = "Stop once the text contains this string (repeatable).", AllowMultipleArgumentsPerToken = false };
        var noEos = new Option<bool>("--ignore-eos") { Description = "Do not stop at the end-of-sequence token." };
        var json = new Option<bool>("--json") { Description = "Print {\"ids\": [...], \"text\": ...} instead of streaming text." };
        var allowLong = new Option<bool>("--allow-long-context") { Description = "Let RoPE/ALiBi models run past max_position_embeddings." };
        var cmd = new Command("generate", "Generate a continuation of a prompt (greedy or sampled, KV-cached, streaming).")
            { model, prompt, promptIds, maxNew, temperature, topP, topK, penalty, seed, stop, noEos, json, allowLong };
        cmd.SetAction(pr => CliContext.Run(() => Execute(pr.GetValue(model)!, pr.GetValue(prompt), pr.GetValue(promptIds), pr.GetValue(maxNew), pr.GetValue(temperature),
            pr.GetValue(topP), pr.GetValue(topK), pr.GetValue(penalty), pr.GetValue(seed), pr.GetValue(stop) ?? [], pr.GetValue(noEos), pr.GetValue(json), pr.GetValue(allowLong))));
        return cmd;
    }

    private static int Execute(string modelDir, string? prompt, string? promptIds, int? maxNew, float? temperature, float? topP, int? topK, float? penalty,
        long seed, string[] stop, bool ignoreEos, bool json, bool allowLong)
    {
        if ((prompt is null) == (promptIds is null)) throw new FuseSharpException("give exactly one of --prompt or --prompt-ids");
        using var model = EngineInputs.LoadModel(modelDir, allowLong);
        using var folder = ModelFolder.Open(modelDir);
        ITokenizer? tokenizer = prompt is not null || stop.Length > 0 ? EngineInputs.LoadTokenizer(modelDir) : TryTokenizer(modelDir);
        var ids = prompt is not null ? tokenizer!.Encode(prompt, addSpecialTokens: true).Ids.ToArray() : EngineInputs.ParseIds(promptIds!, "--prompt-ids");
        var o = GenerationOptions.FromGenerationConfig(folder.GenerationConfig, model.Spec);
        o = o with
        {
            MaxNewTokens = maxNew ?? o.MaxNewTokens,
            Temperature = temperature ?? o.Temperature,
            TopP = topP ?? o.TopP,
            TopK = topK ?? o.TopK,
            RepetitionPenalty = penalty ?? o.RepetitionPenalty,
            Seed = seed,
            StopStrings = stop,
            EosTokenIds = ignoreEos ? [] : o.EosTokenIds,
        };
        if (o.Temperature < 0) throw new FuseSharpException("--temperature must not be negative");
        if (o.TopP is <= 0 or > 1) throw new FuseSharpException("--top-p must be in (0, 1]");
        if (o.RepetitionPenalty <= 0) throw new FuseSharpException("--repetition-penalty must be positive");
        bool stream = !json;
        var result = Generator.Generate(model, ids, o, tokenizer, t =>
        {
            if (!stream) return;
            if (tokenizer is not null) Console.Out.Write(t.TextDelta);
            else if (t.Id >= 0) Console.Out.Write($"{t.Id} ");
            Console.Out.Flush();
        }, CliContext.Cancellation);
        if (json)
        {
            var o2 = new JsonObject
            {
                ["ids"] = new JsonArray(result.NewIds.Select(i => (JsonNode?)i).ToArray()),
                ["text"] = result.Text,
                ["stop_reason"] = result.StopReason.ToString(),
            };
            Console.Out.WriteLine(o2.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        }
        else
        {
            Console.Out.WriteLine();
        }
        return 0;
    }

    /// <summary>The tokenizer when the folder has one FuseSharp reads; output then shows text besides ids.</summary>
    private static ITokenizer? TryTokenizer(string folder)
    {
        try
        {
            return EngineInputs.LoadTokenizer(folder);
        }
        catch (FuseSharpException)
        {
            return null;
        }
    }
}
