using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Methods;

/// <summary>A long-indexed F32 work buffer in native memory (freed when the tensor is done).</summary>
public sealed unsafe class FloatBuffer : IDisposable
{
    private readonly NativeStorage _storage;

    internal FloatBuffer(long length, bool zero)
    {
        Length = length;
        _storage = new NativeStorage(checked(length * sizeof(float)), zero);
    }

    public long Length { get; }

    /// <summary>Elements [start, start + length).</summary>
    public Span<float> Slice(long start, int length)
    {
        if (start < 0 || length < 0 || start > Length - length) throw new ArgumentOutOfRangeException(nameof(start));
        return new Span<float>((float*)_storage.Pointer + start, length);
    }

    public void Dispose() => _storage.Dispose();
}

/// <summary>
/// Everything a method needs to merge one tensor: the planned <see cref="Task"/> (inputs, base, parameters),
/// the <see cref="Output"/> to write, a place for <see cref="Diagnostics"/>, counter-based randomness keyed by
/// (seed, tensor name, model index), work buffers, and the cancellation token (checked between chunks).
/// </summary>
public sealed class TensorMergeContext : IDisposable
{
    private readonly List<FloatBuffer> _buffers = [];

    public TensorMergeContext(TensorTask task, TensorOutput output, long seed, CancellationToken cancellation)
    {
        Task = task;
        Output = output;
        Seed = seed;
        Cancellation = cancellation;
        Diagnostics = new TensorDiagnostics(task.Inputs.Select(i => i.ModelName).ToList());
    }

    public TensorTask Task { get; }

    public TensorOutput Output { get; }

    public TensorDiagnostics Diagnostics { get; }

    public long Seed { get; }

    public CancellationToken Cancellation { get; }

    public long Count => Task.Count;

    /// <summary>The random stream of <paramref name="input"/> for this tensor: the same for any thread count or order.</summary>
    public CounterRandom Random(TaskInput input) => new(Seed, Task.Name, input.ModelIndex);

    /// <summary>A work buffer of <paramref name="length"/> F32 values, freed after the tensor (count it in <see cref="IMergeMethod.WorkspaceBytes"/>).</summary>
    public FloatBuffer Allocate(long length, bool zero = false)
    {
        var b = new FloatBuffer(length, zero);
        _buffers.Add(b);
        return b;
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
    }
}
