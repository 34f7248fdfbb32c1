using FuseSharp.Bench;

// One benchmark suite per area, one line each. Each prints its measurements and the ratios the issues ask for,
// against baselines measured in the same run (the machine is shared and noisy: compare ratios, not seconds).
var suites = new Dictionary<string, (string Description, Action<string[]> Run)>(StringComparer.Ordinal)
{
    ["merge"] = ("merge methods on ~0.5B BF16 models vs reading inputs + writing output once; peak RssAnon", MergeBench.Run),

};

if (args.Length == 0 || args[0] is "list" or "-h" or "--help" || !suites.ContainsKey(args[0]))
{
    Console.WriteLine("usage: dotnet run -c Release --project bench/FuseSharp.Bench -- <suite> [options]");
    foreach (var (name, s) in suites) Console.WriteLine($"  {name,-10} {s.Description}");
    return args.Length == 0 || args[0] is "list" or "-h" or "--help" ? 0 : 1;
}
suites[args[0]].Run(args[1..]);
return 0;
