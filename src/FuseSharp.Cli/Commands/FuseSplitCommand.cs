using System.CommandLine;
using FuseSharp.Fusion.Text;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp fuse split</c>: cut long documents into chunks that fit every tokenizer (FuseLLM split_long_text.py, spec §1).</summary>
internal static class FuseSplitCommand
{
    public static Command Create()
    {
        var tokenizers = new Option<string[]>("--tokenizer") { Description = "Every model's tokenizer, base first (repeat the option); ties in length go to the first.", Required = true, AllowMultipleArgumentsPerToken = true };
        var input = new Option<string>("--input") { Description = "JSONL corpus, one {\"text\": ...} per line.", Required = true };
        var output = new Option<string>("--out") { Description = "Output JSONL, one {\"text\": chunk} per line.", Required = true };
        var blockSize = new Option<int>("--block-size") { Description = "Model context (2048 in FuseLLM).", DefaultValueFactory = _ => 2048 };
        var margin = new Option<int>("--margin") { Description = "Tokens kept free for re-tokenization drift and the EOS (48 in FuseLLM).", DefaultValueFactory = _ => 48 };
        var field = new Option<string>("--text-field") { Description = "The JSON field holding the text.", DefaultValueFactory = _ => "text" };
        var cmd = new Command("split", "Split documents longer than block-size − margin tokens for any tokenizer, decoding chunks of the longest tokenization.");
        foreach (var o in new Option[] { tokenizers, input, output, blockSize, margin, field }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var p = new ParseResultAccessor(pr);
            var toks = (p.Get(tokenizers) ?? []).Select(FuseTokenizers.Load).ToList();
            var report = TextSplitter.SplitCorpus(p.Get(input)!, p.Get(output)!, toks, p.Get(blockSize), p.Get(margin), p.Get(field)!, ConsoleProgress.Instance, CliContext.Cancellation);
            report.Write(Path.ChangeExtension(p.Get(output)!, null) + ".split-report");
            Console.Error.Write(report.Summary());
            return 0;
        }));
        return cmd;
    }
}
