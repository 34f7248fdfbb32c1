using System.Text;
using System.Text.Json.Nodes;
using FuseSharp.Tokenization.ChatTemplates;

namespace FuseSharp.Bench;

/// <summary>
/// Chat-template rendering throughput (what preparing a chat dataset for training costs): conversations per second
/// for a ChatML template and for Llama-3.1's real template (tool branches, trim, namespace-free control flow), the ratio
/// to a hand-written StringBuilder formatter producing the same ChatML prompt (the floor any renderer could reach),
/// and the speed-up of rendering a batch on all cores.
/// </summary>
internal static class ChatTemplateBench
{
    private const string ChatMl =
        "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

    public static void Run(string[] args)
    {
        int conversations = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 2000;
        var requests = Enumerable.Range(0, conversations).Select(MakeConversation).ToArray();
        var chatml = ChatTemplate.Parse(ChatMl);
        Check(requests, chatml);

        double tHand = BenchUtil.BestOf(5, () => { foreach (var r in requests) HandWritten(r); });
        double tChatMl = BenchUtil.BestOf(5, () => { foreach (var r in requests) chatml.Render(r); });
        long bytes = requests.Sum(r => (long)Encoding.UTF8.GetByteCount(chatml.Render(r)));
        Console.WriteLine($"chat templates: {conversations} conversations of 8 messages, {bytes / conversations} bytes of prompt each");
        Console.WriteLine($"  hand-written ChatML formatter: {BenchUtil.F(conversations / tHand, "0")} conv/s");
        Console.WriteLine($"  ChatML template:               {BenchUtil.F(conversations / tChatMl, "0")} conv/s, {BenchUtil.F(bytes / tChatMl / 1e6)} MB/s");
        BenchUtil.Ratio("ChatML template time / hand-written formatter", tChatMl / tHand, "<=", 10);

        var llamaPath = FindRepoFile(Path.Combine("tests", "FuseSharp.Tests", "Fixtures", "chat_templates", "llamacpp-models-templates", "meta-llama-Llama-3.1-8B-Instruct.jinja"));
        if (llamaPath is not null)
        {
            var llama = ChatTemplate.LoadFile(llamaPath);
            var withTokens = requests.Select(r => r.WithVariable("bos_token", "<|begin_of_text|>")).ToArray();
            double tLlama = BenchUtil.BestOf(5, () => { foreach (var r in withTokens) llama.Render(r); });
            Console.WriteLine($"  Llama-3.1 template:            {BenchUtil.F(conversations / tLlama, "0")} conv/s");
            double tParallel = BenchUtil.BestOf(5, () => Parallel.ForEach(withTokens, r => llama.Render(r)));
            Console.WriteLine($"  Llama-3.1 template, {Environment.ProcessorCount} cores: {BenchUtil.F(conversations / tParallel, "0")} conv/s");
            BenchUtil.Ratio("batch speed-up on all cores", tLlama / tParallel, ">=", Math.Max(1, Environment.ProcessorCount * 0.6));
            double tSpans = BenchUtil.BestOf(3, () => { foreach (var r in requests.Take(200)) chatml.RenderWithMessageSpans(r); });
            Console.WriteLine($"  ChatML with per-message spans: {BenchUtil.F(200 / tSpans, "0")} conv/s (renders every prefix)");
        }
    }

    private static ChatTemplateRequest MakeConversation(int i)
    {
        var messages = new List<ChatMessage> { new("system", "You are a helpful assistant. Answer briefly.") };
        for (int turn = 0; turn < 7; turn++)
        {
            messages.Add(new(turn % 2 == 0 ? "user" : "assistant", $"Message {turn} of conversation {i}: " + new string('x', 40 + (i * 7 + turn * 13) % 200)));
        }
        return ChatTemplateRequest.FromMessages(messages) with { AddGenerationPrompt = true };
    }

    private static string HandWritten(ChatTemplateRequest r)
    {
        var sb = new StringBuilder();
        foreach (var m in r.Messages)
        {
            sb.Append("<|im_start|>").Append((string)m!["role"]!).Append('\n').Append((string)m["content"]!).Append("<|im_end|>\n");
        }
        if (r.AddGenerationPrompt) sb.Append("<|im_start|>assistant\n");
        return sb.ToString();
    }

    private static void Check(ChatTemplateRequest[] requests, ChatTemplate chatml)
    {
        foreach (var r in requests.Take(20))
        {
            if (chatml.Render(r) != HandWritten(r)) throw new InvalidOperationException("ChatML template and hand-written formatter disagree");
        }
    }

    private static string? FindRepoFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, relative);
            if (File.Exists(candidate)) return candidate;
        }
        var cwd = Path.Combine(Directory.GetCurrentDirectory(), relative);
        return File.Exists(cwd) ? cwd : null;
    }
}
