using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FuseSharp.Fusion.Alignment;

/// <summary>
/// Which reference's DTW token alignment to reproduce (spec §4.1). Each fixes a cost function and a traceback tie
/// order; what strings are fed in (raw pieces, or per-token decoded strings as FuseChat v2 ships) is the caller's
/// choice.
/// </summary>
public enum DtwVariant
{
    /// <summary>FuseLLM <c>others.dtw</c>: <c>lev(s − ms, t − mt)</c> (markers removed); ties diag &gt; up &gt; left.</summary>
    FuseLlm,

    /// <summary>FuseChat v1: as FuseLLM, × 0.1 when one stripped string contains the other (the empty string is in every string); ties diag &gt; up &gt; left.</summary>
    FuseChatV1,

    /// <summary>FuseChat v2: as FuseLLM, but when a stripped string is empty <c>lev(s.replace(ms, mt), t)</c>; ties diag &gt; left &gt; up.</summary>
    FuseChatV2,
}

/// <summary>Traceback preference among equal cumulative costs (<c>np.argmin</c> takes the first minimum).</summary>
public enum DtwTieOrder
{
    /// <summary>diag, then up (step back in the blending sequence), then left (step back in the base sequence): FuseLLM, FuseChat v1.</summary>
    DiagUpLeft,

    /// <summary>diag, then left, then up: FuseChat v2.</summary>
    DiagLeftUp,
}

/// <summary>Names and properties of the <see cref="DtwVariant"/>s.</summary>
public static class DtwVariants
{
    public static DtwTieOrder TieOrder(this DtwVariant variant) =>
        variant == DtwVariant.FuseChatV2 ? DtwTieOrder.DiagLeftUp : DtwTieOrder.DiagUpLeft;

    /// <summary>The CLI / JSON name: <c>fusellm</c>, <c>fusechat-v1</c>, <c>fusechat-v2</c>.</summary>
    public static string Name(this DtwVariant variant) => variant switch
    {
        DtwVariant.FuseLlm => "fusellm",
        DtwVariant.FuseChatV1 => "fusechat-v1",
        DtwVariant.FuseChatV2 => "fusechat-v2",
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    };

    /// <summary>Parses a CLI / JSON name (also accepts <c>fusellm_v1</c>, <c>fusechat_v1</c>, <c>fusechat_v2</c>, case-insensitive).</summary>
    public static bool TryParse(string? name, out DtwVariant variant)
    {
        switch (name?.Trim().ToLowerInvariant().Replace('_', '-'))
        {
            case "fusellm" or "fusellm-v1":
                variant = DtwVariant.FuseLlm;
                return true;
            case "fusechat-v1":
                variant = DtwVariant.FuseChatV1;
                return true;
            case "fusechat-v2" or "fusechat-v2-decoded":
                variant = DtwVariant.FuseChatV2;
                return true;
            default:
                variant = default;
                return false;
        }
    }

    /// <summary>
    /// Python's <c>str.replace(old, new)</c> for a non-empty marker; an empty marker (a tokenizer without one) leaves
    /// the string alone. (Python would insert <c>new</c> between every character; the reference never gets there
    /// because its marker table raises first.)
    /// </summary>
    internal static string ReplaceMarker(string s, string marker, string replacement) =>
        marker.Length == 0 || marker == replacement ? s : s.Replace(marker, replacement, StringComparison.Ordinal);
}

