using System.Diagnostics;

namespace FuseSharp.Tests.Cli;

/// <summary>Runs the real <c>fusesharp</c> CLI (the built FuseSharp.Cli.dll) as a child process, as users and scripts do.</summary>
internal static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args) => RunIn(null, args);

    public static Result RunIn(string? workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "FuseSharp.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["FUSESHARP_DEBUG"] = "0";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"fusesharp {string.Join(' ', args)} did not finish in 2 minutes");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Asserts a failure the way the CLI contract requires: non-zero exit, an <c>error: </c> line on stderr carrying <paramref name="fragment"/>, no stack trace.</summary>
    public static void AssertCleanFailure(Result r, string fragment)
    {
        Xunit.Assert.NotEqual(0, r.ExitCode);
        // Progress lines may come first (a slow machine renders the stage that was running when the error came).
        var lines = r.Stderr.Split('\r', '\n');
        int error = Array.FindIndex(lines, l => l.StartsWith("error: ", StringComparison.Ordinal));
        Xunit.Assert.True(error >= 0, $"no line starts with 'error: ' in:\n{r.Stderr}");
        Xunit.Assert.Contains(fragment, string.Join('\n', lines[error..]), StringComparison.Ordinal);
        Xunit.Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Xunit.Assert.DoesNotContain("Exception", r.Stderr, StringComparison.Ordinal);
    }
}
