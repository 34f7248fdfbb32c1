using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using FuseSharp.Tokenization.Training;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp tokenizer train INPUT... --kind byte-bpe|sp-bpe|unigram --vocab-size N --out DIR</c>: trains a tokenizer on
/// text / JSONL files and writes a Hugging Face <c>tokenizer.json</c> and <c>tokenizer_config.json</c>. The three kinds
/// of a fusion experiment are one line each:
/// <code>
/// fusesharp tokenizer train corpus.txt --kind byte-bpe --vocab-size 2000 --out tok-gpt2
/// fusesharp tokenizer train corpus.txt --kind sp-bpe   --vocab-size 1500 --byte-fallback --out tok-llama
/// fusesharp tokenizer train corpus.txt --kind unigram  --vocab-size 1000 --byte-fallback --out tok-t5
/// </code>
/// </summary>
internal static class TokenizerCommand
{
    private static readonly Dictionary<string, TokenizerKind> Kinds = new(StringComparer.OrdinalIgnoreCase)
    {
        ["byte-bpe"] = TokenizerKind.ByteLevelBpe,
        ["sp-bpe"] = TokenizerKind.SentencePieceBpe,
        ["unigram"] = TokenizerKind.Unigram,
    };

    private static readonly Dictionary<string, BpeTieBreak> TieBreaks = new(StringComparer.OrdinalIgnoreCase)
    {
        ["bytes"] = BpeTieBreak.GreatestBytes,
        ["ids"] = BpeTieBreak.LowestIds,
        ["sentencepiece"] = BpeTieBreak.SentencePiece,
    };

    private static readonly Dictionary<string, TrainingNormalization> Normalizations = new(StringComparer.OrdinalIgnoreCase)
    {
        ["none"] = TrainingNormalization.None,
        ["nfc"] = TrainingNormalization.Nfc,
        ["nfkc"] = TrainingNormalization.Nfkc,
        ["nmt-nfkc"] = TrainingNormalization.NmtNfkc,
    };

    public static Command Create()
    {
        var group = new Command("tokenizer", "Tokenizer tools.");
        group.Subcommands.Add(Train());
        return group;
    }

