using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Patterns;

/// <summary>
/// A backtracking regex over code points with the semantics of the engines tokenizers were trained with
/// (leftmost match, first alternative wins, greedy by default). .NET's <c>Regex</c> is not used because it works on
/// UTF-16 code units: <c>\p{L}</c> does not match a supplementary-plane letter and <c>\p{N}{1,3}</c> would count
/// surrogates, so astral text would split differently from Hugging Face and llama.cpp. Thread-safe.
/// </summary>
public sealed class TokenizerRegex : IWordScanner
{
    private enum Op : byte
    {
        Set,
        Split,
        Jmp,
        Assert,
        AssertEndAt,
        RepeatSet,
        SaveReg,
        CheckProgress,
        Look,
        Atomic,
        Match,
    }

    private readonly record struct Inst(Op Op, int A, int B);

    private readonly record struct RepeatInfo(int Min, int Max, bool Greedy);

    private sealed class Program
    {
        public List<Inst> Code { get; } = [];
    }

    private sealed record LookInfo(GroupKind Kind, List<(Program Program, int Length)> Branches);

    private const int FrameAlt = 0, FrameGreedy = 1, FrameLazy = 2, FrameRestore = 3;

    private readonly List<CharClass> sets = [];
    private readonly List<RepeatInfo> repeats = [];
    private readonly List<LookInfo> looks = [];
    private readonly List<Program> atomics = [];
    private readonly Program main = new();
    private int registerCount;
    private readonly bool canMatchEmpty;
    private readonly ulong firstAscii0, firstAscii1;
    private readonly bool firstNonAscii;

    [ThreadStatic]
    private static int[]? threadStack;

    /// <summary>Compiles <paramref name="pattern"/>.</summary>
    /// <exception cref="TokenizerException">The pattern is malformed or uses an unsupported construct (the message names it).</exception>
    public TokenizerRegex(string pattern, RegexDialect dialect = RegexDialect.Oniguruma)
    {
        Pattern = pattern;
        Dialect = dialect;
        var ast = RegexParser.Parse(pattern, dialect);
        Emit(ast, main);
        main.Code.Add(new Inst(Op.Match, 0, 0));
        if (main.Code.Count > 200_000) throw new TokenizerException($"regex /{pattern}/ is too large after expanding its repetitions");
        var first = new FirstSet();
        canMatchEmpty = Nullable(ast) || !CollectFirst(ast, first);
        firstAscii0 = first.Ascii0;
        firstAscii1 = first.Ascii1;
        firstNonAscii = first.NonAscii;
    }

    public string Pattern { get; }

    public RegexDialect Dialect { get; }

    /// <summary>Creates a regex that matches <paramref name="literal"/> exactly.</summary>
    public static TokenizerRegex ForLiteral(string literal) => new(Escape(literal));

