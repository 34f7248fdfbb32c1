using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Kernels;

/// <summary>Task vectors for the SCE kernels: model i's <c>Δ_i</c> and the base, by element index within a chunk.</summary>
internal interface ITaskVectors
{
    /// <summary>What <see cref="Delta"/> needs of the base at elements j..j+7 (decoded once for all models; nothing for rows).</summary>
    Vector256<float> Base(int j);

    /// <summary>Δ_i of elements j..j+7, given <see cref="Base"/>(j).</summary>
    Vector256<float> Delta(int i, int j, Vector256<float> b8);

    /// <summary>Δ_i of elements j.. as a <see cref="Vector{T}"/> of any width (rows only; the vector kernels use <see cref="Delta"/>).</summary>
    Vector<float> LoadVector(int i, int j);

    /// <summary>Δ_i of element j.</summary>
    float At(int i, int j);

    /// <summary>The base of elements j..j+7 for the output: from the chunk's base buffer <paramref name="b"/> (rows) or <paramref name="b8"/>.</summary>
    Vector256<float> Output(ref float b, int j, Vector256<float> b8);

    /// <summary>Writes Δ_i of elements [from, to) to <c>d[i]</c> and the base to <paramref name="b"/> (nothing for rows, which are these already).</summary>
    void Materialize(float[][] d, Span<float> b, int from, int to);
}

/// <summary>Task vectors already in F32 rows (<c>d[i]</c>), the base in the chunk's base buffer.</summary>
internal readonly struct RowDeltas(float[][] d) : ITaskVectors
{
    public Vector256<float> Base(int j) => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Delta(int i, int j, Vector256<float> b8) => Vector256.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(d[i]), (nuint)j);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector<float> LoadVector(int i, int j) => new(d[i], j);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float At(int i, int j) => d[i][j];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Output(ref float b, int j, Vector256<float> b8) => Vector256.LoadUnsafe(ref b, (nuint)j);

    public void Materialize(float[][] rows, Span<float> b, int from, int to) { }
}

/// <summary>
/// Task vectors of stored BF16 tensors, <c>Δ_i = x_i − b</c> decoded from their bits in registers (exact widening, then the
/// F32 subtraction the checked reads and <see cref="TensorPrimitives.Subtract(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>
/// do, so the values are bitwise those of the rows). Vector loads need <see cref="TaskVectorKernels.CanDecodeBFloat16"/>.
/// </summary>
internal readonly unsafe struct BFloat16Deltas(nint[] x, ushort* b) : ITaskVectors
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Base(int j) => BFloat16Conversion.ToSingle8(ref b[j]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Delta(int i, int j, Vector256<float> b8) =>
        BFloat16Conversion.ToSingle8(ref ((ushort*)Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x), i))[j]) - b8;

    public Vector<float> LoadVector(int i, int j) => throw new NotSupportedException("BF16 task vectors are read by the 256-bit kernels");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float At(int i, int j) => BFloat16Conversion.ToSingle(((ushort*)x[i])[j]) - BFloat16Conversion.ToSingle(b[j]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Output(ref float unused, int j, Vector256<float> b8) => b8;

    public void Materialize(float[][] d, Span<float> bufferForBase, int from, int to)
    {
        for (int i = 0; i < x.Length; i++)
            for (int j = from; j < to; j++) d[i][j] = At(i, j);
        if (bufferForBase.IsEmpty) return;
        for (int j = from; j < to; j++) bufferForBase[j] = BFloat16Conversion.ToSingle(b[j]);
    }
}

/// <summary>
/// A task's base and inputs when every one is a stored BF16 tensor read as is: the bits of a chunk for kernels that
/// decode them (<see cref="BFloat16Deltas"/>, <see cref="TaskVectorKernels.AbsoluteDifferenceBFloat16"/>, WIDEN's
/// statistics and weighting), and the screened marks that let later passes skip the NaN/Inf screen. The one eligibility
/// check and screened bookkeeping for every method that decodes BF16 in its kernels; whether a kernel can run on this
/// machine (e.g. <see cref="TaskVectorKernels.CanDecodeBFloat16"/>) is the kernel's caller's question.
/// </summary>
internal sealed unsafe class StoredBFloat16
{
    private readonly StoredTensorSource _base;
    private readonly StoredTensorSource[] _inputs;