    private static Command Train()
    {
        var inputs = new Argument<string[]>("INPUT") { Description = "Training files: UTF-8 text (each file is one document) or .jsonl (one {\"text\": ...} object per line).", Arity = ArgumentArity.OneOrMore };
        var kind = new Option<string>("--kind")
        {
            Description = "byte-bpe (GPT-2: byte-level BPE, GPT-2 split regex), sp-bpe (Llama: SentencePiece-style BPE with '▁'), unigram (T5: SentencePiece unigram).",
            Required = true,
        };
        var vocabSize = new Option<int>("--vocab-size") { Description = "Vocabulary size, special tokens and byte pieces included.", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder for tokenizer.json and tokenizer_config.json (written atomically).", Required = true };
        var specials = new Option<string?>("--special-tokens")
        {
            Description = "Comma-separated special tokens, in id order (default: <|endoftext|> for byte-bpe; <unk>,<s>,</s> otherwise). They are cut out of the training text.",
        };
        var specialsAt = new Option<string>("--specials-at") { Description = "Put the special tokens at the start (default) or the end of the vocabulary.", DefaultValueFactory = _ => "start" };
        var unk = new Option<string?>("--unk-token") { Description = "Unknown token (SentencePiece kinds; default <unk>)." };
        var bos = new Option<string?>("--bos-token") { Description = "BOS token for tokenizer_config.json (default <s> or <|endoftext|> when among the special tokens)." };
        var eos = new Option<string?>("--eos-token") { Description = "EOS token for tokenizer_config.json (default </s> or <|endoftext|> when among the special tokens)." };
        var pad = new Option<string?>("--pad-token") { Description = "Padding token for tokenizer_config.json." };
        var addBos = new Option<bool>("--add-bos") { Description = "Encodings start with the BOS token (when special tokens are added)." };
        var addEos = new Option<bool>("--add-eos") { Description = "Encodings end with the EOS token (when special tokens are added)." };
        var minFrequency = new Option<long>("--min-frequency") { Description = "BPE: only merge pairs that occur at least this often (default 0)." };
        var tieBreak = new Option<string?>("--tie-break")
        {
            Description = "BPE tie-break among equally frequent pairs: bytes (greatest byte strings, the cs336 reference; byte-bpe default), ids (smallest ids, Hugging Face tokenizers), sentencepiece (shortest then smallest piece; sp-bpe default).",
        };
        var maxLength = new Option<int?>("--max-token-length") { Description = "Longest token in characters (default: unlimited for byte-bpe, 16 otherwise)." };
        var coverage = new Option<double>("--character-coverage")
        {
            Description = "SentencePiece kinds: share of the text's characters that become base symbols (default 0.9995; 1 keeps all). Rarer ones are <unk>, or bytes with --byte-fallback.",
            DefaultValueFactory = _ => 0.9995,
        };
        var byteFallback = new Option<bool>("--byte-fallback") { Description = "SentencePiece kinds: add the 256 <0xNN> pieces so that any text encodes without <unk> (recommended)." };
        var normalization = new Option<string>("--normalization") { Description = "none (default, lossless), nfc, nfkc, or nmt-nfkc (SentencePiece's default rule).", DefaultValueFactory = _ => "none" };
        var noScript = new Option<bool>("--no-split-by-script") { Description = "SentencePiece kinds: let pieces mix scripts (letters with punctuation or digits)." };
        var noNumber = new Option<bool>("--no-split-by-number") { Description = "SentencePiece kinds: let digits join letters." };
        var splitDigits = new Option<bool>("--split-digits") { Description = "SentencePiece kinds: every digit is its own token (as Llama)." };
        var seedSize = new Option<int>("--seed-size") { Description = "Unigram: seed pieces for EM (default 1000000).", DefaultValueFactory = _ => 1_000_000 };
        var shrinking = new Option<double>("--shrinking-factor") { Description = "Unigram: share of pieces kept by each pruning round (default 0.75).", DefaultValueFactory = _ => 0.75 };
        var emIterations = new Option<int>("--em-iterations") { Description = "Unigram: EM iterations per pruning round (default 2).", DefaultValueFactory = _ => 2 };
        var format = new Option<string>("--format") { Description = "Input format: auto (by extension: .jsonl/.ndjson are JSON lines), text, or jsonl.", DefaultValueFactory = _ => "auto" };
        var textField = new Option<string>("--text-field") { Description = "JSONL: the field holding the text (default text).", DefaultValueFactory = _ => "text" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace tokenizer files already in the output folder." };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary on stdout." };
        var cmd = new Command("train", "Train a byte-level BPE, SentencePiece-style BPE or unigram tokenizer and write tokenizer.json.")
        {
            inputs, kind, vocabSize, output, specials, specialsAt, unk, bos, eos, pad, addBos, addEos, minFrequency, tieBreak, maxLength, coverage,
            byteFallback, normalization, noScript, noNumber, splitDigits, seedSize, shrinking, emIterations, format, textField, overwrite, json,
        };
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var options = new TokenizerTrainingOptions
            {
                Kind = Pick(Kinds, pr.GetValue(kind)!, "--kind"),
                VocabSize = pr.GetValue(vocabSize),
                SpecialTokens = pr.GetValue(specials) is { } s ? s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : null,
                SpecialTokensPlacement = pr.GetValue(specialsAt) switch
                {
                    "start" => SpecialTokensPlacement.Start,
                    "end" => SpecialTokensPlacement.End,
                    var v => throw new FuseSharpException($"--specials-at must be start or end, got '{v}'"),
                },
                UnkToken = pr.GetValue(unk),
                BosToken = pr.GetValue(bos),
                EosToken = pr.GetValue(eos),
                PadToken = pr.GetValue(pad),
                AddBosToken = pr.GetValue(addBos),
                AddEosToken = pr.GetValue(addEos),
                MinFrequency = pr.GetValue(minFrequency),
                TieBreak = pr.GetValue(tieBreak) is { } t ? Pick(TieBreaks, t, "--tie-break") : null,
                MaxTokenLength = pr.GetValue(maxLength),
                CharacterCoverage = pr.GetValue(coverage),
                ByteFallback = pr.GetValue(byteFallback),
                Normalization = Pick(Normalizations, pr.GetValue(normalization)!, "--normalization"),
                SplitByScript = !pr.GetValue(noScript),
                SplitByNumber = !pr.GetValue(noNumber),
                SplitDigits = pr.GetValue(splitDigits),
                SeedSize = pr.GetValue(seedSize),
                ShrinkingFactor = pr.GetValue(shrinking),
                EmSubIterations = pr.GetValue(emIterations),
            };
            var fmt = Pick(new Dictionary<string, TrainingInputFormat>(StringComparer.OrdinalIgnoreCase)
            {
                ["auto"] = TrainingInputFormat.Auto, ["text"] = TrainingInputFormat.Text, ["jsonl"] = TrainingInputFormat.Jsonl,
            }, pr.GetValue(format)!, "--format");
            var files = pr.GetValue(inputs)!.Select(p => new TrainingInput(p, fmt, pr.GetValue(textField)!)).ToList();
            return Execute(files, options, pr.GetValue(output)!, pr.GetValue(overwrite), pr.GetValue(json));
        }));
        return cmd;
    }

    private static T Pick<T>(Dictionary<string, T> table, string value, string option) =>
        table.TryGetValue(value, out var v) ? v : throw new FuseSharpException($"{option} must be one of {string.Join(", ", table.Keys)}; got '{value}'");

    private static int Execute(List<TrainingInput> files, TokenizerTrainingOptions options, string output, bool overwrite, bool json)
    {
        var resolved = options.Resolve();
        // Refuse an occupied output before reading any text.
        if (!overwrite && Directory.Exists(output) && File.Exists(Path.Combine(output, "tokenizer.json")))
            throw new FuseSharpException($"{Path.Combine(output, "tokenizer.json")}: already exists", "choose another --out folder, or pass --overwrite");
        if (File.Exists(output)) throw new FuseSharpException($"{output}: is a file", "--out names a folder");
        var trained = TokenizerTrainer.Train(files, resolved, ConsoleProgress.Instance, CliContext.Cancellation);
        trained.Save(output, overwrite);
        var st = trained.Stats;
        double seconds = (st.CountTime + st.TrainTime).TotalSeconds;
        if (st.Notice is not null) Console.Error.WriteLine($"note: {st.Notice}");
        if (json)
        {
            var summary = new JsonObject
            {
                ["out"] = Path.GetFullPath(output),
                ["kind"] = resolved.Kind.ToString(),
                ["vocab_size"] = trained.Vocabulary.Count,
                ["special_tokens"] = new JsonArray([.. resolved.ResolvedSpecialTokens.Select(t => JsonValue.Create(t))]),
                ["base_symbols"] = st.BaseSymbols,
                ["learned_tokens"] = st.LearnedTokens,
                ["input_bytes"] = st.InputBytes,
                ["words"] = st.Words,
                ["unique_words"] = st.UniqueWords,
                ["count_seconds"] = Math.Round(st.CountTime.TotalSeconds, 3),
                ["train_seconds"] = Math.Round(st.TrainTime.TotalSeconds, 3),
                ["mb_per_second"] = Math.Round(st.InputBytes / 1e6 / Math.Max(seconds, 1e-9), 3),
            };
            if (st.EmSteps.Count > 0) summary["final_objective"] = Math.Round(st.EmSteps[^1].Objective, 6);
            Console.Out.WriteLine(summary.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return 0;
        }
        var inv = CultureInfo.InvariantCulture;
        string what = resolved.Kind switch
        {
            TokenizerKind.ByteLevelBpe => "byte-level BPE",
            TokenizerKind.SentencePieceBpe => "SentencePiece BPE",
            _ => "unigram",
        };
        string learned = resolved.Kind == TokenizerKind.Unigram ? "pieces" : "merges";
        Console.Out.WriteLine(string.Create(inv,
            $"trained {what}: {trained.Vocabulary.Count} tokens ({resolved.ResolvedSpecialTokens.Count} special, {(resolved.ByteFallback ? "256 byte, " : "")}{st.BaseSymbols} base, {st.LearnedTokens} {learned})"));
        Console.Out.WriteLine(string.Create(inv,
            $"from {st.InputBytes / 1e6:0.###} MB ({st.Words:N0} words, {st.UniqueWords:N0} distinct) in {seconds:0.##} s ({st.InputBytes / 1e6 / Math.Max(seconds, 1e-9):0.##} MB/s)"));
        Console.Out.WriteLine($"wrote {Path.Combine(output, "tokenizer.json")} and tokenizer_config.json");
        return 0;
    }
}
