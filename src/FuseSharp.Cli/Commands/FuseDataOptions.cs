using System.CommandLine;
using FuseSharp.Fusion;
using FuseSharp.Fusion.Report;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;

namespace FuseSharp.Cli.Commands;

/// <summary>The input options the dataset stages share (filter-nan, pack, fuse): --target with --aligned, or --dataset.</summary>
internal sealed class FuseDataOptions
{
    public Option<string?> Target { get; } = new("--target") { Description = "The target model's representation store (fuse represent)." };

    public Option<string[]> Aligned { get; } = new("--aligned") { Description = "An aligned store per source (fuse align), in candidate order; repeat the option.", AllowMultipleArgumentsPerToken = true };

    public Option<string?> Dataset { get; } = new("--dataset") { Description = "A dataset store (the output of filter-nan or pack) instead of --target/--aligned." };

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(Target);
        cmd.Options.Add(Aligned);
        cmd.Options.Add(Dataset);
    }

    public FusionDataset Open(ParseResultAccessor pr)
    {
        var dataset = pr.Get(Dataset);
        var target = pr.Get(Target);
        var aligned = pr.Get(Aligned) ?? [];
        if (dataset is not null)
        {
            if (target is not null || aligned.Length > 0) throw new FuseSharpException("give either --dataset or --target/--aligned, not both");
            return FusionDataset.FromDataset(StoreReader.Open(dataset));
        }
        if (target is null) throw new FuseSharpException("no input", "give --target STORE --aligned STORE [--aligned STORE ...], or --dataset STORE");
        return FusionDataset.Join(StoreReader.Open(target), aligned.Select(a => StoreReader.Open(a)).ToList());
    }

    /// <summary>Writes the stage report next to the output and prints its summary on stderr.</summary>
    public static void Finish(StageReport report, string outFolder)
    {
        report.Write(Path.Combine(outFolder, $"{report.Stage}-report"));
        Console.Error.Write(report.Summary());
        Console.Error.WriteLine($"{report.Stage}: done -> {outFolder} (report: {report.Stage}-report.html)");
    }
}

/// <summary>A typed view of parsed values (keeps command bodies independent of System.CommandLine).</summary>
internal sealed class ParseResultAccessor(ParseResult result)
{
    public T? Get<T>(Option<T> option) => result.GetValue(option);
}
