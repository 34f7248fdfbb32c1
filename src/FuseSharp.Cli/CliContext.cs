using System.CommandLine;
using FuseSharp.Tensors;

namespace FuseSharp.Cli;

/// <summary>
/// What every command shares: the global options, Ctrl-C handling, and the one place that turns exceptions
/// into a message on stderr and an exit code (never a stack trace unless FUSESHARP_DEBUG=1).
/// </summary>
internal static class CliContext
{
    /// <summary>Exit code for bad input or a failed operation (the message says which).</summary>
    public const int ErrorExit = 1;

    /// <summary>Exit code after Ctrl-C (128 + SIGINT, as shells report it).</summary>
    public const int CancelledExit = 130;

    /// <summary>Exit code for a bug in FuseSharp itself.</summary>
    public const int InternalErrorExit = 70;

    private static readonly CancellationTokenSource Cts = new();

    public static readonly Option<int> ThreadsOption = new("--threads")
    {
        Description = "Worker threads (default: all cores).",
        Recursive = true,
    };

    /// <summary>Cancelled on the first Ctrl-C; long operations poll it and clean up (no partial output).</summary>
    public static CancellationToken Cancellation => Cts.Token;

    public static int Invoke(RootCommand root, string[] args)
    {
        Console.CancelKeyPress += (_, e) =>
        {
            if (Cts.IsCancellationRequested) return; // second Ctrl-C: let the process die
            e.Cancel = true;
            Cts.Cancel();
            Console.Error.WriteLine("\ninterrupted: stopping and cleaning up (Ctrl-C again to kill)");
        };
        var parse = root.Parse(args);
        var threads = parse.GetValue(ThreadsOption);
        if (threads < 0)
        {
            Console.Error.WriteLine("error: --threads must be positive");
            return ErrorExit;
        }
        Parallelism.MaxThreads = threads;
        return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    /// <summary>Runs a command body, mapping failures to a message on stderr and an exit code.</summary>
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled; no output was written");
            return CancelledExit;
        }
        catch (FuseSharpException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            if (e.Hint is not null) Console.Error.WriteLine($"  hint: {e.Hint}");
            PrintTrace(e);
            return ErrorExit;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            PrintTrace(e);
            return ErrorExit;
        }
        catch (OutOfMemoryException e)
        {
            Console.Error.WriteLine("error: out of memory; try fewer --threads or a smaller batch / block size");
            PrintTrace(e);
            return ErrorExit;
        }
#pragma warning disable CA1031 // the CLI boundary: every other failure is a FuseSharp bug, reported without a trace
        catch (Exception e)
#pragma warning restore CA1031
        {
            Console.Error.WriteLine($"error: internal error ({e.GetType().Name}): {e.Message}");
            Console.Error.WriteLine("  hint: this is a bug in FuseSharp; rerun with FUSESHARP_DEBUG=1 for the stack trace and report it");
            PrintTrace(e);
            return InternalErrorExit;
        }
    }

    private static void PrintTrace(Exception e)
    {
        if (Environment.GetEnvironmentVariable("FUSESHARP_DEBUG") is "1" or "true") Console.Error.WriteLine(e);
    }
}