/// <summary>
/// The cost matrix of one DTW problem: the cost of aligning blending token i with base token j under a
/// <see cref="DtwVariant"/>, memoized per pair of distinct token strings (a 2048-token text has a few hundred
/// distinct tokens, so most of the n·m cells share a handful of distances). Costs are exact float64 values as the
/// reference computes them: an integer distance, or <c>int * 0.1</c> for FuseChat v1's substring discount.
/// <para>
/// Distances are bit-parallel (Myers) over a problem-local alphabet: the table is filled row by row, so the current
/// row's pattern masks are loaded once per row and each new pair costs one pass over the base string.
/// </para>
/// </summary>
internal sealed class DtwCostMatrix
{
    private readonly DtwVariant _variant;
    private readonly int[] _rowKey;   // blending position -> distinct blending string
    private readonly int[] _colKey;   // base position -> distinct base string
    private readonly int _cols;       // distinct base strings
    // Distinct pair -> cost (or one row's worth, see _rowMemo): int costs (-1 = not computed yet) when every cost is an
    // integer and every path sum fits (FuseLLM, FuseChat v2), else float64 costs (NaN = not computed yet).
    private int[]? _intMemo;          // from DtwBuffers; longer than _memoLength when a kept buffer was reused
    private double[]? _realMemo;
    private readonly int _memoLength;
    private readonly bool _rowMemo;   // too many distinct pairs to keep: memoize the current distinct row only
    private bool _complete;           // every distinct pair computed (ComputeAll)
    private bool _marked;             // every entry not computed yet holds the not-computed marker (see Marked)
    private int _memoRow = -1;

    // Per distinct blending string: marker removed (text, interned code points); marker replaced by the base marker (v2's fallback).
    private readonly string[] _srcStrippedText;
    private readonly int[][] _srcStripped;
    private readonly int[][] _srcHarmonized;

    // Per distinct base string: marker removed (text, interned code points); raw.
    private readonly string[] _tgtStrippedText;
    private readonly int[][] _tgtStripped;
    private readonly int[][] _tgtRaw;

    // Per position (tokens sharing a distinct string may differ in markers): the bytes of text it stands for (TextBytes).
    private readonly int[] _srcBytes;
    private readonly int[] _tgtBytes;

    // Character sets of the stripped strings (interned id mod 64): disjoint sets mean no common character.
    private readonly ulong[] _srcSig;
    private readonly ulong[] _tgtSig;

    // The loaded row pattern (a blending string's stripped or harmonised code points, at most 64): its match masks
    // over the alphabet.
    private readonly ulong[] _peq;
    private int[]? _loaded;

    // FuseChat v2: the base strings that strip to nothing (their costs compare the alternate forms).
    private readonly int[] _emptyColumns;

