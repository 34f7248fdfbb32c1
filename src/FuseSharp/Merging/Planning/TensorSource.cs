using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Planning;

/// <summary>
/// An input tensor as a merge method sees it: a logical shape and elements read as F32 on demand, by range.
/// Behind it is a memory-mapped safetensors tensor, possibly viewed through a sub-matrix cut or a row
/// remapping (embedding rectification, tokenizer permutation). Reads are thread-safe and allocate nothing.
/// </summary>
public abstract class TensorSource
{
    protected TensorSource(Shape shape) => Shape = shape;

    /// <summary>The logical shape.</summary>
    public Shape Shape { get; }

    public long Count => Shape.ElementCount;

    /// <summary>Rows and columns when the tensor is read as a matrix: 2-D as is, 1-D as one row, N-D as [d0, rest].</summary>
    public (long Rows, long Cols) Matrix => Shape.Rank switch
    {
        0 => (1, 1),
        1 => (1, Shape[0]),
        _ => (Shape[0], Count / Math.Max(1, Shape[0])),
    };

    /// <summary>Effectively computes <c>destination[i] = (float)this[start + i]</c> over the flattened logical tensor.</summary>
    public abstract void Read(long start, Span<float> destination);

    /// <summary>One element (for sampling).</summary>
    public float ReadAt(long index)
    {
        Span<float> one = stackalloc float[1];
        Read(index, one);
        return one[0];
    }

    /// <summary>
    /// A pointer to the stored BF16 bits of elements [start, start + length) when this source is a whole stored BF16
    /// tensor and the range is one whole grid chunk (<see cref="Kernels.Chunked"/>) that an earlier <see cref="Read"/>
    /// already screened for NaN/Inf, so kernels may decode the bits themselves; otherwise null (use <see cref="Read"/>).
    /// </summary>
    internal virtual unsafe ushort* ScreenedBFloat16(long start, int length) => null;

    /// <summary>Bytes of storage this source reads in total (for the plan).</summary>
    public abstract long StoredBytes { get; }

    /// <summary>"model:tensor" for messages.</summary>
    public abstract string Describe { get; }

    protected void CheckRange(long start, int length)
    {
        if (start < 0 || length < 0 || start > Count - length)
            throw new ArgumentOutOfRangeException(nameof(start), $"{Describe}: elements [{start}, {start + length}) outside {Count}");
    }
}

/// <summary>A tensor stored in a (memory-mapped) safetensors model, read as is.</summary>
public sealed unsafe class StoredTensorSource : TensorSource
{
    private readonly SafetensorsModel _model;
    private readonly string _modelName;
    private Tensor? _view;

    // One bit per whole grid chunk already screened for NaN/Inf, so re-reads in later passes skip the check.
    private readonly ulong[] _screened;

    public StoredTensorSource(SafetensorsModel model, TensorEntry entry, string modelName) : base(entry.Shape)
    {
        _model = model;
        Entry = entry;
        _modelName = modelName;
        _screened = new ulong[(Kernels.Chunked.CountOf(entry.ElementCount) + 63) / 64];
    }

    public TensorEntry Entry { get; }

    public DType DType => Entry.DType;

    public override long StoredBytes => Entry.ByteLength;

    public override string Describe => $"{_modelName}:{Entry.Name}";

    /// <summary>The zero-copy view (maps the file on first use).</summary>
    public Tensor View => _view ??= _model.GetTensor(Entry.Name);

    /// <exception cref="MergeException">The range holds a NaN or infinite value (a corrupt input).</exception>
    public override void Read(long start, Span<float> destination)
    {
        CheckRange(start, destination.Length);
        int size = Entry.DType.Size();
        var bytes = new ReadOnlySpan<byte>(View.Pointer + start * size, destination.Length * size);
        DTypeConversion.ToSingle(Entry.DType, bytes, destination);
        if (!Entry.DType.IsFloat()) return;
        long chunk = GridChunk(start, destination.Length);
        if (chunk >= 0 && (Volatile.Read(ref _screened[chunk >> 6]) & (1UL << (int)(chunk & 63))) != 0) return;
        // One vectorised sum screens for NaN/Inf (a finite sum cannot hide one); only a non-finite sum is inspected.
        if (!float.IsFinite(TensorPrimitives.Sum(destination)))
        {
            int bad = FirstNonFinite(destination);
            if (bad >= 0)
                throw new MergeException($"input {_modelName} has a {(float.IsNaN(destination[bad]) ? "NaN" : "infinite")} value at element {start + bad} of '{Entry.Name}'",
                    null, "the input checkpoint is corrupt or was saved from a diverged run; fix or replace it");
        }
        if (chunk >= 0) Interlocked.Or(ref _screened[chunk >> 6], 1UL << (int)(chunk & 63));
    }

    internal override ushort* ScreenedBFloat16(long start, int length)
    {
        if (Entry.DType != DType.BF16 || start < 0 || start > Count - length) return null;
        long chunk = GridChunk(start, length);
        if (chunk < 0 || (Volatile.Read(ref _screened[chunk >> 6]) & (1UL << (int)(chunk & 63))) == 0) return null;
        return (ushort*)(View.Pointer + start * 2);
    }

