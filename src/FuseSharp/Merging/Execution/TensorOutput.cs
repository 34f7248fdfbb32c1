using System.Collections.Concurrent;
using System.Numerics.Tensors;
using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Execution;

/// <summary>Where merged tensors go: the sharded safetensors writer, or memory (tests, in-process merges).</summary>
public interface ITensorSink
{
    /// <summary>Converts F32 values to the declared dtype of <paramref name="name"/> and writes them from <paramref name="elementOffset"/>. Thread-safe.</summary>
    void WriteSingle(string name, ReadOnlySpan<float> values, long elementOffset);

    /// <summary>Writes raw element bytes (for copied non-float tensors). Thread-safe.</summary>
    void WriteBytes(string name, ReadOnlySpan<byte> bytes, long byteOffset);
}

/// <summary>An <see cref="ITensorSink"/> over a <see cref="ShardedSafetensorsWriter"/> (positional writes).</summary>
public sealed class ShardedSink(ShardedSafetensorsWriter writer) : ITensorSink
{
    public void WriteSingle(string name, ReadOnlySpan<float> values, long elementOffset) => writer.WriteSingle(name, values, elementOffset);

    public void WriteBytes(string name, ReadOnlySpan<byte> bytes, long byteOffset) => writer.Write(name, bytes, byteOffset);
}

/// <summary>
/// The output of one tensor as methods write it: ranges of F32 values, each element exactly once, from any
/// thread. It forwards to the sink and keeps, per written range, the count of NaN/Inf values and the sum of
/// squares; <see cref="Complete"/> checks the ranges tile the tensor and sums the statistics in offset order
/// (so they do not depend on thread scheduling).
/// </summary>
public sealed class TensorOutput
{
    private readonly ITensorSink _sink;
    private readonly ConcurrentBag<(long Start, int Length, long NonFinite, double SumSquares, long FirstBad)> _ranges = [];

    private readonly float _limit;

    /// <param name="sink">Where the values go.</param>
    /// <param name="name">The output tensor.</param>
    /// <param name="count">Its element count.</param>
    /// <param name="dtype">The dtype written: values beyond its largest finite value (e.g. 65504 for F16) count as non-finite.</param>
    public TensorOutput(ITensorSink sink, string name, long count, DType dtype = DType.F32)
    {
        _sink = sink;
        Name = name;
        Count = count;
        _limit = dtype switch
        {
            DType.F16 => 65504f,
            DType.BF16 => 3.3895314e38f,
            _ => float.MaxValue,
        };
    }

    public string Name { get; }

    public long Count { get; }

    /// <summary>Writes <paramref name="values"/> as elements [start, start + length).</summary>
    public void Write(long start, ReadOnlySpan<float> values)
    {
        if (start < 0 || start > Count - values.Length)
            throw new ArgumentOutOfRangeException(nameof(start), $"output '{Name}': elements [{start}, {start + values.Length}) outside {Count}");
        long bad = 0, firstBad = -1;
        double sumsq = 0;
        if (values.Length > 0)
        {
            float ss = TensorPrimitives.SumOfSquares(values);
            // A finite sum of squares bounds every |v| by 1.8e19, inside F32's and BF16's range; only F16 needs the maximum.
            if (float.IsFinite(ss) && (_limit > 1e19f || MathF.Abs(TensorPrimitives.MaxMagnitude(values)) <= _limit)) sumsq = ss;
            else
            {
                // Rare path: find the non-finite values (and sum the finite squares in double so nothing overflows).
                for (int i = 0; i < values.Length; i++)
                {
                    float v = values[i];
                    if (!float.IsFinite(v) || MathF.Abs(v) > _limit)
                    {
                        if (firstBad < 0) firstBad = start + i;
                        bad++;
                    }
                    else sumsq += (double)v * v;
                }
            }
        }
        _sink.WriteSingle(Name, values, start);
        _ranges.Add((start, values.Length, bad, sumsq, firstBad));
    }

    /// <summary>Writes raw element bytes (copy-only tensors), counted as written.</summary>
    public void WriteRaw(long startElement, ReadOnlySpan<byte> bytes, int elementSize)
    {
        _sink.WriteBytes(Name, bytes, startElement * elementSize);
        _ranges.Add((startElement, bytes.Length / elementSize, 0, 0, -1));
    }

    /// <summary>Checks every element was written exactly once; returns the statistics.</summary>
    /// <exception cref="InvalidOperationException">A gap or overlap: a bug in the method.</exception>
    public OutputStatistics Complete()
    {
        var ranges = _ranges.OrderBy(r => r.Start).ToList();
        long next = 0, bad = 0, firstBad = -1;
        double sumsq = 0;
        foreach (var r in ranges)
        {
            if (r.Start != next) throw new InvalidOperationException($"output '{Name}': elements written out of order or twice near {next} (next range starts at {r.Start})");
            next += r.Length;
            bad += r.NonFinite;
            sumsq += r.SumSquares;
            if (firstBad < 0 && r.FirstBad >= 0) firstBad = r.FirstBad;
        }
        if (next != Count) throw new InvalidOperationException($"output '{Name}': {next} of {Count} elements written");
        return new OutputStatistics(bad, Math.Sqrt(sumsq), firstBad);
    }
}

/// <summary>What the output of a tensor looked like: non-finite values, L2 norm, first non-finite index (-1 when none).</summary>
public sealed record OutputStatistics(long NonFiniteCount, double Norm, long FirstNonFinite);
