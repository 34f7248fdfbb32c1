using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Models.Weights;

/// <summary>
/// A weight as the engine reads it: a name, an F32 or BF16 element type, a shape and a pointer that stays valid
/// while its source is alive. Memory-mapped checkpoints and training arenas both hand out views; nothing is copied.
/// </summary>
public readonly unsafe struct WeightView
{
    public WeightView(string name, DType dtype, Shape shape, byte* pointer)
    {
        if (dtype is not (DType.F32 or DType.BF16)) throw new ArgumentException($"weight '{name}' is {dtype}; views hold F32 or BF16", nameof(dtype));
        Name = name;
        DType = dtype;
        Shape = shape;
        Pointer = pointer;
    }

    public string Name { get; }

    public DType DType { get; }

    public Shape Shape { get; }

    public byte* Pointer { get; }

    public long ElementCount => Shape.ElementCount;

    /// <summary>F32 elements (dtype must be F32), under 2^31.</summary>
    public ReadOnlySpan<float> AsSingles() => new((float*)Pointer, checked((int)ElementCount));

    /// <summary>Raw BF16 elements (dtype must be BF16), under 2^31.</summary>
    public ReadOnlySpan<ushort> AsBFloat16() => new((ushort*)Pointer, checked((int)ElementCount));

    /// <summary>Row <paramref name="row"/> of a 2-D weight converted to F32.</summary>
    public void ReadRow(long row, Span<float> destination)
    {
        long cols = Shape[Shape.Rank - 1];
        if (destination.Length != cols) throw new ArgumentException($"destination has {destination.Length} values, a row of '{Name}' has {cols}", nameof(destination));
        if (DType == DType.F32) new ReadOnlySpan<float>((float*)Pointer + row * cols, (int)cols).CopyTo(destination);
        else BFloat16Conversion.ToSingle(new ReadOnlySpan<ushort>((ushort*)Pointer + row * cols, (int)cols), destination);
    }

    public override string ToString() => $"{Name} {DType} {Shape}";
}

/// <summary>
/// Named weights the engine binds to: a checkpoint (<see cref="SafetensorsWeightSource"/>), tensors in memory such
/// as a training arena's views (<see cref="TensorWeightSource"/>), or anything else that can hand out pointers.
/// </summary>
public interface IWeightSource : IDisposable
{
    /// <summary>Where the weights come from (a path, "memory"), for messages.</summary>
    string Location { get; }

    /// <summary>Every tensor name.</summary>
    IEnumerable<string> Names { get; }

    /// <summary>The stored dtype and shape of a tensor, without touching its data.</summary>
    bool TryDescribe(string name, out DType dtype, out Shape shape);

    /// <summary>A view of a tensor (F32 or BF16; other float types may be converted once by the source).</summary>
    WeightView Get(string name);
}

/// <summary>
/// A safetensors checkpoint (one file, a folder or a sharded index) as weights: F32 and BF16 tensors are views of
/// the memory-mapped files (zero-copy: a BF16 7B model stays 14 GB of page cache, shared between processes); F16
/// and F64 tensors are converted to F32 on first use and kept (they cannot be read in place by the kernels).
/// </summary>
public sealed unsafe class SafetensorsWeightSource : IWeightSource
{
    private readonly SafetensorsModel _model;
    private readonly bool _ownsModel;
    private readonly Dictionary<string, NativeStorage> _converted = new(StringComparer.Ordinal);
    private readonly object _lock = new();

    public SafetensorsWeightSource(SafetensorsModel model, bool ownsModel = true)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _ownsModel = ownsModel;
    }

    /// <summary>Opens the weights of a model folder or file.</summary>
    public static SafetensorsWeightSource Open(string path) => new(SafetensorsModel.Open(path));

    public string Location => _model.Path;

    public IEnumerable<string> Names => _model.Tensors.Select(t => t.Name);

    /// <summary>Bytes converted to F32 copies (F16 checkpoints); 0 when everything is mapped.</summary>
    public long ConvertedBytes { get { lock (_lock) return _converted.Values.Sum(s => s.ByteLength); } }

    public bool TryDescribe(string name, out DType dtype, out Shape shape)
    {
        if (_model.TryGetEntry(name, out var e))
        {
            dtype = e.DType;
            shape = e.Shape;
            return true;
        }
        dtype = default;
        shape = default;
        return false;
    }

    public WeightView Get(string name)
    {
        var t = _model.GetTensor(name);
        if (t.DType is DType.F32 or DType.BF16) return new WeightView(name, t.DType, t.Shape, t.Pointer);
        if (!t.DType.IsFloat())
            throw new ModelLoadException($"{_model.FileOf(name).FilePath}: tensor '{name}' is {t.DType}, not a floating-point type", "the checkpoint does not hold model weights under this name");
        lock (_lock)
        {
            if (!_converted.TryGetValue(name, out var storage))
            {
                storage = new NativeStorage(checked(t.ElementCount * 4), zero: false);
                const long chunk = 1 << 24;
                for (long i = 0; i < t.ElementCount; i += chunk)
                {
                    int n = (int)Math.Min(chunk, t.ElementCount - i);
                    DTypeConversion.ToSingle(t.DType, new ReadOnlySpan<byte>(t.Pointer + i * t.DType.Size(), n * t.DType.Size()), new Span<float>((float*)storage.Pointer + i, n));
                }
                _converted[name] = storage;
            }
            return new WeightView(name, DType.F32, t.Shape, storage.Pointer);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var s in _converted.Values) s.Dispose();
            _converted.Clear();
        }
        if (_ownsModel) _model.Dispose();
    }
}

/// <summary>
/// Weights held as <see cref="Tensor"/>s in memory (F32 or BF16): a freshly initialised model, or a training
/// arena whose named views are wrapped as tensors. Views read the tensors' memory directly, so an optimizer
/// updating the tensors in place is seen by the next forward.
/// </summary>
public sealed unsafe class TensorWeightSource : IWeightSource
{
    private readonly IReadOnlyDictionary<string, Tensor> _tensors;
    private readonly bool _ownsTensors;

    /// <param name="tensors">The tensors by checkpoint name.</param>
    /// <param name="ownsTensors">Dispose the tensors with this source.</param>
    /// <param name="location">A description for messages.</param>
    public TensorWeightSource(IReadOnlyDictionary<string, Tensor> tensors, bool ownsTensors = false, string location = "memory")
    {
        _tensors = tensors ?? throw new ArgumentNullException(nameof(tensors));
        _ownsTensors = ownsTensors;
        Location = location;
    }

    public string Location { get; }

    public IEnumerable<string> Names => _tensors.Keys;

    public bool TryDescribe(string name, out DType dtype, out Shape shape)
    {
        if (_tensors.TryGetValue(name, out var t))
        {
            dtype = t.DType;
            shape = t.Shape;
            return true;
        }
        dtype = default;
        shape = default;
        return false;
    }

    public WeightView Get(string name)
    {
        if (!_tensors.TryGetValue(name, out var t)) throw new ModelLoadException($"{Location}: no tensor '{name}'");
        if (t.DType is not (DType.F32 or DType.BF16)) throw new ModelLoadException($"{Location}: tensor '{name}' is {t.DType}; in-memory weights must be F32 or BF16");
        return new WeightView(name, t.DType, t.Shape, t.Pointer);
    }

    public void Dispose()
    {
        if (!_ownsTensors) return;
        foreach (var t in _tensors.Values) t.Dispose();
    }
}
