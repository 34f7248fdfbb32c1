using System.Runtime.ExceptionServices;
using FuseSharp.Tensors;

namespace FuseSharp.Fusion;

/// <summary>Runs independent work items (a stage's parts, chunks of vocabulary keys) on all cores and reports the first failure as itself, not wrapped.</summary>
internal static class FusionParallel
{
    public static void ForEach<T>(IEnumerable<T> items, Action<T> body, CancellationToken cancel)
    {
        var options = Parallelism.Options;
        options.CancellationToken = cancel;
        try
        {
            Parallel.ForEach(items, options, body);
        }
        catch (AggregateException e)
        {
            var first = e.Flatten().InnerExceptions.FirstOrDefault(x => x is FuseSharpException) ?? e.Flatten().InnerExceptions[0];
            ExceptionDispatchInfo.Capture(first).Throw();
        }
    }
}
