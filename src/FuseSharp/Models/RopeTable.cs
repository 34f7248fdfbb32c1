using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models;

/// <summary>
/// cos/sin of every position a forward needs, per model. For plain, linear, llama3 and YaRN scaling the
/// frequencies never change and the table grows with the largest position seen (decoding computes one new row per
/// step). Dynamic NTK and LongRoPE recompute the frequencies from the largest position of each forward, as
/// transformers' dynamic RoPE update does, and the table then covers only that forward's positions. (Keys already
/// in a KV cache keep the rotation they were stored with, as in transformers.)
/// </summary>
internal sealed class RopeTable
{
    private readonly RopeSpec _spec;
    private readonly int _half;
    private float[] _cos = [], _sin = [];
    private int _first, _count;
    private long _regime = long.MinValue;
    private float[] _inv = [];
    private float _attention = 1;

    public RopeTable(RopeSpec spec)
    {
        _spec = spec;
        _half = spec.RotaryDim / 2;
    }

    public int Half => _half;

    /// <summary>Makes positions [<paramref name="minPosition"/>, <paramref name="maxPosition"/>] available.</summary>
    public void Prepare(int minPosition, int maxPosition)
    {
        int length = maxPosition + 1;
        long regime = Regime(length);
        if (regime != _regime)
        {
            (_inv, _attention) = Rope.Frequencies(_spec, length);
            _regime = regime;
            _count = 0;
            _first = 0;
        }
        bool stable = regime == 0;
        int first = stable ? 0 : minPosition;
        if (_count > 0 && first >= _first && maxPosition < _first + _count) return;
        int start = stable && _count > 0 ? _first + _count : first;
        int count = maxPosition + 1 - first;
        if (_cos.Length < count * _half)
        {
            var cos = new float[Math.Max(count, 2 * _count) * _half];
            var sin = new float[cos.Length];
            if (stable) { _cos.AsSpan(0, _count * _half).CopyTo(cos); _sin.AsSpan(0, _count * _half).CopyTo(sin); }
            _cos = cos;
            _sin = sin;
        }
        if (!stable) start = first;
        for (int p = start; p <= maxPosition; p++)
            Rope.CosSin(_inv, _attention, p, _cos.AsSpan((p - first) * _half, _half), _sin.AsSpan((p - first) * _half, _half));
        _first = first;
        _count = count;
    }

    public ReadOnlySpan<float> Cos(int position) => _cos.AsSpan((position - _first) * _half, _half);

    public ReadOnlySpan<float> Sin(int position) => _sin.AsSpan((position - _first) * _half, _half);

    private long Regime(int length)
    {
        var s = _spec.Scaling;
        int original = s is { OriginalMaxPositions: > 0 } ? s.OriginalMaxPositions : _spec.MaxPositions;
        return s?.Kind switch
        {
            RopeScalingKind.Dynamic => length > original ? length : 0,
            RopeScalingKind.LongRope => length > original ? 1 : 0,
            _ => 0,
        };
    }
}