    // realCosts: keep float64 costs even where integer ones are exact (the plain path the integer table is tested against).
    // Every method that runs once per alignment and loops is compiled fully optimized at once (AggressiveOptimization): a
    // run aligns documents back to back, and tier-0 code (until tiering catches up) made the first alignments 2-4x slower.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public DtwCostMatrix(IReadOnlyList<string> blending, IReadOnlyList<string> @base, DtwVariant variant, string blendingMarker, string baseMarker,
        bool realCosts = false)
    {
        _variant = variant;
        // FuseLLM and FuseChat v1 costs depend on the marker-stripped strings alone, so tokens that differ only in
        // markers ("Ġthe", "the") share a memo row; FuseChat v2's fallback compares raw forms, so it keys by token.
        bool byStripped = variant != DtwVariant.FuseChatV2;
        var srcDistinct = Distinct(blending, byStripped ? blendingMarker : null, out _rowKey);
        var tgtDistinct = Distinct(@base, byStripped ? baseMarker : null, out _colKey);
        _cols = tgtDistinct.Count;
        long cells = (long)srcDistinct.Count * _cols;
        _rowMemo = cells > MaxMemo;

        var alphabet = new Dictionary<int, int>();
        int[] Intern(string text)
        {
            var cps = Levenshtein.CodePoints(text);
            for (int i = 0; i < cps.Length; i++)
            {
                if (!alphabet.TryGetValue(cps[i], out int k)) alphabet[cps[i]] = k = alphabet.Count;
                cps[i] = k;
            }
            return cps;
        }
        _srcStrippedText = new string[srcDistinct.Count];
        _srcStripped = new int[srcDistinct.Count][];
        _srcHarmonized = new int[srcDistinct.Count][];
        for (int u = 0; u < srcDistinct.Count; u++)
        {
            _srcStrippedText[u] = DtwVariants.ReplaceMarker(srcDistinct[u], blendingMarker, "");
            _srcStripped[u] = Intern(_srcStrippedText[u]);
            _srcHarmonized[u] = Intern(DtwVariants.ReplaceMarker(srcDistinct[u], blendingMarker, baseMarker));
        }
        _tgtStrippedText = new string[tgtDistinct.Count];
        _tgtStripped = new int[tgtDistinct.Count][];
        _tgtRaw = new int[tgtDistinct.Count][];
        for (int u = 0; u < tgtDistinct.Count; u++)
        {
            _tgtStrippedText[u] = DtwVariants.ReplaceMarker(tgtDistinct[u], baseMarker, "");
            _tgtStripped[u] = Intern(_tgtStrippedText[u]);
            _tgtRaw[u] = Intern(tgtDistinct[u]);
        }
        _srcBytes = new int[blending.Count];
        for (int i = 0; i < _srcBytes.Length; i++) _srcBytes[i] = TextBytes(blending[i], blendingMarker);
        _tgtBytes = new int[@base.Count];
        for (int j = 0; j < _tgtBytes.Length; j++) _tgtBytes[j] = TextBytes(@base[j], baseMarker);
        _peq = new ulong[alphabet.Count];
        _emptyColumns = variant == DtwVariant.FuseChatV2 ? Enumerable.Range(0, _cols).Where(v => _tgtStripped[v].Length == 0).ToArray() : [];
        _srcSig = _srcStripped.Select(Signature).ToArray();
        _tgtSig = _tgtStripped.Select(Signature).ToArray();

        // A distance is at most the longer string; a path has at most n + m - 1 cells. Integer sums are exact and
        // equal the reference's float64 sums (every partial sum is an integer below 2^53), so the integer table takes
        // the same decisions; below IntInfinity / 2 no sum (nor +inf plus a few costs) can overflow.
        long longest = 1;
        foreach (var a in _srcStripped.Concat(_srcHarmonized).Concat(_tgtStripped).Concat(_tgtRaw)) longest = Math.Max(longest, a.Length);
        IntegerCosts = !realCosts && variant != DtwVariant.FuseChatV1 && (blending.Count + (long)@base.Count) * longest < IntInfinity / 2;
        long memoLength = _rowMemo ? _cols : cells;
        // Uninitialised: ComputeAll overwrites every entry (the usual case), anything else marks them first (Marked).
        _memoLength = (int)memoLength;
        if (IntegerCosts) _intMemo = DtwBuffers.Take<int>(_memoLength);
        else _realMemo = DtwBuffers.Take<double>(_memoLength);
    }

    /// <summary>Every distinct pair's cost is in the memo (<see cref="ComputeAll"/>): the table needs no cost misses.</summary>
    internal bool Complete => _complete;

    /// <summary>+∞ of the integer table: above every path sum, and adding a few costs to it cannot overflow.</summary>
    internal const int IntInfinity = 1 << 30;

    /// <summary>Costs are exact integers kept as <see cref="int"/> (<see cref="Memo{T}"/> with T = int), else float64.</summary>
    internal bool IntegerCosts { get; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong Signature(int[] interned)
    {
        ulong sig = 0;
        foreach (int c in interned) sig |= 1UL << (c & 63);
        return sig;
    }

    /// <summary>Number of blending positions (rows).</summary>
    public int Rows => _rowKey.Length;

    /// <summary>Number of base positions (columns).</summary>
    public int Columns => _colKey.Length;

    /// <summary>Distinct (blending, base) string pairs whose distance has been computed so far.</summary>
    public int PairsComputed { get; private set; }

    /// <summary>Distinct pairs memoized for the whole problem (16 M, 128 MB); beyond, only the current row's (long documents).</summary>
    internal const long MaxMemo = 1L << 24;

    /// <summary>
    /// Starts blending position <paramref name="i"/>'s row and returns the offset of its memo row, to pass to
    /// <see cref="Cost(int, int)"/> for the cells of that row. Rows are visited in order.
    /// </summary>
    public int RowBase(int i)
    {
        int u = _rowKey[i];
        if (!_rowMemo) return u * _cols;
        if (_memoRow != u)
        {
            Mark();
            _memoRow = u;
        }
        return 0;
    }

    /// <summary>Bytes of text blending position <paramref name="i"/> stands for, as its form tells (<see cref="TextBytes"/>; for the band's centre line).</summary>
    public int BlendingBytes(int i) => _srcBytes[i];

    /// <summary>Bytes of text base position <paramref name="j"/> stands for.</summary>
    public int BaseBytes(int j) => _tgtBytes[j];

    /// <summary>
    /// How many UTF-8 bytes of text a token stands for, estimated from its form, so that two tokenizations of the same
    /// text advance alike: byte-level BPE pieces (marker <c>Ġ</c>) spell one byte per character of the GPT-2 byte
    /// alphabet (<c>Ã©</c> is the two bytes of "é", <c>Ċ</c> a newline); SentencePiece pieces spell text, with a
    /// byte-fallback piece <c>&lt;0x0A&gt;</c> one byte; the marker is one byte (a space); other characters count their UTF-8
    /// bytes (decoded strings). Counting characters instead lets the centre line drift by a token per newline or
    /// non-ASCII letter, and a band around a drifted line holds a much dearer path. Only the upper bound depends on it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int TextBytes(string token, string marker)
    {
        bool byteLevel = marker == "Ġ";
        int n = 0;
        for (int k = 0; k < token.Length; k++)
        {
            char ch = token[k];
            if (marker.Length == 1 && ch == marker[0]) n++;
            else if (byteLevel && IsByteAlphabet(ch)) n++;
            else if (!byteLevel && ch == '<' && k + 5 < token.Length && token[k + 1] == '0' && token[k + 2] == 'x' && char.IsAsciiHexDigit(token[k + 3]) && char.IsAsciiHexDigit(token[k + 4]) && token[k + 5] == '>')
            {
                n++;
                k += 5;
            }
            else if (char.IsHighSurrogate(ch) && k + 1 < token.Length && char.IsLowSurrogate(token[k + 1]))
            {
                n += 4;
                k++;
            }
            else n += ch < 0x80 ? 1 : ch < 0x800 ? 2 : 3;
        }
        return n;
    }

    /// <summary>The characters GPT-2's byte-to-unicode map uses for the 256 bytes.</summary>
    private static bool IsByteAlphabet(char ch) => ch is >= '!' and <= '~' or >= '\u00A1' and <= '\u00AC' or >= '\u00AE' and <= '\u0143';

    /// <summary>
    /// The memo (distinct pair -> cost; not computed yet: -1 for int, NaN for double) for the table's inner loop. T is
    /// int when <see cref="IntegerCosts"/>, else double.
    /// </summary>
    internal T[] Memo<T>()
    {
        Marked();
        return RawMemo<T>();
    }

    private T[] RawMemo<T>() => typeof(T) == typeof(int) ? (T[])(object)_intMemo! : (T[])(object)_realMemo!;

    /// <summary>Before the memo is read without <see cref="ComputeAll"/>: its uninitialised entries get the not-computed marker.</summary>
    private void Marked()
    {
        if (!_marked && !_complete) Mark();
    }

    private void Mark()
    {
        if (_intMemo is not null) _intMemo.AsSpan(0, _memoLength).Fill(-1);
        else _realMemo.AsSpan(0, _memoLength).Fill(double.NaN);
        _marked = true;
    }

    /// <summary>Hands the memo to the next alignment on this thread (<see cref="DtwBuffers"/>); the matrix is not used afterwards.</summary>
    internal void ReturnBuffers()
    {
        DtwBuffers.Return(_intMemo);
        DtwBuffers.Return(_realMemo);
        _intMemo = null;
        _realMemo = null;
    }

    internal int[] ColumnKeys => _colKey;

    /// <summary>The cost of blending position i (via its <see cref="RowBase"/>) against base position <paramref name="j"/>.</summary>
    public double Cost(int rowBase, int j)
    {
        Marked();
        if (IntegerCosts)
        {
            int c = _intMemo![rowBase + _colKey[j]];
            return c < 0 ? Miss<int>(rowBase, j) : c;
        }
        double r = _realMemo![rowBase + _colKey[j]];
        return double.IsNaN(r) ? Miss<double>(rowBase, j) : r;
    }

    /// <summary>The cost of a pair not computed yet; memoizes it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal T Miss<T>(int rowBase, int j)
    {
        T c = Value<T>(Compute(_rowMemo ? _memoRow : rowBase / _cols, _colKey[j]));
        Memo<T>()[rowBase + _colKey[j]] = c;
        PairsComputed++;
        return c;
    }

    /// <summary>A packed cost (distance &lt;&lt; 1 | substring discount) as the memo's type.</summary>
    private static T Value<T>(int packed)
    {
        if (typeof(T) == typeof(int)) return (T)(object)(packed >> 1);
        // int * 0.1 as Python computes `dist * w` with w = 0.1 (a float64 product, not dist / 10).
        return (T)(object)((packed & 1) != 0 ? (packed >> 1) * 0.1 : packed >> 1);
    }

    /// <summary>
    /// Computes every distinct pair up front (a no-op for long documents, whose memo is one row): many blending strings
    /// at once against each base string, Myers' recurrence lane-wise in a 256-bit vector: sixteen 16-bit lanes for
    /// patterns of up to 16 symbols (almost every token), four 64-bit lanes for longer ones. The full table needs every
    /// pair anyway, and a pruned one on text of different tokenizer families most of them; pair by pair, the call and
    /// setup per pair cost more than the distance itself.
    /// </summary>
    internal void ComputeAll()
    {
        if (_rowMemo || _complete) return;
        if (IntegerCosts) ComputeAll<int>();
        else ComputeAll<double>();
        _complete = true;
    }

    private void ComputeAll<T>()
    {
        var memo = RawMemo<T>(); // every entry is written below
        int rows = _srcStripped.Length;
        bool v2 = _variant == DtwVariant.FuseChatV2;
        // Lanes: blending strings of 1..16 code points (16-bit lanes) and 17..64 (64-bit lanes). Others, and FuseChat
        // v2's empty base strings (its fallback compares other forms), pair by pair.
        var narrow = new List<int>(rows);
        var wide = new List<int>();
        for (int u = 0; u < rows; u++)
        {
            int length = _srcStripped[u].Length;
            if (length >= 1 && length <= 16 && Vector256.IsHardwareAccelerated) narrow.Add(u);
            else if (length >= 1 && length <= Levenshtein.WordBits && Vector256.IsHardwareAccelerated) wide.Add(u);
            else
                for (int v = 0; v < _cols; v++) Store(memo, u, v, Compute(u, v));
        }
        foreach (int u in narrow.Concat(wide))
            foreach (int v in _emptyColumns) Store(memo, u, v, Compute(u, v));
        PairsComputed += rows * _cols;
        MyersLanes<T, ushort>(memo, narrow);
        MyersLanes<T, ulong>(memo, wide);
    }

    /// <summary>
    /// <see cref="Levenshtein.Myers"/> lane-wise: <c>Vector256&lt;TLane&gt;.Count</c> patterns (each at most as many
    /// symbols as a lane has bits) against the same base string. The carry of <c>(e &amp; pv) + pv</c> out of a lane's top
    /// bit is dropped, as in one word; scores wrap in the lane's width, which holds every distance of a text of at most
    /// <c>TLane.MaxValue</c> symbols (longer texts go pair by pair). FuseChat v1's substring search only runs where the
    /// distance equals the length difference (or for strings with surrogates, see <see cref="Discount"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void MyersLanes<T, TLane>(T[] memo, List<int> lanes)
        where TLane : unmanaged, IBinaryInteger<TLane>, IUnsignedNumber<TLane>
    {
        int width = Vector256<TLane>.Count, bits = Unsafe.SizeOf<TLane>() * 8;
        bool v1 = _variant == DtwVariant.FuseChatV1, v2 = _variant == DtwVariant.FuseChatV2;
        var peq = new TLane[_peq.Length * width]; // per interned character, the lanes' match masks
        Span<TLane> scores = stackalloc TLane[width], pv0 = stackalloc TLane[width], last = stackalloc TLane[width], len = stackalloc TLane[width];
        Span<int> rowOffset = stackalloc int[width];
        ulong maxText = ulong.CreateTruncating(TLane.AllBitsSet);
        for (int g = 0; g < lanes.Count; g += width)
        {
            int k = Math.Min(width, lanes.Count - g);
            ulong surrogateLanes = 0;
            for (int l = 0; l < width; l++)
            {
                // An unused lane runs a one-symbol pattern that matches nothing; its result is ignored.
                var a = l < k ? _srcStripped[lanes[g + l]] : [];
                int m = Math.Max(1, a.Length);
                for (int i = 0; i < a.Length; i++) peq[a[i] * width + l] |= TLane.One << i;
                pv0[l] = TLane.AllBitsSet >>> (bits - m);
                last[l] = TLane.One << (m - 1);
                len[l] = TLane.CreateTruncating(m);
                if (l < k)
                {
                    rowOffset[l] = lanes[g + l] * _cols;
                    if (_srcStrippedText[lanes[g + l]].Length != a.Length) surrogateLanes |= 1UL << l;
                }
            }
            var pvInit = Vector256.Create<TLane>(pv0);
            var lastBit = Vector256.Create<TLane>(last);
            var lengths = Vector256.Create<TLane>(len);
            ref TLane peqRef = ref MemoryMarshal.GetArrayDataReference(peq);
            for (int v = 0; v < _cols; v++)
            {
                var text = _tgtStripped[v];
                if (v2 && text.Length == 0) continue;
                if ((ulong)text.Length > maxText)
                {
                    for (int l = 0; l < k; l++) Store(memo, lanes[g + l], v, Compute(lanes[g + l], v));
                    continue;
                }
                var pv = pvInit;
                var mv = Vector256<TLane>.Zero;
                var score = lengths;
                foreach (int c in text)
                {
                    var e = Vector256.LoadUnsafe(ref peqRef, (nuint)c * (nuint)width);
                    var xv = e | mv;
                    var xh = (((e & pv) + pv) ^ pv) | e;
                    var ph = mv | ~(xh | pv);
                    var mh = pv & xh;
                    // +1 where the last row's horizontal delta is +1, -1 where it is -1 (never both): the masks are all
                    // ones (-1) where the bit is clear.
                    score += Vector256.Equals(ph & lastBit, Vector256<TLane>.Zero) - Vector256.Equals(mh & lastBit, Vector256<TLane>.Zero);
                    ph = (ph << 1) | Vector256<TLane>.One;
                    mh <<= 1;
                    pv = mh | ~(xv | ph);
                    mv = ph & xv;
                }
                score.CopyTo(scores);
                if (!v1)
                {
                    for (int l = 0; l < k; l++) memo[rowOffset[l] + v] = Value<T>(int.CreateTruncating(scores[l]) << 1);
                    continue;
                }
                // Discount candidates: distance = length difference, or strings with surrogates.
                var textLength = Vector256.Create(TLane.CreateTruncating(text.Length));
                ulong candidates = Vector256.Equals(score, Vector256.Max(lengths, textLength) - Vector256.Min(lengths, textLength)).ExtractMostSignificantBits() | surrogateLanes;
                if (_tgtStrippedText[v].Length != text.Length) candidates = ulong.MaxValue;
                for (int l = 0; l < k; l++)
                {
                    int d = int.CreateTruncating(scores[l]);
                    memo[rowOffset[l] + v] = Value<T>((d << 1) | ((candidates >> l & 1) != 0 && Discount(lanes[g + l], v, d) ? 1 : 0));
                }
            }
            for (int l = 0; l < k; l++)
                foreach (int c in _srcStripped[lanes[g + l]]) peq[c * width + l] = TLane.Zero;
        }
    }

    private void Store<T>(T[] memo, int u, int v, int packed) => memo[u * _cols + v] = Value<T>(packed);

    /// <summary>
    /// Per blending position, a lower bound of the cost of every cell of its row. With every pair in the memo
    /// (<see cref="ComputeAll"/>), the row's smallest cost itself; else 0 when some base string costs nothing against it,
    /// else the smallest non-zero cost the variant can produce (1, or 0.1 for FuseChat v1).
    /// </summary>
    public double[] RowFloors() => _complete
        ? PerPosition(_rowKey, MemoFloors(columns: false))
        : Floors(_rowKey, _srcStripped, _srcHarmonized, new ZeroIndex(_tgtStripped, _tgtRaw));

    /// <summary>The same for base positions' columns.</summary>
    public double[] ColumnFloors() => _complete
        ? PerPosition(_colKey, MemoFloors(columns: true))
        : Floors(_colKey, _tgtStripped, _tgtRaw, new ZeroIndex(_srcStripped, _srcHarmonized));

    /// <summary>Per distinct blending (or base) string, its smallest cost against every distinct string of the other side, from the complete memo.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private double[] MemoFloors(bool columns)
    {
        int rows = _memoLength / _cols;
        var floors = new double[columns ? _cols : rows];
        if (columns) floors.AsSpan().Fill(double.PositiveInfinity);
        for (int u = 0; u < rows; u++)
        {
            if (_intMemo is not null)
            {
                var row = _intMemo.AsSpan(u * _cols, _cols);
                if (columns) for (int v = 0; v < row.Length; v++) floors[v] = Math.Min(floors[v], row[v]);
                else floors[u] = System.Numerics.Tensors.TensorPrimitives.Min<int>(row);
            }
            else
            {
                var row = _realMemo.AsSpan(u * _cols, _cols);
                if (columns) System.Numerics.Tensors.TensorPrimitives.Min(floors, row, floors);
                else floors[u] = System.Numerics.Tensors.TensorPrimitives.Min<double>(row);
            }
        }
        return floors;
    }

    private static double[] PerPosition(int[] keys, double[] perDistinct)
    {
        var floors = new double[keys.Length];
        for (int i = 0; i < keys.Length; i++) floors[i] = perDistinct[keys[i]];
        return floors;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private double[] Floors(int[] keys, int[][] stripped, int[][] alternate, ZeroIndex others)
    {
        double nonZero = _variant == DtwVariant.FuseChatV1 ? 0.1 : 1.0;
        bool v2 = _variant == DtwVariant.FuseChatV2;
        var perDistinct = new double[stripped.Length];
        for (int u = 0; u < stripped.Length; u++) perDistinct[u] = others.HasZeroWith(stripped[u], alternate[u], v2) ? 0 : nonZero;
        return PerPosition(keys, perDistinct);
    }

    /// <summary>
    /// Which strings of the other side cost nothing against a given one. A zero cost needs equal marker-stripped
    /// strings; in FuseChat v2, when either side strips to nothing, the comparison is of the alternate forms (the
    /// blending string with its marker harmonised, the raw base string) instead.
    /// </summary>
    private sealed class ZeroIndex
    {
        private readonly HashSet<string> _strippedNonEmpty = new(StringComparer.Ordinal);
        private readonly HashSet<string> _alternateOfEmpty = new(StringComparer.Ordinal);
        private readonly HashSet<string> _alternateAll = new(StringComparer.Ordinal);
        private readonly bool _anyEmpty;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public ZeroIndex(int[][] stripped, int[][] alternate)
        {
            for (int u = 0; u < stripped.Length; u++)
            {
                if (stripped[u].Length > 0) _strippedNonEmpty.Add(Key(stripped[u]));
                else
                {
                    _anyEmpty = true;
                    _alternateOfEmpty.Add(Key(alternate[u]));
                }
                _alternateAll.Add(Key(alternate[u]));
            }
        }

        public bool HasZeroWith(int[] stripped, int[] alternate, bool v2)
        {
            if (!v2) return stripped.Length > 0 ? _strippedNonEmpty.Contains(Key(stripped)) : _anyEmpty;
            return stripped.Length > 0
                ? _strippedNonEmpty.Contains(Key(stripped)) || _alternateOfEmpty.Contains(Key(alternate))
                : _alternateAll.Contains(Key(alternate));
        }
    }

    private static string Key(int[] interned) => string.Join(',', interned);

    private int Compute(int s, int t)
    {
        switch (_variant)
        {
            case DtwVariant.FuseLlm:
                return Stripped(s, t) << 1;
            case DtwVariant.FuseChatV1:
            {
                int d = Stripped(s, t);
                return (d << 1) | (Discount(s, t, d) ? 1 : 0);
            }
            case DtwVariant.FuseChatV2:
                return _srcStripped[s].Length == 0 || _tgtStripped[t].Length == 0
                    ? Loaded(_srcHarmonized[s], _tgtRaw[t]) << 1
                    : Stripped(s, t) << 1;
            default:
                throw new ArgumentOutOfRangeException(nameof(_variant));
        }
    }

    /// <summary>
    /// FuseChat v1's discount: one stripped string contains the other. Containing needs distance = the length
    /// difference (delete the rest), so other pairs skip the search; strings with surrogates (UTF-16 length ≠ code
    /// points) always search, as the reference's <c>in</c> is checked here on UTF-16.
    /// </summary>
    private bool Discount(int s, int t, int distance)
    {
        string a = _srcStrippedText[s], b = _tgtStrippedText[t];
        bool plain = a.Length == _srcStripped[s].Length && b.Length == _tgtStripped[t].Length;
        if (plain && distance != Math.Abs(a.Length - b.Length)) return false;
        if (plain && a.Length == b.Length) return distance == 0; // equal lengths: containing is being equal
        if (plain && Math.Min(a.Length, b.Length) <= 1) return true; // one symbol (or none) at distance |b| - 1: it occurs
        return a.Contains(b, StringComparison.Ordinal) || b.Contains(a, StringComparison.Ordinal);
    }

    /// <summary>Distance between stripped strings, bit-parallel with the row's pattern loaded once.</summary>
    private int Stripped(int s, int t)
    {
        var a = _srcStripped[s];
        var b = _tgtStripped[t];
        if (a.Length == 0) return b.Length;
        if (b.Length == 0) return a.Length;
        // No character in common (the signatures are disjoint): substitute the shorter, insert the rest — exactly max(|a|, |b|).
        if ((_srcSig[s] & _tgtSig[t]) == 0) return Math.Max(a.Length, b.Length);
        return Loaded(a, b);
    }

    /// <summary>
    /// Distance between interned strings, bit-parallel with <paramref name="a"/> (a blending string's array, one per
    /// distinct string and form) loaded as the pattern once for all the base strings of its row.
    /// </summary>
    private int Loaded(int[] a, int[] b)
    {
        if (a.Length == 0) return b.Length;
        if (b.Length == 0) return a.Length;
        if (a.Length > Levenshtein.WordBits) return Levenshtein.Distance(a, b);
        if (!ReferenceEquals(_loaded, a))
        {
            if (_loaded is not null)
                foreach (int c in _loaded) _peq[c] = 0;
            for (int i = 0; i < a.Length; i++) _peq[a[i]] |= 1UL << i;
            _loaded = a;
        }
        return Levenshtein.Myers(_peq, b, a.Length, int.MaxValue - 1);
    }

    /// <summary>Distinct tokens (the first of each key) and each position's index among them; keyed by the token, or by the token without <paramref name="stripMarker"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static List<string> Distinct(IReadOnlyList<string> tokens, string? stripMarker, out int[] keys)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var distinct = new List<string>();
        keys = new int[tokens.Count];
        for (int i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i] ?? throw new ArgumentException($"token {i} is null", nameof(tokens));
            var t = stripMarker is null ? token : DtwVariants.ReplaceMarker(token, stripMarker, "");
            if (!index.TryGetValue(t, out int k))
            {
                k = distinct.Count;
                index[t] = k;
                distinct.Add(token);
            }
            keys[i] = k;
        }
        return distinct;
    }
}
