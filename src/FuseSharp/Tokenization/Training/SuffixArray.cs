namespace FuseSharp.Tokenization.Training;

/// <summary>
/// Suffix array and LCP array of an integer string, and the enumeration of its LCP intervals (the internal nodes of the
/// suffix tree: every substring that occurs at least twice and is followed by at least two different symbols), which is
/// what SentencePiece's seed extraction reads from its enhanced suffix array (esaxx).
/// </summary>
internal static class SuffixArray
{
    /// <summary>
    /// The suffix array of <paramref name="s"/> (symbols in [0, <paramref name="alphabet"/>)) by prefix doubling with
    /// radix sorts: O(n log L) for L the longest repeated substring.
    /// </summary>
    public static int[] Build(int[] s, int alphabet)
    {
        int n = s.Length;
        var sa = new int[n];
        if (n == 0) return sa;
        var rank = new int[n];
        var tmp = new int[n];
        var count = new int[Math.Max(alphabet, n) + 1];
        foreach (var c in s) count[c]++;
        for (int i = 1; i < count.Length; i++) count[i] += count[i - 1];
        for (int i = n - 1; i >= 0; i--) sa[--count[s[i]]] = i;
        rank[sa[0]] = 0;
        for (int i = 1; i < n; i++) rank[sa[i]] = rank[sa[i - 1]] + (s[sa[i]] != s[sa[i - 1]] ? 1 : 0);
        for (int k = 1; rank[sa[n - 1]] < n - 1; k <<= 1)
        {
            // Order by the second key (rank of i + k; suffixes shorter than k first), then stably by the first key.
            int p = 0;
            for (int i = n - k; i < n; i++) tmp[p++] = i;
            foreach (int j in sa)
                if (j >= k) tmp[p++] = j - k;
            int ranks = rank[sa[n - 1]] + 1;
            Array.Clear(count, 0, ranks + 1);
            foreach (int r in rank) count[r]++;
            for (int i = 1; i <= ranks; i++) count[i] += count[i - 1];
            for (int j = n - 1; j >= 0; j--) sa[--count[rank[tmp[j]]]] = tmp[j];
            tmp[sa[0]] = 0;
            for (int j = 1; j < n; j++)
            {
                int prev = sa[j - 1], cur = sa[j];
                bool same = rank[prev] == rank[cur] && (prev + k < n ? rank[prev + k] : -1) == (cur + k < n ? rank[cur + k] : -1);
                tmp[cur] = tmp[prev] + (same ? 0 : 1);
            }
            (rank, tmp) = (tmp, rank);
        }
        return sa;
    }

    /// <summary>Kasai's LCP array: <c>lcp[i]</c> = length of the common prefix of suffixes <c>sa[i-1]</c> and <c>sa[i]</c> (<c>lcp[0] = 0</c>).</summary>
    public static int[] Lcp(int[] s, int[] sa, out int[] rankOf)
    {
        int n = s.Length;
        rankOf = new int[n];
        for (int i = 0; i < n; i++) rankOf[sa[i]] = i;
        var lcp = new int[n];
        int h = 0;
        for (int i = 0; i < n; i++)
        {
            if (rankOf[i] == 0)
            {
                h = 0;
                continue;
            }
            int j = sa[rankOf[i] - 1];
            while (i + h < n && j + h < n && s[i + h] == s[j + h]) h++;
            lcp[rankOf[i]] = h;
            if (h > 0) h--;
        }
        return lcp;
    }

    /// <summary>
    /// Calls <paramref name="node"/>(depth, lb, rb) for every LCP interval of depth &gt; 0: the suffixes
    /// <c>sa[lb..rb]</c> (inclusive) share exactly <c>depth</c> leading symbols, and no larger range does.
    /// </summary>
    public static void Intervals(int[] lcp, Action<int, int, int> node)
    {
        int n = lcp.Length;
        var depth = new Stack<(int Depth, int Lb)>();
        depth.Push((0, 0));
        for (int i = 1; i <= n; i++)
        {
            int cur = i < n ? lcp[i] : 0;
            int lb = i - 1;
            while (cur < depth.Peek().Depth)
            {
                var top = depth.Pop();
                node(top.Depth, top.Lb, i - 1);
                lb = top.Lb;
            }
            if (cur > depth.Peek().Depth) depth.Push((cur, lb));
        }
    }
}