    /// <summary>Escapes every regex metacharacter in <paramref name="literal"/>.</summary>
    public static string Escape(string literal)
    {
        var sb = new System.Text.StringBuilder(literal.Length * 2);
        foreach (var c in literal)
        {
            if ("\\^$.|?*+()[]{}-/#&~ \t\n\r\f\v".Contains(c, StringComparison.Ordinal))
            {
                switch (c)
                {
                    case '\t': sb.Append("\\t"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\f': sb.Append("\\f"); break;
                    case '\v': sb.Append("\\v"); break;
                    case ' ': sb.Append(' '); break;
                    default: sb.Append('\\').Append(c); break;
                }
            }
            else
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }

    /// <summary>The first match starting at or after <paramref name="from"/>, or (-1, -1).</summary>
    public (int Start, int End) Find(ReadOnlySpan<char> text, int from = 0)
    {
        var regs = registerCount == 0 ? [] : new int[registerCount];
        var stack = threadStack ??= new int[1024];
        int pos = from;
        while (pos <= text.Length)
        {
            if (pos < text.Length && !canMatchEmpty && !MayStartAt(text, pos))
            {
                pos += char.IsHighSurrogate(text[pos]) && pos + 1 < text.Length && char.IsLowSurrogate(text[pos + 1]) ? 2 : 1;
                continue;
            }
            if (pos == text.Length && !canMatchEmpty) break;
            int end = Run(main, text, pos, -1, ref stack, 0, regs);
            if (end >= 0)
            {
                threadStack = stack;
                return (pos, end);
            }
            if (pos == text.Length) break;
            pos += char.IsHighSurrogate(text[pos]) && pos + 1 < text.Length && char.IsLowSurrogate(text[pos + 1]) ? 2 : 1;
        }
        threadStack = stack;
        return (-1, -1);
    }

    /// <summary>
    /// Appends every non-overlapping match, left to right, as Oniguruma's iterator reports them: an empty match
    /// directly after the previous match is skipped.
    /// </summary>
    public void FindAll(ReadOnlySpan<char> text, List<(int Start, int End)> matches)
    {
        int from = 0, lastEnd = -1;
        while (from <= text.Length)
        {
            var (s, e) = Find(text, from);
            if (s < 0) break;
            if (s == e && e == lastEnd)
            {
                if (from >= text.Length) break;
                from += char.IsHighSurrogate(text[from]) && from + 1 < text.Length && char.IsLowSurrogate(text[from + 1]) ? 2 : 1;
                continue;
            }
            matches.Add((s, e));
            lastEnd = e;
            from = e;
            if (s == e)
            {
                if (from >= text.Length) break;
                from += char.IsHighSurrogate(text[from]) && from + 1 < text.Length && char.IsLowSurrogate(text[from + 1]) ? 2 : 1;
            }
        }
    }

    /// <summary>True if the whole of <paramref name="text"/> is matched from its start (used by tests).</summary>
    public bool IsMatchAt(ReadOnlySpan<char> text, int at, out int end)
    {
        var regs = registerCount == 0 ? [] : new int[registerCount];
        var stack = threadStack ??= new int[1024];
        end = Run(main, text, at, -1, ref stack, 0, regs);
        threadStack = stack;
        return end >= 0;
    }

    private bool MayStartAt(ReadOnlySpan<char> text, int pos)
    {
        char c = text[pos];
        if (c >= 128) return firstNonAscii;
        return c < 64 ? (firstAscii0 & (1UL << c)) != 0 : (firstAscii1 & (1UL << (c - 64))) != 0;
    }

    // ---- compilation ----

    private void Emit(RegexNode node, Program p)
    {
        var code = p.Code;
        switch (node)
        {
            case SetNode s:
                code.Add(new Inst(Op.Set, AddSet(s.Set), 0));
                break;
            case SequenceNode q:
                foreach (var item in q.Items) Emit(item, p);
                break;
            case AlternationNode a:
            {
                var jumps = new List<int>();
                for (int b = 0; b < a.Branches.Count; b++)
                {
                    if (b < a.Branches.Count - 1)
                    {
                        int split = code.Count;
                        code.Add(default);
                        Emit(a.Branches[b], p);
                        jumps.Add(code.Count);
                        code.Add(default);
                        code[split] = new Inst(Op.Split, split + 1, code.Count);
                    }
                    else
                    {
                        Emit(a.Branches[b], p);
                    }
                }
                foreach (var j in jumps) code[j] = new Inst(Op.Jmp, code.Count, 0);
                break;
            }
            case RepeatNode r:
                EmitRepeat(r, p);
                break;
            case GroupNode g when g.Kind == GroupKind.Atomic:
            {
                var sub = new Program();
                Emit(g.Body, sub);
                sub.Code.Add(new Inst(Op.Match, 0, 0));
                atomics.Add(sub);
                code.Add(new Inst(Op.Atomic, atomics.Count - 1, 0));
                break;
            }
            case GroupNode g:
            {
                var branches = new List<(Program, int)>();
                bool behind = g.Kind is GroupKind.LookBehind or GroupKind.NegativeLookBehind;
                var bodies = behind && g.Body is AlternationNode alt ? alt.Branches : [g.Body];
                foreach (var body in bodies)
                {
                    var sub = new Program();
                    Emit(body, sub);
                    int length = 0;
                    if (behind)
                    {
                        length = FixedLength(body) ?? throw new TokenizerException($"regex /{Pattern}/: look-behind must have a fixed length");
                        sub.Code.Add(new Inst(Op.AssertEndAt, 0, 0));
                    }
                    sub.Code.Add(new Inst(Op.Match, 0, 0));
                    branches.Add((sub, length));
                }
                looks.Add(new LookInfo(g.Kind, branches));
                code.Add(new Inst(Op.Look, looks.Count - 1, 0));
                break;
            }
            case AssertNode a:
                code.Add(new Inst(Op.Assert, (int)a.Kind, 0));
                break;
            default:
                throw new InvalidOperationException($"unknown regex node {node.GetType().Name}");
        }
    }

    private void EmitRepeat(RepeatNode r, Program p)
    {
        var code = p.Code;
        if (r.Possessive)
        {
            Emit(new GroupNode(r with { Possessive = false }, GroupKind.Atomic), p);
            return;
        }
        if (r.Body is SetNode s)
        {
            repeats.Add(new RepeatInfo(r.Min, r.Max < 0 ? int.MaxValue : r.Max, r.Greedy));
            code.Add(new Inst(Op.RepeatSet, AddSet(s.Set), repeats.Count - 1));
            return;
        }
        for (int k = 0; k < r.Min; k++) Emit(r.Body, p);
        bool nullable = Nullable(r.Body);
        if (r.Max < 0)
        {
            int loop = code.Count;
            code.Add(default);
            int reg = nullable ? registerCount++ : -1;
            if (nullable) code.Add(new Inst(Op.SaveReg, reg, 0));
            Emit(r.Body, p);
            if (nullable) code.Add(new Inst(Op.CheckProgress, reg, 0));
            code.Add(new Inst(Op.Jmp, loop, 0));
            code[loop] = r.Greedy ? new Inst(Op.Split, loop + 1, code.Count) : new Inst(Op.Split, code.Count, loop + 1);
            return;
        }
        var splits = new List<int>();
        for (int k = r.Min; k < r.Max; k++)
        {
            splits.Add(code.Count);
            code.Add(default);
            Emit(r.Body, p);
        }
        int exit = code.Count;
        foreach (var sp in splits)
            code[sp] = r.Greedy ? new Inst(Op.Split, sp + 1, exit) : new Inst(Op.Split, exit, sp + 1);
    }

    private int AddSet(CharClass set)
    {
        sets.Add(set);
        return sets.Count - 1;
    }

    private static bool Nullable(RegexNode node) => node switch
    {
        SetNode => false,
        SequenceNode q => q.Items.All(Nullable),
        AlternationNode a => a.Branches.Any(Nullable),
        RepeatNode r => r.Min == 0 || Nullable(r.Body),
        GroupNode g => g.Kind != GroupKind.Atomic || Nullable(g.Body),
        AssertNode => true,
        _ => true,
    };

    private static int? FixedLength(RegexNode node)
    {
        switch (node)
        {
            case SetNode: return 1;
            case AssertNode: return 0;
            case GroupNode g: return g.Kind == GroupKind.Atomic ? FixedLength(g.Body) : 0;
            case SequenceNode q:
            {
                int total = 0;
                foreach (var item in q.Items)
                {
                    var l = FixedLength(item);
                    if (l is null) return null;
                    total += l.Value;
                }
                return total;
            }
            case AlternationNode a:
            {
                var lengths = a.Branches.Select(FixedLength).Distinct().ToList();
                return lengths.Count == 1 ? lengths[0] : null;
            }
            case RepeatNode r when r.Min == r.Max:
                return FixedLength(r.Body) * r.Min;
            default:
                return null;
        }
    }

    private sealed class FirstSet
    {
        public ulong Ascii0, Ascii1;
        public bool NonAscii;

        public void Add(CharClass c)
        {
            for (int cp = 0; cp < 128; cp++)
            {
                if (!c.ContainsAscii(cp)) continue;
                if (cp < 64) Ascii0 |= 1UL << cp;
                else Ascii1 |= 1UL << (cp - 64);
            }
            NonAscii |= c.MayContainNonAscii();
        }
    }

    // Adds the characters that can start a match of node; returns false when the first character is unconstrained
    // (look-arounds, anchors followed by anything, ...).
    private static bool CollectFirst(RegexNode node, FirstSet first)
    {
        switch (node)
        {
            case SetNode s:
                first.Add(s.Set);
                return true;
            case SequenceNode q:
                foreach (var item in q.Items)
                {
                    if (item is AssertNode) continue;
                    if (item is GroupNode { Kind: not GroupKind.Atomic }) return false;
                    if (!CollectFirst(item, first)) return false;
                    if (!Nullable(item)) return true;
                }
                return false;
            case AlternationNode a:
                return a.Branches.All(b => CollectFirst(b, first));
            case RepeatNode r:
                return CollectFirst(r.Body, first);
            case GroupNode { Kind: GroupKind.Atomic } g:
                return CollectFirst(g.Body, first);
            default:
                return false;
        }
    }

    // ---- execution ----

    private static void Push(ref int[] stack, ref int top, int kind, int a, int b, int c)
    {
        if (top + 4 > stack.Length) Array.Resize(ref stack, stack.Length * 2);
        stack[top] = kind;
        stack[top + 1] = a;
        stack[top + 2] = b;
        stack[top + 3] = c;
        top += 4;
    }

    private static int StepBack(ReadOnlySpan<char> text, int pos) =>
        pos >= 2 && char.IsLowSurrogate(text[pos - 1]) && char.IsHighSurrogate(text[pos - 2]) ? pos - 2 : pos - 1;

    // Runs a program anchored at pos; returns the end of the first successful path, or -1. The backtrack stack is
    // shared with nested runs (look-arounds), each working above its own base.
    private int Run(Program prog, ReadOnlySpan<char> text, int pos, int targetEnd, ref int[] stack, int baseTop, int[] regs)
    {
        var code = prog.Code;
        int top = baseTop;
        int pc = 0;
        while (true)
        {
            var ins = code[pc];
            switch (ins.Op)
            {
                case Op.Match:
                    return pos;
                case Op.Set:
                    if (pos < text.Length)
                    {
                        int cp = UnicodeChars.CodePointAt(text, pos, out int len);
                        if (sets[ins.A].Contains(cp))
                        {
                            pos += len;
                            pc++;
                            continue;
                        }
                    }
                    break;
                case Op.Split:
                    Push(ref stack, ref top, FrameAlt, ins.B, pos, 0);
                    pc = ins.A;
                    continue;
                case Op.Jmp:
                    pc = ins.A;
                    continue;
                case Op.Assert:
                    if (CheckAssert((AssertKind)ins.A, text, pos))
                    {
                        pc++;
                        continue;
                    }
                    break;
                case Op.AssertEndAt:
                    if (pos == targetEnd)
                    {
                        pc++;
                        continue;
                    }
                    break;
                case Op.RepeatSet:
                {
                    var rp = repeats[ins.B];
                    var set = sets[ins.A];
                    int count = 0, p = pos;
                    int limit = rp.Greedy ? rp.Max : rp.Min;
                    while (count < limit && p < text.Length)
                    {
                        int cp = UnicodeChars.CodePointAt(text, p, out int len);
                        if (!set.Contains(cp)) break;
                        p += len;
                        count++;
                    }
                    if (count < rp.Min) break;
                    if (rp.Greedy)
                    {
                        if (count > rp.Min) Push(ref stack, ref top, FrameGreedy, pc + 1, p, count - rp.Min);
                    }
                    else if (count < rp.Max)
                    {
                        Push(ref stack, ref top, FrameLazy, pc, p, count);
                    }
                    pos = p;
                    pc++;
                    continue;
                }
                case Op.SaveReg:
                    Push(ref stack, ref top, FrameRestore, ins.A, regs[ins.A], 0);
                    regs[ins.A] = pos;
                    pc++;
                    continue;
                case Op.CheckProgress:
                    if (pos != regs[ins.A])
                    {
                        pc++;
                        continue;
                    }
                    break;
                case Op.Look:
                    if (RunLook(looks[ins.A], text, pos, ref stack, top, regs))
                    {
                        pc++;
                        continue;
                    }
                    break;
                case Op.Atomic:
                {
                    int end = Run(atomics[ins.A], text, pos, -1, ref stack, top, regs);
                    if (end >= 0)
                    {
                        pos = end;
                        pc++;
                        continue;
                    }
                    break;
                }
            }

            // Failure: pop until a frame offers another path.
            while (true)
            {
                if (top == baseTop) return -1;
                top -= 4;
                int kind = stack[top], a = stack[top + 1], b = stack[top + 2], c = stack[top + 3];
                if (kind == FrameAlt)
                {
                    pc = a;
                    pos = b;
                    break;
                }
                if (kind == FrameGreedy)
                {
                    // Give back one code point of a greedy single-set repetition.
                    int nb = StepBack(text, b);
                    if (c > 1) Push(ref stack, ref top, FrameGreedy, a, nb, c - 1);
                    pc = a;
                    pos = nb;
                    break;
                }
                if (kind == FrameLazy)
                {
                    // Take one more code point for a lazy single-set repetition.
                    var rins = code[a];
                    if (b < text.Length)
                    {
                        int cp = UnicodeChars.CodePointAt(text, b, out int len);
                        if (sets[rins.A].Contains(cp))
                        {
                            if (c + 1 < repeats[rins.B].Max) Push(ref stack, ref top, FrameLazy, a, b + len, c + 1);
                            pc = a + 1;
                            pos = b + len;
                            break;
                        }
                    }
                    continue;
                }
                regs[a] = b; // FrameRestore
            }
        }
    }

    private bool RunLook(LookInfo look, ReadOnlySpan<char> text, int pos, ref int[] stack, int top, int[] regs)
    {
        bool found = false;
        foreach (var (program, length) in look.Branches)
        {
            if (look.Kind is GroupKind.LookAhead or GroupKind.NegativeLookAhead)
            {
                found = Run(program, text, pos, -1, ref stack, top, regs) >= 0;
            }
            else
            {
                int start = pos;
                for (int k = 0; k < length && start > 0; k++) start = StepBack(text, start);
                found = UnicodeChars.CodePointCount(text[start..pos]) == length && Run(program, text, start, pos, ref stack, top, regs) >= 0;
            }
            if (found) break;
        }
        return look.Kind is GroupKind.LookAhead or GroupKind.LookBehind ? found : !found;
    }

    private bool CheckAssert(AssertKind kind, ReadOnlySpan<char> text, int pos)
    {
        switch (kind)
        {
            case AssertKind.LineStart: return pos == 0 || text[pos - 1] == '\n';
            case AssertKind.LineEnd: return pos == text.Length || text[pos] == '\n';
            case AssertKind.TextStart: return pos == 0;
            case AssertKind.TextEnd: return pos == text.Length;
            case AssertKind.TextEndOrFinalNewline: return pos == text.Length || (pos == text.Length - 1 && text[pos] == '\n');
            case AssertKind.WordBoundary:
            case AssertKind.NotWordBoundary:
            {
                bool before = pos > 0 && IsWord(UnicodeChars.CodePointAt(text, StepBack(text, pos), out _));
                bool after = pos < text.Length && IsWord(UnicodeChars.CodePointAt(text, pos, out _));
                return (before != after) == (kind == AssertKind.WordBoundary);
            }
            default:
                return false;
        }
    }

    private bool IsWord(int cp) => Dialect == RegexDialect.Rust ? UnicodeChars.IsRustWord(cp) : UnicodeChars.IsOnigWord(cp);
}
