using Xunit;

namespace FuseSharp.Tests.Cli;

public class HelpTests
{
    [Fact]
    public void Help_NamesTheLauncher_NotTheAssembly()
    {
        var r = CliRunner.Run("merge", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("fusesharp merge <CONFIG>", r.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("FuseSharp.Cli", r.Stdout, StringComparison.Ordinal);
    }
}