    private StoredBFloat16(StoredTensorSource b, StoredTensorSource[] inputs)
    {
        _base = b;
        _inputs = inputs;
    }

    /// <summary>Models besides the base.</summary>
    public int Count => _inputs.Length;

    /// <summary>The task's stored BF16 tensors, or null (no base, other dtypes, remapped sources).</summary>
    public static StoredBFloat16? Of(TensorTask task)
    {
        if (task.Base?.Source is not StoredTensorSource { DType: DType.BF16 } b) return null;
        var inputs = task.Inputs.Select(i => i.Source as StoredTensorSource).ToArray();
        return inputs.All(s => s is { DType: DType.BF16 }) ? new StoredBFloat16(b, inputs!) : null;
    }

    /// <summary>The base's bits of elements [start, start + length), not screened for NaN/Inf (the kernel must detect them).</summary>
    public ushort* BaseBits(long start, int length) => _base.BFloat16Bits(start, length);

    /// <summary>Input <paramref name="i"/>'s bits of elements [start, start + length), not screened for NaN/Inf.</summary>
    public ushort* InputBits(int i, long start, int length) => _inputs[i].BFloat16Bits(start, length);

    /// <summary>Reads every tensor whole through the checked path, which names the first NaN/Inf element (after a kernel found a non-finite sum).</summary>
    public void ReadChecked(CancellationToken ct)
    {
        foreach (var source in _inputs.Prepend(_base))
            Chunked.For(source.Count, ct, (_, start, length, sc) => source.Read(start, sc.Get(0, length)));
    }

    /// <summary>The bits of elements [start, start + length), not screened for NaN/Inf (the kernel must detect them).</summary>
    public BFloat16Deltas Bits(long start, int length)
    {
        var x = new nint[_inputs.Length];
        ushort* b = Bits(start, length, x);
        return new BFloat16Deltas(x, b);
    }

    /// <summary>
    /// Points <paramref name="inputs"/> (one entry per input) at every input's bits of elements [start, start + length)
    /// and returns the base's; not screened for NaN/Inf (the kernel must detect them).
    /// </summary>
    public ushort* Bits(long start, int length, Span<nint> inputs)
    {
        for (int i = 0; i < inputs.Length; i++) inputs[i] = (nint)InputBits(i, start, length);
        return BaseBits(start, length);
    }

    /// <summary>
    /// Fills <paramref name="raw"/> (one entry per source) with the bits of a grid chunk that an earlier pass screened in
    /// every one of <paramref name="sources"/> (stored BF16 tensors; any other source has none); false otherwise.
    /// </summary>
    public static bool ScreenedInputs(IReadOnlyList<TensorSource> sources, long start, int length, Span<nint> raw)
    {
        for (int i = 0; i < sources.Count; i++)
            if ((raw[i] = (nint)sources[i].ScreenedBFloat16(start, length)) == 0) return false;
        return true;
    }

    /// <summary>The bits of a grid chunk that an earlier pass screened in every tensor (base and inputs); false otherwise.</summary>
    public bool Screened(long start, int length, out BFloat16Deltas bits)
    {
        bits = default;
        ushort* b = _base.ScreenedBFloat16(start, length);
        if (b is null) return false;
        var x = new nint[_inputs.Length];
        if (!ScreenedInputs(_inputs, start, length, x)) return false;
        bits = new BFloat16Deltas(x, b);
        return true;
    }

    /// <summary>Marks a grid chunk of every tensor screened (its values were found finite).</summary>
    public void MarkScreened(long start, int length)
    {
        _base.MarkScreened(start, length);
        foreach (var s in _inputs) s.MarkScreened(start, length);
    }
}
