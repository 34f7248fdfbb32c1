using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Per-thread pack buffers (pinned, 64-byte aligned), reused across calls so the GEMM hot path does not allocate.
/// A lease takes the thread's cached buffer, or a fresh one when it is too small or already leased (a nested call
/// on the same thread), and gives it back on dispose; the larger of two buffers stays cached.
/// </summary>
internal static unsafe class GemmBuffers
{
    /// <summary>
    /// Which cache a lease draws from: a worker's A block (or the vector path's accumulators), a caller's B slab,
    /// the vector path's gathered vectors, a worker's C block of partial sums, a caller's op(A) packed once.
    /// </summary>
    public enum Slot { A, B, Vector, C, PackedA }

    [ThreadStatic] private static float[]? t_a;
    [ThreadStatic] private static float[]? t_c;
    [ThreadStatic] private static float[]? t_b;
    [ThreadStatic] private static float[]? t_vector;
    [ThreadStatic] private static float[]? t_packedA;

    /// <summary>A buffer of at least <paramref name="floats"/> floats; none (a null pointer) for zero.</summary>
    public static Lease Rent(Slot slot, long floats)
    {
        if (floats <= 0) return default;
        ref float[]? cached = ref Cache(slot);
        var array = cached;
        long needed = floats + 16; // 16 floats: room to round the start up to 64 bytes
        if (array is null || array.Length < needed)
            array = GC.AllocateUninitializedArray<float>(checked((int)Math.Max(needed, 1024)), pinned: true);
        else
            cached = null;
        return new Lease(slot, array);
    }

    private static ref float[]? Cache(Slot slot)
    {
        switch (slot)
        {
            case Slot.A: return ref t_a;
            case Slot.B: return ref t_b;
            case Slot.C: return ref t_c;
            case Slot.PackedA: return ref t_packedA;
            default: return ref t_vector;
        }
    }

    public readonly struct Lease : IDisposable
    {
        private readonly float[]? _array;
        private readonly Slot _slot;

        public Lease(Slot slot, float[] array)
        {
            _slot = slot;
            _array = array;
            nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
            Pointer = (float*)((start + 63) & ~(nint)63);
        }

        /// <summary>64-byte aligned start; valid until dispose (the array is on the pinned heap).</summary>
        public float* Pointer { get; }

        public void Dispose()
        {
            if (_array is null) return;
            ref float[]? cached = ref Cache(_slot);
            if (cached is null || cached.Length < _array.Length) cached = _array;
        }
    }
}