    /// <summary>
    /// A pointer to the stored BF16 bits of elements [start, start + length), not screened for NaN/Inf: a kernel that
    /// decodes them must detect non-finite values itself and then <see cref="Read"/> the range (which names the element).
    /// </summary>
    /// <exception cref="InvalidOperationException">The tensor is not stored as BF16.</exception>
    internal ushort* BFloat16Bits(long start, int length)
    {
        if (Entry.DType != DType.BF16) throw new InvalidOperationException($"{Describe} is stored as {Entry.DType}, not BF16");
        CheckRange(start, length);
        return (ushort*)(View.Pointer + start * 2);
    }

    /// <summary>
    /// Records that elements [start, start + length) were checked finite by a kernel that decoded them from
    /// <see cref="BFloat16Bits"/>, so later reads of that grid chunk skip the screen; ranges other than one whole grid chunk are ignored.
    /// </summary>
    internal void MarkScreened(long start, int length)
    {
        long chunk = start < 0 || start > Count - length ? -1 : GridChunk(start, length);
        if (chunk >= 0) Interlocked.Or(ref _screened[chunk >> 6], 1UL << (int)(chunk & 63));
    }

    /// <summary>The grid chunk that [start, start + length) is exactly (<see cref="Kernels.Chunked"/>), or -1.</summary>
    private long GridChunk(long start, int length) =>
        start % Kernels.Chunked.Size == 0 && (length == Kernels.Chunked.Size || start + length == Count) ? start / Kernels.Chunked.Size : -1;

    private static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return -1;
    }

    /// <summary>The raw bytes of elements [start, start + count), as stored (for copy-only tensors).</summary>
    public ReadOnlySpan<byte> RawBytes(long start, int count)
    {
        int size = Entry.DType.Size();
        return new ReadOnlySpan<byte>(View.Pointer + start * size, count * size);
    }
}

/// <summary>
/// A matrix viewed with rows remapped: logical row r is row <c>map[r]</c> of the inner matrix, or, where
/// <c>map[r] &lt; 0</c>, the default row <c>defaults[-map[r] - 1]</c>; logical columns are the first
/// <c>cols</c> inner columns. Covers the common sub-matrix cut (identity map, fewer rows/cols), padding with a
/// mean row (WIDEN), and tokenizer permutations. Default rows are computed on first read.
/// </summary>
public sealed class RowMappedSource : TensorSource
{
    private readonly StoredTensorSource _inner;
    private readonly int[]? _map;
    private readonly IReadOnlyList<Func<float[]>> _defaults;
    private readonly Lazy<float[]>[] _defaultRows;
    private readonly long _innerCols;

    /// <param name="inner">A 2-D stored tensor.</param>
    /// <param name="rows">Logical rows.</param>
    /// <param name="cols">Logical columns (at most the inner column count).</param>
    /// <param name="map">Inner row per logical row (negative: a default row); null = identity.</param>
    /// <param name="defaults">Producers of the default rows (each of length <paramref name="cols"/>).</param>
    /// <param name="description">What this view is (for messages and the report).</param>
    public RowMappedSource(StoredTensorSource inner, long rows, long cols, int[]? map, IReadOnlyList<Func<float[]>>? defaults, string description)
        : base(new Shape(rows, cols))
    {
        if (inner.Shape.Rank != 2) throw new ArgumentException("row mapping needs a 2-D tensor", nameof(inner));
        if (cols > inner.Shape[1]) throw new ArgumentOutOfRangeException(nameof(cols));
        if (map is not null && map.Length != rows) throw new ArgumentException("map length differs from rows", nameof(map));
        if (map is null && rows > inner.Shape[0]) throw new ArgumentOutOfRangeException(nameof(rows));
        _inner = inner;
        _map = map;
        _defaults = defaults ?? [];
        _defaultRows = _defaults.Select(f => new Lazy<float[]>(f, LazyThreadSafetyMode.ExecutionAndPublication)).ToArray();
        _innerCols = inner.Shape[1];
        Mapping = description;
    }

    /// <summary>The stored tensor behind this view.</summary>
    public StoredTensorSource Inner => _inner;

    /// <summary>What the view does ("rows 0..63 of 72", "tokenizer permutation").</summary>
    public string Mapping { get; }

    public override long StoredBytes => _inner.StoredBytes;

    public override string Describe => $"{_inner.Describe} ({Mapping})";

    public override void Read(long start, Span<float> destination)
    {
        CheckRange(start, destination.Length);
        long cols = Shape[1];
        int done = 0;
        while (done < destination.Length)
        {
            long pos = start + done;
            long r = pos / cols, c = pos % cols;
            int n = (int)Math.Min(cols - c, destination.Length - done);
            var dst = destination.Slice(done, n);
            int src = _map is null ? (int)r : _map[r];
            if (src >= 0) _inner.Read(src * _innerCols + c, dst);
            else _defaultRows[-src - 1].Value.AsSpan((int)c, n).CopyTo(dst);
            done += n;
        }
    }

    /// <summary>The mean of the rows of a 2-D stored tensor, over its first <paramref name="cols"/> columns (FP64 sums).</summary>
    public static float[] MeanRow(StoredTensorSource inner, long cols)
    {
        long rows = inner.Shape[0], innerCols = inner.Shape[1];
        var sum = new double[cols];
        var row = new float[cols];
        for (long r = 0; r < rows; r++)
        {
            inner.Read(r * innerCols, row);
            for (int c = 0; c < cols; c++) sum[c] += row[c];
        }
        var mean = new float[cols];
        for (int c = 0; c < cols; c++) mean[c] = rows == 0 ? 0f : (float)(sum[c] / rows);
        return mean;
    }
}
