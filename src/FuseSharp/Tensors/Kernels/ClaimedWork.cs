using System.Runtime.ExceptionServices;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// A parallel kernel call as work items claimed one after the other from a counter (the blocked GEMM's packs and tiles,
/// the matrix-vector path's runs of rows). <see cref="Run"/> queues the helpers and the caller starts on the items at
/// once; it then waits only for items already claimed, so nobody waits for a pool thread to wake up, and a helper that
/// starts after the last claim finds nothing and never touches the call's buffers. The first exception of an item
/// skips the remaining items and is rethrown to the caller.
/// </summary>
internal abstract class ClaimedWork : IThreadPoolWorkItem
{
    private int _claimed, _done;
    private Exception? _error;

    /// <summary>Number of work items.</summary>
    public abstract int Items { get; }

    /// <summary>Runs every item on the calling thread and <paramref name="helpers"/> pool threads; returns once all are done.</summary>
    public void Run(int helpers)
    {
        for (int t = 0; t < helpers; t++) ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        Execute();
        // The caller has run out of items to claim: the rest are in progress on running threads.
        WaitForDone(Items);
        if (_error is { } e) ExceptionDispatchInfo.Throw(e);
    }

    /// <summary>One thread's loop: <see cref="Claim"/> items until none is left, each run through <see cref="Complete"/>.</summary>
    public abstract void Execute();

    /// <summary>The next unclaimed item; <see cref="Items"/> or more when none is left.</summary>
    protected int Claim() => Interlocked.Increment(ref _claimed) - 1;

    /// <summary>Until <paramref name="count"/> items are done (spinning: the items take microseconds).</summary>
    protected void WaitForDone(int count)
    {
        if (Volatile.Read(ref _done) >= count) return;
        var spin = new SpinWait();
        while (Volatile.Read(ref _done) < count) spin.SpinOnce(sleep1Threshold: -1);
    }

    /// <summary>Runs <see cref="Work"/> for a claimed item (nothing once an item has failed), keeps the first failure, counts the item done.</summary>
    protected void Complete(int item, int context)
    {
        try
        {
            if (_error is null) Work(item, context);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _error, e, null);
        }
        Interlocked.Increment(ref _done);
    }

    /// <summary>The work of item <paramref name="item"/>; <paramref name="context"/> is what the claiming loop passes along (a stage, the next item).</summary>
    protected abstract void Work(int item, int context);
}
