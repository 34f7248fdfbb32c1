using System.CommandLine;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp fuse ...</c>: the FuseLLM / FuseChat knowledge-fusion pipeline, one subcommand per stage.</summary>
internal static class FuseCommand
{
    public static Command Create()
    {
        var cmd = new Command("fuse", "Knowledge fusion (FuseLLM / FuseChat): run (a whole recipe), split, represent, vocab-map, align, filter-nan, pack, targets (MinCE/AvgCE), train; dtw for checking alignments; inspect for stores.");
        cmd.Subcommands.Add(FuseSplitCommand.Create());
        cmd.Subcommands.Add(FuseRepresentCommand.Create());
        cmd.Subcommands.Add(FuseVocabMapCommand.Create());
        cmd.Subcommands.Add(FuseAlignCommand.Create());
        cmd.Subcommands.Add(FuseDtwCommand.Create());
        cmd.Subcommands.Add(FuseFilterNanCommand.Create());
        cmd.Subcommands.Add(FusePackCommand.Create());
        cmd.Subcommands.Add(FuseFuseCommand.Create());
        cmd.Subcommands.Add(FuseInspectCommand.Create());
        cmd.Subcommands.Add(FuseTrainCommand.Create());
        cmd.Subcommands.Add(FuseRunCommand.Create());
        return cmd;
    }
}
