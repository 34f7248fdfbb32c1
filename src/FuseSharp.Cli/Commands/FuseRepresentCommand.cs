using System.CommandLine;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Text;
using FuseSharp.Models;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp fuse represent</c>: run a model over a corpus and store per-position top-k logits, ids and CE (spec §2).</summary>
internal static class FuseRepresentCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The model folder (config.json + safetensors; its tokenizer unless --tokenizer).", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Another tokenizer (file or folder) instead of the model folder's." };
        var corpus = new Option<string>("--corpus") { Description = "JSONL (or one JSON array) corpus: {\"text\": ...} rows, or conversations with --format chat.", Required = true };
        var format = new Option<string>("--format") { Description = "text (FuseLLM: text + EOS, no BOS; default) or chat (FuseChat: conversation template, BOS, instruction masking).", DefaultValueFactory = _ => "text" };
        var field = new Option<string>("--text-field") { Description = "text: the JSON field holding the text.", DefaultValueFactory = _ => "text" };
        var k = new Option<int>("--top-k") { Description = "Top logits kept per position (10 in FuseLLM / FuseChat).", DefaultValueFactory = _ => 10 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest sequence; longer rows are truncated and counted (2048 in the reference).", DefaultValueFactory = _ => 2048 };
        var noEos = new Option<bool>("--no-eos") { Description = "text: do not append the EOS token." };
        var user = new Option<string?>("--user-prefix") { Description = "chat: the user header (default \"GPT4 Correct User: \")." };
        var assistant = new Option<string?>("--assistant-prefix") { Description = "chat: the assistant header (default \"GPT4 Correct Assistant: \")." };
        var separator = new Option<string?>("--separator") { Description = "chat: the turn separator (default: the tokenizer's EOS; FuseChat v2 uses e.g. <|eot_id|> for Llama-3)." };
        var tokensPerBatch = new Option<int>("--max-tokens-per-batch") { Description = "Padded tokens per forward (bounds memory; the reference's 8 x 2048 by default).", DefaultValueFactory = _ => 16384 };
        var batchSize = new Option<int>("--batch-size") { Description = "Sequences per forward at most.", DefaultValueFactory = _ => 64 };
        var rowsPerPart = new Option<int>("--rows-per-part") { Description = "Rows per part file (the unit of resuming).", DefaultValueFactory = _ => 256 };
        var codec = new Option<string>("--codec") { Description = "shuffle-zlib (default) or none (plain safetensors tensors).", DefaultValueFactory = _ => "shuffle-zlib" };
        var shard = new Option<string?>("--shard") { Description = "I/N: this process's slice of the rows (auto[/N]: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing store of another configuration." };
        var output = new Option<string>("--out") { Description = "Output representation store folder.", Required = true };
        var cmd = new Command("represent", "Run a model over a corpus; store per-position top-k logits and ids, next-token CE and metric_ce (resumable, shardable).");
        foreach (var o in new Option[] { model, tokenizer, corpus, format, field, k, maxLength, noEos, user, assistant, separator, tokensPerBatch, batchSize, rowsPerPart, codec, shard, overwrite, output })
            cmd.Options.Add(o);
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var p = new ParseResultAccessor(pr);
            if (p.Get(tokensPerBatch) < 1 || p.Get(batchSize) < 1 || p.Get(rowsPerPart) < 1)
                throw new FuseSharpException("--max-tokens-per-batch, --batch-size and --rows-per-part must be positive");
            var chat = new ChatFormat();
            chat = chat with
            {
                UserPrefix = p.Get(user) ?? chat.UserPrefix,
                AssistantPrefix = p.Get(assistant) ?? chat.AssistantPrefix,
                Separator = p.Get(separator),
            };
            var options = new RepresentOptions
            {
                Format = p.Get(format) switch { "text" => CorpusFormat.Text, "chat" => CorpusFormat.Chat, var x => throw new FuseSharpException($"--format must be text or chat, got '{x}'") },
                TextField = p.Get(field)!,
                K = p.Get(k),
                MaxLength = p.Get(maxLength),
                AppendEos = !p.Get(noEos),
                Chat = chat,
                Scoring = new ScoringOptions { MaxTokensPerBatch = p.Get(tokensPerBatch), MaxBatchSize = p.Get(batchSize) },
                Tokenizer = p.Get(tokenizer),
                RowsPerPart = p.Get(rowsPerPart),
                Codec = ColumnCodec.Parse(p.Get(codec)!),
                Shard = ShardSpec.Parse(p.Get(shard)),
                Overwrite = p.Get(overwrite),
            };
            var report = RepresentStage.RunModel(p.Get(model)!, p.Get(corpus)!, p.Get(output)!, options, ConsoleProgress.Instance, CliContext.Cancellation);
            FuseDataOptions.Finish(report, p.Get(output)!);
            return 0;
        }));
        return cmd;
    }
}
