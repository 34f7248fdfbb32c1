using System.Diagnostics;
using System.Runtime.InteropServices;
using FuseSharp.Tensors;

namespace FuseSharp.Training;

/// <summary>One named tensor inside a <see cref="TensorArena"/>: its shape and where its elements start.</summary>
/// <param name="Name">The tensor's name (for parameters: the checkpoint name).</param>
/// <param name="Shape">Row-major shape.</param>
/// <param name="Offset">First element, counted in floats from the start of the arena (a multiple of 16: 64-byte aligned).</param>
[DebuggerDisplay("{Name} {Shape}")]
public sealed record ArenaEntry(string Name, Shape Shape, long Offset)
{
    /// <summary>Number of elements.</summary>
    public long Length => Shape.ElementCount;
}

/// <summary>
/// Float32 tensors of one kind (parameters, gradients, AdamW moments, activations) as named views over a single
/// native buffer, in the manner of llm.c's <c>malloc_and_point_parameters</c>: one allocation, views at fixed
/// offsets, and whole-arena operations (zeroing the gradients, the optimizer step, the global norm) are loops
/// over one buffer. Every view starts on a 64-byte boundary (one cache line, one Vector512).
/// Arenas with the same layout (<see cref="CreateLike"/>) line up element for element.
/// </summary>
public sealed unsafe class TensorArena : IDisposable
{
    private const int AlignFloats = 16;

    private readonly Dictionary<string, int> _index;
    private NativeStorage? _storage;

    private TensorArena(IReadOnlyList<ArenaEntry> entries, long totalLength)
    {
        Entries = entries;
        TotalLength = totalLength;
        _index = new Dictionary<string, int>(entries.Count, StringComparer.Ordinal);
        for (int i = 0; i < entries.Count; i++) _index[entries[i].Name] = i;
        _storage = new NativeStorage(checked(totalLength * sizeof(float)), zero: true);
    }

    /// <summary>The tensors in layout order.</summary>
    public IReadOnlyList<ArenaEntry> Entries { get; }

    /// <summary>Floats in the buffer, alignment padding included (padding stays zero).</summary>
    public long TotalLength { get; }

    /// <summary>Elements of all tensors, padding excluded.</summary>
    public long ElementCount => Entries.Sum(e => e.Length);

    /// <summary>Bytes of the buffer.</summary>
    public long ByteLength => TotalLength * sizeof(float);

    /// <summary>Address of the first float (valid until disposed).</summary>
    public float* Pointer => (float*)(_storage ?? throw new ObjectDisposedException(nameof(TensorArena))).Pointer;

    /// <summary>A zeroed arena holding <paramref name="layout"/> in the order given.</summary>
    /// <exception cref="ArgumentException">A name appears twice.</exception>
    public static TensorArena Create(IEnumerable<(string Name, Shape Shape)> layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var entries = new List<ArenaEntry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var (name, shape) in layout)
        {
            if (!names.Add(name)) throw new ArgumentException($"tensor '{name}' appears twice in the arena layout", nameof(layout));
            entries.Add(new ArenaEntry(name, shape, offset));
            offset = checked(offset + (shape.ElementCount + AlignFloats - 1) / AlignFloats * AlignFloats);
        }
        return new TensorArena(entries, offset);
    }

    /// <summary>A zeroed arena with the same layout (gradients for parameters, AdamW moments).</summary>
    public TensorArena CreateLike() => new(Entries, TotalLength);

    public int Count => Entries.Count;

    public bool Contains(string name) => _index.ContainsKey(name);

    /// <summary>The position of <paramref name="name"/> in <see cref="Entries"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    public int IndexOf(string name) =>
        _index.TryGetValue(name, out var i) ? i : throw new KeyNotFoundException($"no tensor '{name}' in the arena");

    /// <summary>The elements of tensor <paramref name="index"/> (a tensor must have under 2^31 elements).</summary>
    public Span<float> Span(int index)
    {
        var e = Entries[index];
        if (e.Length > int.MaxValue) throw new InvalidOperationException($"tensor '{e.Name}' has {e.Length} elements, too many for one span");
        return new Span<float>(Pointer + e.Offset, (int)e.Length);
    }

    /// <summary>The elements of tensor <paramref name="name"/>.</summary>
    public Span<float> Span(string name) => Span(IndexOf(name));

    /// <summary>A <see cref="Tensor"/> view of tensor <paramref name="name"/> (does not own memory; valid while the arena lives).</summary>
    public Tensor View(string name)
    {
        var e = Entries[IndexOf(name)];
        return new Tensor(DType.F32, e.Shape, _storage ?? throw new ObjectDisposedException(nameof(TensorArena)), e.Offset * sizeof(float), ownsStorage: false);
    }

    /// <summary>Zeroes the whole buffer in one call (zero-grad).</summary>
    public void Clear() => NativeMemory.Clear(Pointer, (nuint)ByteLength);

    /// <summary>Copies every element of <paramref name="source"/>, which must have the same layout.</summary>
    public void CopyFrom(TensorArena source)
    {
        ArgumentNullException.ThrowIfNull(source);
        RequireSameLayout(source);
        Buffer.MemoryCopy(source.Pointer, Pointer, ByteLength, ByteLength);
    }

    /// <summary>True when <paramref name="other"/> has the same names, shapes and offsets.</summary>
    public bool HasSameLayout(TensorArena other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (ReferenceEquals(other.Entries, Entries)) return true;
        if (other.Count != Count || other.TotalLength != TotalLength) return false;
        for (int i = 0; i < Count; i++)
            if (other.Entries[i] != Entries[i]) return false;
        return true;
    }

    /// <exception cref="ArgumentException">The layouts differ.</exception>
    public void RequireSameLayout(TensorArena other)
    {
        if (!HasSameLayout(other)) throw new ArgumentException("the two arenas have different layouts", nameof(other));
    }

    public override string ToString() => $"TensorArena({Count} tensors, {ElementCount} elements)";

    public void Dispose()
    {
        _storage?.Dispose();
        _storage = null;
    }
}
