using System.CommandLine;
using FuseSharp.Cli;
using FuseSharp.Cli.Commands;

// The `fusesharp` commands: one file each under Commands/, one line each here.
var root = new RootCommand("FuseSharp: merge and fuse large language models (mergekit-compatible merging, FuseLLM/FuseChat knowledge fusion, a CPU transformer engine).");
root.HelpName = "fusesharp"; // the launcher's name in usage lines, not the assembly's (FuseSharp.Cli)
root.Options.Add(CliContext.ThreadsOption);
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(ChatTemplateCommand.Create());
root.Subcommands.Add(ForwardCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(InitModelCommand.Create());
root.Subcommands.Add(FuseCommand.Create());
root.Subcommands.Add(MergeCommand.Create());
root.Subcommands.Add(TokenizerCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
return CliContext.Invoke(root, args);
