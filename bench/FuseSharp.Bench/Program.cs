using FuseSharp.Bench;

// One benchmark suite per area, one line each. Each prints its measurements and the ratios the issues ask for,
// against baselines measured in the same run (the machine is shared and noisy: compare ratios, not seconds).
var suites = new Dictionary<string, (string Description, Action<string[]> Run)>(StringComparer.Ordinal)
{
    ["io"] = ("safetensors: header-only open, BF16->F32 read vs memory bandwidth, write vs plain file write", IoBench.Run),
    ["tokenize"] = ("tokenizers: single-thread MB/s (GPT-2 BPE, Llama-2 SentencePiece, others), batch scaling", TokenizationBench.Run),
    ["chat"] = ("chat-template rendering: conversations/s, ratio to a hand-written formatter, batch scaling", ChatTemplateBench.Run),
    ["gemm"] = ("GEMM/GEMV rates vs the machine's FMA peak and memory bandwidth (issue 5)", GemmBench.Run),
    ["forward"] = ("transformer engine: forward tokens/s vs GEMM rate, decode vs memory bandwidth, BF16 stays mapped", ForwardBench.Run),
    ["fusion"] = ("fusion data: DTW tokens/s (reference vs full vs banded), MinED 50k x 32k map, bytes per stored position", FusionBench.Run),
    ["train"] = ("training step: tokens/s and FLOP/s (6 x params x tokens) vs GEMM rate, with and without gradient checkpointing, memory", TrainBench.Run),
    ["merge"] = ("merge methods on ~0.5B BF16 models vs reading inputs + writing output once; peak RssAnon", MergeBench.Run),
    ["toktrain"] = ("tokenizer training: MB/s on tinyshakespeare (byte-level BPE, SentencePiece BPE, unigram), counting scaling, merge loop vs recount", TokenizerTrainingBench.Run),
};

if (args.Length == 0 || args[0] is "list" or "-h" or "--help" || !suites.ContainsKey(args[0]))
{
    Console.WriteLine("usage: dotnet run -c Release --project bench/FuseSharp.Bench -- <suite> [options]");
    foreach (var (name, s) in suites) Console.WriteLine($"  {name,-10} {s.Description}");
    return args.Length == 0 || args[0] is "list" or "-h" or "--help" ? 0 : 1;
}
suites[args[0]].Run(args[1..]);
return 0;
