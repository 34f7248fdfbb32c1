using FuseSharp.Fusion;
using FuseSharp.Fusion.Alignment;
using Xunit;

namespace FuseSharp.Tests.Fusion;

public class DtwTests
{
    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var line in FusionFixtures.Lines("dtw_alignments.jsonl"))
        {
            foreach (var v in new[] { "fusellm_v1", "fusechat_v1", "fusechat_v2", "fusechat_v2_decoded" })
                data.Add(line["snippet"]!.GetValue<string>(), line["blending"]!.GetValue<string>(), v);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesReferenceAlignment(string snippet, string blending, string variantName)
    {
        var line = FusionFixtures.Lines("dtw_alignments.jsonl").Single(l => l["snippet"]!.GetValue<string>() == snippet && l["blending"]!.GetValue<string>() == blending);
        var expected = line["variants"]![variantName]!;
        string[] baseTokens, blendTokens;
        if (variantName == "fusechat_v2_decoded")
        {
            baseTokens = FusionFixtures.Strings(expected["base_strings"]);
            blendTokens = FusionFixtures.Strings(expected["blending_strings"]);
        }
        else
        {
            baseTokens = FusionFixtures.Strings(line["base_pieces"]);
            blendTokens = FusionFixtures.Strings(line["blending_pieces"]);
        }
        Assert.True(DtwVariants.TryParse(variantName, out var variant));
        foreach (var mode in new[] { DtwMode.Full, DtwMode.Banded })
        {
            var a = TokenDtw.Align(blendTokens, baseTokens, variant, "Ġ", "▁", mode);
            Assert.Equal(FusionFixtures.Show(FusionFixtures.IntRows(expected["base_to_blending"])), FusionFixtures.Show(a.BaseToBlending()));
            Assert.Equal(FusionFixtures.Show(FusionFixtures.IntRows(expected["blending_to_base"])), FusionFixtures.Show(a.BlendingToBase()));
            Assert.Equal(expected["total_cost"]!.GetValue<double>(), a.TotalCost);
            Assert.Equal(expected["n_matches"]!.GetValue<int>(), a.PathLength);
        }
    }

    [Fact]
    public void ReferenceImplementationMatchesFixtureToo()
    {
        var line = FusionFixtures.Lines("dtw_alignments.jsonl").First(l => l["blending"]!.GetValue<string>() == "qwen2");
        var expected = line["variants"]!["fusechat_v1"]!;
        var a = TokenDtw.AlignReference(FusionFixtures.Strings(line["blending_pieces"]), FusionFixtures.Strings(line["base_pieces"]), DtwVariant.FuseChatV1, "Ġ", "▁");
        Assert.Equal(FusionFixtures.Show(FusionFixtures.IntRows(expected["base_to_blending"])), FusionFixtures.Show(a.BaseToBlending()));
        Assert.Equal(expected["total_cost"]!.GetValue<double>(), a.TotalCost);
    }

    [Fact]
    public void FastModesEqualReferenceOnRandomSequences()
    {
        // Small alphabets make many equal costs, so the tie orders are exercised hard.
        var rng = new Random(20240607);
        string[] alphabet = ["▁a", "a", "b", "▁", "ab", "▁ab", "Ġa", "Ġ", "ba", "c", "▁c", "aa"];
        for (int trial = 0; trial < 300; trial++)
        {
            int n = rng.Next(1, 40), m = rng.Next(1, 40);
            var s = Enumerable.Range(0, n).Select(_ => alphabet[rng.Next(alphabet.Length)].Replace('▁', 'Ġ')).ToArray();
            var t = Enumerable.Range(0, m).Select(_ => alphabet[rng.Next(alphabet.Length)].Replace('Ġ', '▁')).ToArray();
            foreach (var variant in Enum.GetValues<DtwVariant>())
            {
                var r = TokenDtw.AlignReference(s, t, variant, "Ġ", "▁");
                foreach (var mode in new[] { DtwMode.Full, DtwMode.Banded })
                    AssertSame(r, TokenDtw.Align(s, t, variant, "Ġ", "▁", mode));
            }
        }
    }

    [Fact]
    public void BandedEqualsFullOnLongPerturbedTexts()
    {
        // Real pieces with random merges, splits, drops and swaps: long enough for the band and the bounds to prune.
        var rng = new Random(42);
        var lines = FusionFixtures.Lines("dtw_alignments.jsonl");
        for (int trial = 0; trial < 12; trial++)
        {
            var line = lines[rng.Next(lines.Count)];
            var b = FusionFixtures.Strings(line["base_pieces"]).Concat(FusionFixtures.Strings(lines[rng.Next(lines.Count)]["base_pieces"])).ToArray();
            var s = new List<string>();
            for (int i = 0; i < b.Length; i++)
            {
                int r = rng.Next(20);
                if (r == 0 && i + 1 < b.Length) s.Add(b[i] + b[++i].Replace("▁", "", StringComparison.Ordinal));
                else if (r == 1 && b[i].Length > 2) { s.Add(b[i][..1]); s.Add(b[i][1..]); }
                else if (r == 2) continue;
                else if (r == 3) s.Add("x" + b[i]);
                else s.Add(b[i]);
            }
            if (s.Count == 0) s.Add("▁");
            foreach (var variant in Enum.GetValues<DtwVariant>())
            {
                var plain = Plain(s, b, variant, "▁", "▁");
                AssertSame(plain, TokenDtw.Align(s, b, variant, "▁", "▁", DtwMode.Full));
                AssertSame(plain, TokenDtw.Align(s, b, variant, "▁", "▁", DtwMode.Banded));
            }
        }
    }

    /// <summary>The plain path the fast ones are checked against: float64 costs computed pair by pair on demand, the full table.</summary>
    private static DtwAlignment Plain(IReadOnlyList<string> s, IReadOnlyList<string> b, DtwVariant variant, string sm, string bm) =>
        TokenDtw.Align(new DtwCostMatrix(s, b, variant, sm, bm, realCosts: true), variant.TieOrder(), DtwMode.Full, computeAll: false);

    private static void AssertSame(DtwAlignment expected, DtwAlignment actual)
    {
        Assert.Equal(BitConverter.DoubleToInt64Bits(expected.TotalCost), BitConverter.DoubleToInt64Bits(actual.TotalCost));
        Assert.Equal(expected.PathLength, actual.PathLength);
        Assert.Equal(FusionFixtures.Show(expected.BaseToBlending()), FusionFixtures.Show(actual.BaseToBlending()));
        Assert.Equal(FusionFixtures.Show(expected.BlendingToBase()), FusionFixtures.Show(actual.BlendingToBase()));
    }

    [Fact]
    public void ReusedBuffersGiveFreshResults()
    {
        // The per-thread memo and moves buffers carry garbage from earlier alignments (poisoned here, and left by longer,
        // shorter and other-variant pairs): every value read must be one written by the alignment at hand.
        var rng = new Random(5);
        string[] alphabet = ["▁a", "a", "b", "▁", "ab", "▁ab", "ba", "c", "▁c", "aa", "abc", "é"];
        string[] Random(int length, char marker) => Enumerable.Range(0, length).Select(_ => alphabet[rng.Next(alphabet.Length)].Replace('▁', marker)).ToArray();
        var poisonBytes = new byte[1 << 16];
        Array.Fill(poisonBytes, (byte)0xFF);
        var poisonInts = new int[1 << 16];
        Array.Fill(poisonInts, 3);
        var poisonDoubles = new double[1 << 16];
        Array.Fill(poisonDoubles, 0.5);
        var poisonWaves = new ushort[1 << 16];
        Array.Fill(poisonWaves, (ushort)0x5A5A);
        int before = DtwBuffers.Reused;
        foreach (int length in new[] { 120, 7, 200, 33, 1, 150 })
        {
            DtwBuffers.Return(poisonBytes);
            DtwBuffers.Return(poisonInts);
            DtwBuffers.Return(poisonDoubles);
            DtwBuffers.Return(poisonWaves);
            var s = Random(length, 'Ġ');
            var t = Random(length + rng.Next(-length / 2, 9), '▁');
            if (t.Length == 0) t = ["▁"];
            foreach (var variant in Enum.GetValues<DtwVariant>())
            {
                var plain = Plain(s, t, variant, "Ġ", "▁");
                foreach (var mode in new[] { DtwMode.Full, DtwMode.Banded })
                    AssertSame(plain, TokenDtw.Align(s, t, variant, "Ġ", "▁", mode));
            }
        }
        Assert.True(DtwBuffers.Reused - before >= 6 * 3 * 2, "the kept buffers were not reused");
    }

    [Fact]
    public void FloorsFromTheCompleteMemoAreTheRowAndColumnMinima()
    {
        // With every pair computed, the pruning's floors are each row's / column's smallest cost (at least the
        // zero-or-smallest-non-zero floors without the memo, and never above a cost of the row or column).
        var rng = new Random(11);
        string[] alphabet = ["▁a", "a", "b", "▁", "ab", "▁ab", "ba", "c", "▁c", "aa", "abc", "é", "▁" + new string('b', 70)];
        for (int trial = 0; trial < 40; trial++)
        {
            var s = Enumerable.Range(0, rng.Next(1, 30)).Select(_ => alphabet[rng.Next(alphabet.Length)].Replace('▁', 'Ġ')).ToArray();
            var t = Enumerable.Range(0, rng.Next(1, 30)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray();
            foreach (var variant in Enum.GetValues<DtwVariant>())
            {
                var costs = new DtwCostMatrix(s, t, variant, "Ġ", "▁");
                double[] rowsBefore = costs.RowFloors(), colsBefore = costs.ColumnFloors();
                costs.ComputeAll();
                Assert.True(costs.Complete);
                double[] rows = costs.RowFloors(), cols = costs.ColumnFloors();
                for (int i = 0; i < s.Length; i++)
                {
                    double min = Enumerable.Range(0, t.Length).Min(j => costs.Cost(costs.RowBase(i), j));
                    Assert.Equal(min, rows[i]);
                    Assert.True(rows[i] >= rowsBefore[i]);
                }
                for (int j = 0; j < t.Length; j++)
                {
                    double min = Enumerable.Range(0, s.Length).Min(i => costs.Cost(costs.RowBase(i), j));
                    Assert.Equal(min, cols[j]);
                    Assert.True(cols[j] >= colsBefore[j]);
                }
            }
        }
    }

    [Fact]
    public void FastPathsEqualPlainFloatTable()
    {
        // Every combination of: integer or float64 table (int32 recurrence for FuseLLM / FuseChat v2, its unbounded rows as
        // a four-cell scan; float64 full tables four rows at a time), costs all up front (lane-wise Myers) or pair by pair,
        // full or banded (a bound that prunes little handing over to the full fill); against the plain float64 full
        // table. Lengths 1..70 cover the 4-cell move groups' tails; a small alphabet with markers, empty stripped strings and a long token makes
        // ties, FuseChat v2's fallback and the > 64-symbol path.
        var rng = new Random(77);
        string[] alphabet = ["▁a", "a", "b", "▁", "ab", "▁ab", "ba", "c", "▁c", "aa", "abc", "▁bca", "é", "😀a", "▁" + new string('a', 70), "cab"];
        for (int trial = 0; trial < 120; trial++)
        {
            int n = rng.Next(1, 71), m = rng.Next(1, 71);
            var s = Enumerable.Range(0, n).Select(_ => alphabet[rng.Next(alphabet.Length)].Replace('▁', 'Ġ')).ToArray();
            var t = Enumerable.Range(0, m).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray();
            foreach (var variant in Enum.GetValues<DtwVariant>())
            {
                var plain = Plain(s, t, variant, "Ġ", "▁");
                foreach (bool real in new[] { false, true })
                foreach (bool all in new[] { false, true })
                foreach (var mode in new[] { DtwMode.Full, DtwMode.Banded })
                {
                    var costs = new DtwCostMatrix(s, t, variant, "Ġ", "▁", realCosts: real);
                    Assert.Equal(!real && variant != DtwVariant.FuseChatV1, costs.IntegerCosts);
                    AssertSame(plain, TokenDtw.Align(costs, variant.TieOrder(), mode, computeAll: all));
                }
            }
        }
    }

    [Fact]
    public void SmallTablesEqualPlainFloatTable()
    {
        // Every shape up to 9 x 9: the four-row blocks of the float64 full fill (leftover rows, fewer than four columns,
        // one row or column) and the integer row scan's four-cell groups and tails, on a two-letter alphabet (ties everywhere).
        var rng = new Random(11);
        string[] alphabet = ["▁a", "a", "b", "▁", "ab", "▁ba"];
        for (int n = 1; n <= 9; n++)
        for (int m = 1; m <= 9; m++)
        {
            var s = Enumerable.Range(0, n).Select(_ => alphabet[rng.Next(alphabet.Length)].Replace('▁', 'Ġ')).ToArray();
            var t = Enumerable.Range(0, m).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray();
            foreach (var variant in Enum.GetValues<DtwVariant>())
            {
                var plain = Plain(s, t, variant, "Ġ", "▁");
                foreach (bool real in new[] { false, true })
                foreach (var mode in new[] { DtwMode.Full, DtwMode.Banded })
                    AssertSame(plain, TokenDtw.Align(new DtwCostMatrix(s, t, variant, "Ġ", "▁", realCosts: real), variant.TieOrder(), mode));
            }
        }
    }

    [Fact]
    public void WaveFillEqualsRowFillAtEveryCell()
    {
        // The integer full table eight rows per anti-diagonal step against the row-by-row fill: every cell's tie decision
        // (not only the path's) and the total, for every shape up to 19 x 19 (leftover rows of the last block of eight,
        // fewer columns than lanes, one row or column) and longer texts, both tie orders, a small alphabet (ties
        // everywhere); float64 tables (FuseChat v1, real costs) keep the four-row fill.
        var rng = new Random(8);
        string[] alphabet = ["▁a", "a", "b", "▁", "ab", "▁ba", "abba"];
        var shapes = new List<(int, int)>();
        for (int n = 1; n < 20; n++)
            for (int m = 1; m < 20; m++) shapes.Add((n, m));
        shapes.AddRange([(70, 33), (33, 70), (129, 64), (64, 129)]);
        foreach (var (n, m) in shapes)
        {
            var s = Enumerable.Range(0, n).Select(_ => alphabet[rng.Next(alphabet.Length)].Replace('▁', 'Ġ')).ToArray();
            var t = Enumerable.Range(0, m).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray();
            foreach (var variant in new[] { DtwVariant.FuseLlm, DtwVariant.FuseChatV2 })
            {
                var costs = new DtwCostMatrix(s, t, variant, "Ġ", "▁");
                costs.ComputeAll();
                var tie = variant.TieOrder();
                double rows = TokenDtw.Fill(costs, tie, double.PositiveInfinity, null, null, null, null, true, out var rowMoves, waves: false);
                double waves = TokenDtw.Fill(costs, tie, double.PositiveInfinity, null, null, null, null, true, out var waveMoves);
                Assert.Equal(TokenDtw.CanWave(costs, true, null), waveMoves!.Waves is not null);
                Assert.Null(rowMoves!.Waves);
                Assert.Equal(rows, waves);
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < m; j++)
                        Assert.True(rowMoves.At(i, j) == waveMoves.At(i, j), $"{variant} {n}x{m}: move at ({i}, {j})");
            }
        }
        Assert.True(!System.Runtime.Intrinsics.X86.Avx2.IsSupported || TokenDtw.CanWave(Complete(["a"], ["a"]), true, null));
    }

    private static DtwCostMatrix Complete(string[] s, string[] t)
    {
        var costs = new DtwCostMatrix(s, t, DtwVariant.FuseLlm, "Ġ", "▁");
        costs.ComputeAll();
        return costs;
    }

    [Fact]
    public void BoundedFloatFillHandsOverAtAnyRow()
    {
        // A bounded float64 table handing its remaining rows to the four-row full fill after row h, for every h: the
        // four-row blocks and the one to three leftover rows after it, a last bounded row of any width (+∞ outside its
        // range); and the live-share rule on long perturbed texts (16-row blocks). Against the plain float64 full table.
        var rng = new Random(3);
        string[] alphabet = ["▁a", "a", "b", "▁", "ab", "▁ba", "c", "▁cab", "bb"];
        foreach (var (n, m) in new[] { (17, 16), (19, 23), (26, 14), (21, 30) })
        {
            var s = Enumerable.Range(0, n).Select(_ => alphabet[rng.Next(alphabet.Length)].Replace('▁', 'Ġ')).ToArray();
            var t = Enumerable.Range(0, m).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray();
            foreach (var variant in Enum.GetValues<DtwVariant>())
            {
                var plain = Plain(s, t, variant, "Ġ", "▁");
                for (int h = 0; h < n; h++)
                {
                    var costs = new DtwCostMatrix(s, t, variant, "Ġ", "▁", realCosts: true);
                    AssertSame(plain, TokenDtw.Align(costs, variant.TieOrder(), DtwMode.Banded, handOverAfter: h));
                }
            }
        }
        var lines = FusionFixtures.Lines("dtw_alignments.jsonl");
        for (int trial = 0; trial < 4; trial++)
        {
            var b = Enumerable.Range(0, 3).SelectMany(_ => FusionFixtures.Strings(lines[rng.Next(lines.Count)]["base_pieces"])).ToArray();
            var s = b.Select(x => rng.Next(6) == 0 ? "x" + x : x).Where(_ => rng.Next(8) != 0).ToArray();
            var plain = Plain(s, b, DtwVariant.FuseChatV1, "▁", "▁");
            foreach (int h in new[] { -1, int.MaxValue, rng.Next(s.Length) })
                AssertSame(plain, TokenDtw.Align(new DtwCostMatrix(s, b, DtwVariant.FuseChatV1, "▁", "▁"), DtwTieOrder.DiagUpLeft, DtwMode.Banded, handOverAfter: h));
        }
    }

    [Fact]
    public void AllPairsUpFrontEqualPairByPairCosts()
    {
        // The lane-wise Myers table against the reference's per-cell cost: groups of 1..16 16-bit lanes and 1..4
        // 64-bit lanes, patterns of 1..64 symbols (16 | 17: the lane widths' edge; 65: pair by pair), empty stripped strings, substrings (FuseChat v1's discount), astral characters.
        var rng = new Random(5);
        string letters = "abcde";
        string Word(int len) => new(Enumerable.Range(0, len).Select(_ => letters[rng.Next(letters.Length)]).ToArray());
        var pool = new List<string> { "▁", "", "😀", "▁😀b", "a\uD800", new string('a', 64), new string('a', 65), "▁" + new string('b', 64) };
        foreach (int len in new[] { 1, 2, 3, 5, 8, 13, 15, 16, 17, 31, 32, 33, 63, 64 }) pool.Add(Word(len));
        for (int i = 0; i < 20; i++) pool.Add(Word(rng.Next(1, 9)));
        // Substrings of pool words, with and without markers.
        for (int i = 0; i < 10; i++)
        {
            var w = pool[rng.Next(8, pool.Count)];
            int a = rng.Next(w.Length), l = rng.Next(0, w.Length - a + 1);
            pool.Add((rng.Next(2) == 0 ? "▁" : "") + w.Substring(a, l));
        }
        foreach (int rows in new[] { 1, 2, 3, 4, 5, 9, 16, 17, 33, pool.Count })
        {
            var s = pool.OrderBy(_ => rng.Next()).Take(rows).Select(x => x.Replace('▁', 'Ġ')).ToArray();
            var t = pool.OrderBy(_ => rng.Next()).ToArray();
            foreach (var variant in Enum.GetValues<DtwVariant>())
            {
                var all = new DtwCostMatrix(s, t, variant, "Ġ", "▁");
                all.ComputeAll();
                for (int i = 0; i < s.Length; i++)
                {
                    int rowBase = all.RowBase(i);
                    for (int j = 0; j < t.Length; j++)
                        Assert.Equal(TokenDtw.ReferenceCost(s[i], t[j], variant, "Ġ", "▁"), all.Cost(rowBase, j));
                }
            }
        }
    }

    [Theory]
    [InlineData("Ġthe", "Ġ", 4)]
    [InlineData("Ã©", "Ġ", 2)]          // "é" as GPT-2 byte characters: its two UTF-8 bytes
    [InlineData("ä¸Ń", "Ġ", 3)]         // "中"
    [InlineData("ĊĊ", "Ġ", 2)]
    [InlineData("中", "Ġ", 3)]           // a decoded string under a byte-level marker: UTF-8 bytes
    [InlineData("▁the", "▁", 4)]
    [InlineData("▁é", "▁", 3)]
    [InlineData("<0x0A>", "▁", 1)]       // SentencePiece byte fallback
    [InlineData("<0x0G>", "▁", 6)]
    [InlineData("😀", "▁", 4)]
    [InlineData("", "▁", 0)]
    public void TextBytesFollowTheTokenizerFamily(string token, string marker, int bytes) =>
        Assert.Equal(bytes, DtwCostMatrix.TextBytes(token, marker));

    [Fact]
    public void LongDocumentsKeepOnlyARowOfCosts()
    {
        // 5000 x 4000 distinct tokens would need 20 M memo entries: the row memo takes over, results unchanged.
        var b = Enumerable.Range(0, 5000).Select(i => "▁w" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var s = b.Where((_, i) => i % 5 != 0).Select(x => x.Replace('▁', 'Ġ')).ToArray();
        var costs = new DtwCostMatrix(s, b, DtwVariant.FuseLlm, "Ġ", "▁");
        Assert.True((long)s.Length * b.Length > DtwCostMatrix.MaxMemo);
        var a = TokenDtw.Align(costs, DtwTieOrder.DiagUpLeft, DtwMode.Banded);
        var small = TokenDtw.Align(s[..400], b[..500], DtwVariant.FuseLlm, "Ġ", "▁", DtwMode.Full);
        Assert.Equal(FusionFixtures.Show(small.BaseToBlending()[..499]), FusionFixtures.Show(a.BaseToBlending()[..499]));
    }

    [Fact]
    public void PathCoversBothSequencesMonotonically()
    {
        var line = FusionFixtures.Lines("dtw_alignments.jsonl").First();
        var a = TokenDtw.Align(FusionFixtures.Strings(line["blending_pieces"]), FusionFixtures.Strings(line["base_pieces"]), DtwVariant.FuseLlm, "Ġ", "▁");
        Assert.Equal(0, a.BaseFirst[0]);
        Assert.Equal(a.BlendingLength - 1, a.BaseLast[a.BaseLength - 1]);
        for (int j = 1; j < a.BaseLength; j++) Assert.True(a.BaseFirst[j] >= a.BaseLast[j - 1] && a.BaseFirst[j] <= a.BaseLast[j - 1] + 1);
    }

    [Fact]
    public void EmptySequenceIsAClearError()
    {
        var e = Assert.Throws<FusionException>(() => TokenDtw.Align([], ["▁a"], DtwVariant.FuseLlm, "Ġ", "▁"));
        Assert.Contains("empty", e.Message, StringComparison.Ordinal);
    }
}
