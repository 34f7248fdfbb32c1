using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Evaluation;
using FuseSharp.IO;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.ChatTemplates;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N] [--temperature T]
/// [--top-p P] [--top-k K] [--seed N] [--json]</c>. Defaults come from generation_config.json (as transformers'
/// generate does); temperature 0 means greedy. Text streams to stdout as it is generated; --json prints
/// <c>{"ids": [new ids], "text": ..., "stop_reason": ...}</c> at the end. With <c>--chat</c> the prompt is a user
/// message rendered with the model's chat template (one turn with --prompt, else a conversation read one message
/// per line from --turns FILE or stdin, until its end or /exit).
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
        var chat = new Option<bool>("--chat") { Description = "Chat through the model's chat template: --prompt is one user message; without it, read messages from stdin." };
        var system = new Option<string?>("--system") { Description = "With --chat: a system message." };
        var template = new Option<string?>("--chat-template") { Description = "With --chat: a .jinja template instead of the model's own." };
        var turns = new Option<string?>("--turns") { Description = "With --chat: a file of user messages, one per line, answered in turn (instead of stdin)." };
        var cmd = new Command("generate", "Generate a continuation of a prompt (greedy or sampled, KV-cached, streaming), or chat.")
            { model, prompt, promptIds, maxNew, temperature, topP, topK, penalty, seed, stop, noEos, json, allowLong, chat, system, template, turns };
        cmd.SetAction(pr => CliContext.Run(() => Execute(new Request(pr.GetValue(model)!, pr.GetValue(prompt), pr.GetValue(promptIds), pr.GetValue(maxNew),
            pr.GetValue(temperature), pr.GetValue(topP), pr.GetValue(topK), pr.GetValue(penalty), pr.GetValue(seed), pr.GetValue(stop) ?? [], pr.GetValue(noEos),
            pr.GetValue(json), pr.GetValue(allowLong), pr.GetValue(chat), pr.GetValue(system), pr.GetValue(template), pr.GetValue(turns)))));
        return cmd;
    }

    private sealed record Request(string ModelDir, string? Prompt, string? PromptIds, int? MaxNew, float? Temperature, float? TopP, int? TopK, float? Penalty,
        long Seed, string[] Stop, bool IgnoreEos, bool Json, bool AllowLong, bool Chat, string? System, string? Template, string? Turns);

    private static int Execute(Request r)
    {
        if (r.Chat && r.PromptIds is not null) throw new FuseSharpException("--chat takes text (--prompt or stdin), not --prompt-ids");
        if (!r.Chat && (r.Prompt is null) == (r.PromptIds is null)) throw new FuseSharpException("give exactly one of --prompt or --prompt-ids");
        if (!r.Chat && (r.System is not null || r.Template is not null || r.Turns is not null)) throw new FuseSharpException("--system, --chat-template and --turns need --chat");
        if (r.Turns is not null && r.Prompt is not null) throw new FuseSharpException("give either --prompt or --turns");
        if (r.Turns is not null && !File.Exists(r.Turns)) throw new FuseSharpException($"{r.Turns}: no such file");
        using var model = EngineInputs.LoadModel(r.ModelDir, r.AllowLong);
        using var folder = ModelFolder.Open(r.ModelDir);
        var o = Options(r, folder, model);
        if (r.Chat) return Chat(r, model, o);
        ITokenizer? tokenizer = r.Prompt is not null || r.Stop.Length > 0 ? EngineInputs.LoadTokenizer(r.ModelDir) : TryTokenizer(r.ModelDir);
        var ids = r.Prompt is not null ? tokenizer!.Encode(r.Prompt, addSpecialTokens: true).Ids.ToArray() : EngineInputs.ParseIds(r.PromptIds!, "--prompt-ids");
        var result = Generator.Generate(model, ids, o, tokenizer, Stream(r.Json, tokenizer), CliContext.Cancellation);
        Finish(result, r.Json);
        return 0;
    }

    /// <summary>One turn (--prompt) or a conversation read line by line from stdin.</summary>
    private static int Chat(Request r, Models.TransformerModel model, GenerationOptions o)
    {
        var tokenizer = EngineInputs.LoadTokenizer(r.ModelDir);
        var config = TokenizerConfig.Load(r.ModelDir);
        var template = r.Template is not null ? ChatTemplate.LoadFile(r.Template) : ChatTemplate.FromConfig(config);
        var session = new ChatSession(model, tokenizer, template, config, r.System);
        if (r.Prompt is not null)
        {
            Finish(session.Reply(r.Prompt, o, Stream(r.Json, tokenizer), CliContext.Cancellation), r.Json);
            return 0;
        }
        using var reader = r.Turns is not null ? File.OpenText(r.Turns) : null;
        var input = reader ?? Console.In;
        bool interactive = reader is null && !Console.IsInputRedirected;
        if (interactive) Console.Error.WriteLine("chat: one message per line; end with /exit or Ctrl-D");
        int turn = 0;
        while (true)
        {
            if (interactive) Console.Error.Write("> ");
            var line = input.ReadLine();
            if (line is null || line.Trim() == "/exit") break;
            if (line.Trim().Length == 0) continue;
            Finish(session.Reply(line, o with { Seed = o.Seed + turn++ }, Stream(r.Json, tokenizer), CliContext.Cancellation), r.Json);
        }
        return 0;
    }

    private static GenerationOptions Options(Request r, ModelFolder folder, Models.TransformerModel model)
    {
        var o = GenerationOptions.FromGenerationConfig(folder.GenerationConfig, model.Spec);
        o = o with
        {
            MaxNewTokens = r.MaxNew ?? o.MaxNewTokens,
            Temperature = r.Temperature ?? o.Temperature,
            TopP = r.TopP ?? o.TopP,
            TopK = r.TopK ?? o.TopK,
            RepetitionPenalty = r.Penalty ?? o.RepetitionPenalty,
            Seed = r.Seed,
            StopStrings = r.Stop,
            EosTokenIds = r.IgnoreEos ? [] : o.EosTokenIds,
        };
        if (o.Temperature < 0) throw new FuseSharpException("--temperature must not be negative");
        if (o.TopP is <= 0 or > 1) throw new FuseSharpException("--top-p must be in (0, 1]");
        if (o.RepetitionPenalty <= 0) throw new FuseSharpException("--repetition-penalty must be positive");
        return o;
    }

    /// <summary>Streams text (or ids without a tokenizer) to stdout, unless the output is JSON.</summary>
    private static Action<GeneratedToken>? Stream(bool json, ITokenizer? tokenizer) => json ? null : t =>
    {
        if (tokenizer is not null) Console.Out.Write(t.TextDelta);
        else if (t.Id >= 0) Console.Out.Write($"{t.Id} ");
        Console.Out.Flush();
    };

    private static void Finish(GenerationResult result, bool json)
    {
        if (!json)
        {
            Console.Out.WriteLine();
            return;
        }
        var o = new JsonObject
        {
            ["ids"] = new JsonArray(result.NewIds.Select(i => (JsonNode?)i).ToArray()),
            ["text"] = result.Text,
            ["stop_reason"] = result.StopReason.ToString(),
        };
        Console.Out.WriteLine(o.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
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
