using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// The k largest values of a row with their indices, sorted by descending value (what <c>torch.topk</c> returns
/// with <c>sorted=True</c>). Equal values keep ascending index order; NaN ranks above every number, as in torch.
/// One pass with a size-k min-heap; blocks of 8 values below the current k-th value are skipped with one vector
/// compare, so a 150k-entry row costs little more than reading it.
/// </summary>
public static class TopK
{
    /// <summary>Writes the top <c>k = indices.Length</c> entries of <paramref name="x"/>.</summary>
    /// <exception cref="ArgumentException">k is 0, larger than the row, or the output spans differ in length.</exception>
    public static unsafe void Select(ReadOnlySpan<float> x, Span<int> indices, Span<float> values)
    {
        int k = Validate(x, indices, values);
        // Min-heap on (value, -index): the root is the entry the next candidate must beat.
        Span<float> hv = k <= 256 ? stackalloc float[k] : new float[k];
        Span<int> hi = k <= 256 ? stackalloc int[k] : new int[k];
        int size = 0;
        fixed (float* px = x)
        {
            int n = x.Length, i = 0;
            for (; i < n && size < k; i++) Push(hv, hi, ref size, px[i], i);
            if (Vector256.IsHardwareAccelerated)
            {
                for (; i <= n - 8; i += 8)
                {
                    // A NaN root means the heap holds k NaNs, which nothing later can beat. Otherwise skip the block
                    // unless a value is strictly greater than the root (equal ones lose to its lower index) or NaN.
                    float root = hv[0];
                    if (float.IsNaN(root)) break;
                    var v = Vector256.Load(px + i);
                    if (!Vector256.GreaterThanAny(v, Vector256.Create(root)) && Vector256.EqualsAll(v, v)) continue;
                    for (int j = i; j < i + 8; j++)
                        if (Beats(px[j], j, hv[0], hi[0])) ReplaceRoot(hv, hi, size, px[j], j);
                }
            }
            for (; i < n; i++)
                if (Beats(px[i], i, hv[0], hi[0])) ReplaceRoot(hv, hi, size, px[i], i);
        }
        // Pop ascending into the back of the outputs: descending order.
        for (int o = k - 1; o >= 0; o--)
        {
            values[o] = hv[0];
            indices[o] = hi[0];
            size--;
            hv[0] = hv[size];
            hi[0] = hi[size];
            SiftDown(hv, hi, size, 0);
        }
    }

    /// <summary>The scalar reference: a full stable sort by (value desc, index asc).</summary>
    public static void SelectReference(ReadOnlySpan<float> x, Span<int> indices, Span<float> values)
    {
        int k = Validate(x, indices, values);
        var order = Enumerable.Range(0, x.Length).ToArray();
        var copy = x.ToArray();
        Array.Sort(order, (a, b) => Beats(copy[a], a, copy[b], b) ? -1 : Beats(copy[b], b, copy[a], a) ? 1 : 0);
        for (int i = 0; i < k; i++)
        {
            indices[i] = order[i];
            values[i] = copy[order[i]];
        }
    }

    /// <summary>True when (a, ia) ranks before (b, ib): NaN first, then larger value, then lower index.</summary>
    private static bool Beats(float a, int ia, float b, int ib)
    {
        bool na = float.IsNaN(a), nb = float.IsNaN(b);
        if (na != nb) return na;
        if (!na && a != b) return a > b;
        return ia < ib;
    }

    private static void Push(Span<float> hv, Span<int> hi, ref int size, float v, int idx)
    {
        int c = size++;
        hv[c] = v;
        hi[c] = idx;
        while (c > 0)
        {
            int p = (c - 1) / 2;
            if (!Beats(hv[p], hi[p], hv[c], hi[c])) break; // parent must rank below child in a min-heap
            (hv[p], hv[c]) = (hv[c], hv[p]);
            (hi[p], hi[c]) = (hi[c], hi[p]);
            c = p;
        }
    }

    private static void ReplaceRoot(Span<float> hv, Span<int> hi, int size, float v, int idx)
    {
        hv[0] = v;
        hi[0] = idx;
        SiftDown(hv, hi, size, 0);
    }

    private static void SiftDown(Span<float> hv, Span<int> hi, int size, int c)
    {
        while (true)
        {
            int l = 2 * c + 1, r = l + 1, m = c;
            if (l < size && Beats(hv[m], hi[m], hv[l], hi[l])) m = l;
            if (r < size && Beats(hv[m], hi[m], hv[r], hi[r])) m = r;
            if (m == c) return;
            (hv[m], hv[c]) = (hv[c], hv[m]);
            (hi[m], hi[c]) = (hi[c], hi[m]);
            c = m;
        }
    }

    private static int Validate(ReadOnlySpan<float> x, Span<int> indices, Span<float> values)
    {
        int k = indices.Length;
        if (values.Length != k) throw new ArgumentException($"indices has {k} slots, values has {values.Length}", nameof(values));
        if (k == 0 || k > x.Length) throw new ArgumentException($"k = {k} must be between 1 and the row length {x.Length}", nameof(indices));
        return k;
    }
}
