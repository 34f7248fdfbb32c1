using FuseSharp.Tensors;

namespace FuseSharp.Models;

/// <summary>Named scratch buffers of a model's forward, grown on demand and reused across calls (decoding allocates nothing).</summary>
internal sealed unsafe class Workspace : IDisposable
{
    private readonly Dictionary<string, NativeStorage> _buffers = new(StringComparer.Ordinal);

    public float* Floats(string name, long count) => (float*)Bytes(name, checked(count * sizeof(float)));

    public int* Ints(string name, long count) => (int*)Bytes(name, checked(count * sizeof(int)));

    private byte* Bytes(string name, long bytes)
    {
        if (!_buffers.TryGetValue(name, out var s) || s.ByteLength < bytes)
        {
            s?.Dispose();
            s = new NativeStorage(Math.Max(bytes, 64), zero: false);
            _buffers[name] = s;
        }
        return s.Pointer;
    }

    /// <summary>Bytes held by all buffers.</summary>
    public long Bytes() => _buffers.Values.Sum(b => b.ByteLength);

    public void Dispose()
    {
        foreach (var b in _buffers.Values) b.Dispose();
        _buffers.Clear();
    }
}
