using System.Globalization;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Patterns;

internal abstract record RegexNode;

internal sealed record SetNode(CharClass Set) : RegexNode;

internal sealed record SequenceNode(List<RegexNode> Items) : RegexNode;

internal sealed record AlternationNode(List<RegexNode> Branches) : RegexNode;

/// <summary><c>Max</c> = -1 for unbounded.</summary>
internal sealed record RepeatNode(RegexNode Body, int Min, int Max, bool Greedy, bool Possessive) : RegexNode;

internal enum GroupKind
{
    Atomic,
    LookAhead,
    NegativeLookAhead,
    LookBehind,
    NegativeLookBehind,
}

internal sealed record GroupNode(RegexNode Body, GroupKind Kind) : RegexNode;

internal enum AssertKind
{
    LineStart,
    LineEnd,
    TextStart,
    TextEnd,
    TextEndOrFinalNewline,
    WordBoundary,
    NotWordBoundary,
}

internal sealed record AssertNode(AssertKind Kind) : RegexNode;

/// <summary>
/// Parses the regex subset that tokenizer files use (Oniguruma/Ruby syntax, which also covers the Rust crate's):
/// literals and escapes, classes with ranges, <c>\p{..}</c> general categories, <c>\s \d \w \h</c>, alternation,
/// groups (capturing groups are treated as non-capturing), <c>(?i)</c>/<c>(?m)</c> flags, greedy/lazy/possessive
/// quantifiers, atomic groups, look-ahead and fixed-length look-behind, anchors. Anything else (back-references,
/// script properties, conditionals) is rejected with a message naming the construct.
/// </summary>
internal sealed class RegexParser
{
    private readonly string pattern;
    private readonly RegexDialect dialect;
    private int i;

    private RegexParser(string pattern, RegexDialect dialect)
    {
        this.pattern = pattern;
        this.dialect = dialect;
    }

    public static RegexNode Parse(string pattern, RegexDialect dialect)
    {
        var p = new RegexParser(pattern, dialect);
        var node = p.ParseAlternation(ignoreCase: false, dotAll: false);
        if (p.i < pattern.Length) throw p.Error("unbalanced ')'");
        return node;
    }

    private TokenizerException Error(string what) =>
        new($"regex /{pattern}/: {what} at position {i}", "only the regex subset used by tokenizer files is supported (Oniguruma/Ruby syntax without back-references or script properties)");

    private bool More => i < pattern.Length;

    private char Peek => pattern[i];

    private RegexNode ParseAlternation(bool ignoreCase, bool dotAll)
    {
        var branches = new List<RegexNode> { ParseSequence(ref ignoreCase, ref dotAll) };
        while (More && Peek == '|')
        {
            i++;
            branches.Add(ParseSequence(ref ignoreCase, ref dotAll));
        }
        return branches.Count == 1 ? branches[0] : new AlternationNode(branches);
    }

    // Inline flags such as (?i) change the flags for the rest of the enclosing group, so they are passed by ref.
    private SequenceNode ParseSequence(ref bool ignoreCase, ref bool dotAll)
    {
        var items = new List<RegexNode>();
        while (More && Peek != '|' && Peek != ')')
        {
            var atom = ParseAtom(ref ignoreCase, ref dotAll);
            if (atom is null) continue;
            items.Add(ParseQuantifiers(atom));
        }
        return new SequenceNode(items);
    }

    private RegexNode ParseQuantifiers(RegexNode atom)
    {
        while (More)
        {
            int min, max;
            int save = i;
            switch (Peek)
            {
                case '*': i++; min = 0; max = -1; break;
                case '+': i++; min = 1; max = -1; break;
                case '?': i++; min = 0; max = 1; break;
                case '{':
                    if (!TryParseBraces(out min, out max))
                    {
                        i = save;
                        return atom;
                    }
                    break;
                default:
                    return atom;
            }
            bool greedy = true, possessive = false;
            if (More && Peek == '?') { i++; greedy = false; }
            else if (More && Peek == '+' && pattern[save] != '{') { i++; possessive = true; }
            atom = new RepeatNode(atom, min, max, greedy, possessive);
        }
        return atom;
    }

    // {n}, {n,}, {n,m}, {,m} (Ruby); anything else is a literal '{'.
    private bool TryParseBraces(out int min, out int max)
    {
        min = max = 0;
        int j = i + 1;
        int start = j;
        while (j < pattern.Length && char.IsAsciiDigit(pattern[j])) j++;
        bool hasMin = j > start;
        if (hasMin) min = int.Parse(pattern.AsSpan(start, j - start), CultureInfo.InvariantCulture);
        if (j < pattern.Length && pattern[j] == '}')
        {
            if (!hasMin) return false;
            max = min;
            i = j + 1;
            return true;
        }
        if (j >= pattern.Length || pattern[j] != ',') return false;
        j++;
        int start2 = j;
        while (j < pattern.Length && char.IsAsciiDigit(pattern[j])) j++;
        bool hasMax = j > start2;
        if (j >= pattern.Length || pattern[j] != '}' || (!hasMin && !hasMax)) return false;
        max = hasMax ? int.Parse(pattern.AsSpan(start2, j - start2), CultureInfo.InvariantCulture) : -1;
        if (max != -1 && max < min) throw Error("quantifier {n,m} with m < n");
        if (min > 1000 || max > 1000) throw Error("repetition count above 1000");
        i = j + 1;
        return true;
    }

    private RegexNode? ParseAtom(ref bool ignoreCase, ref bool dotAll)
    {
        char c = Peek;
        switch (c)
        {
            case '(':
                return ParseGroup(ref ignoreCase, ref dotAll);
            case '[':
                i++;
                return new SetNode(ParseClass(ignoreCase));
            case '.':
                i++;
                return new SetNode(CharClass.OfBuiltin(dotAll ? CharClass.Builtin.Any : CharClass.Builtin.AnyButNewline, false, dialect));
            case '^':
                i++;
                return new AssertNode(dialect == RegexDialect.Oniguruma ? AssertKind.LineStart : AssertKind.TextStart);
            case '$':
                i++;
                return new AssertNode(dialect == RegexDialect.Oniguruma ? AssertKind.LineEnd : AssertKind.TextEnd);
            case '\\':
                return ParseEscape(ignoreCase);
            case '*' or '+' or '?':
                throw Error($"quantifier '{c}' without anything to repeat");
            default:
                return Literal(ReadPatternCodePoint(), ignoreCase);
        }
    }

    private int ReadPatternCodePoint()
    {
        int cp = UnicodeChars.CodePointAt(pattern, i, out int len);
        i += len;
        return cp;
    }

    private SetNode Literal(int cp, bool ignoreCase) => new(CharClass.Single(cp, dialect, ignoreCase));

    private RegexNode? ParseGroup(ref bool outerIgnoreCase, ref bool outerDotAll)
    {
        i++; // '('
        bool ignoreCase = outerIgnoreCase, dotAll = outerDotAll;
        GroupKind? kind = null;
        if (More && Peek == '?')
        {
            i++;
            if (!More) throw Error("unterminated group");
            switch (Peek)
            {
                case ':': i++; break;
                case '>': i++; kind = GroupKind.Atomic; break;
                case '=': i++; kind = GroupKind.LookAhead; break;
                case '!': i++; kind = GroupKind.NegativeLookAhead; break;
                case '<' when i + 1 < pattern.Length && pattern[i + 1] == '=': i += 2; kind = GroupKind.LookBehind; break;
                case '<' when i + 1 < pattern.Length && pattern[i + 1] == '!': i += 2; kind = GroupKind.NegativeLookBehind; break;
                case '<' or 'P' or '\'':
                    // Named group: (?<name>...) / (?P<name>...) / (?'name'...): matched like a plain group.
                    int close = pattern.IndexOfAny(['>', '\''], i + 1);
                    if (close < 0) throw Error("unterminated group name");
                    i = close + 1;
                    break;
                case '#':
                    int end = pattern.IndexOf(')', i);
                    if (end < 0) throw Error("unterminated comment group");
                    i = end + 1;
                    return null;
                default:
                    bool on = true;
                    while (More && Peek != ':' && Peek != ')')
                    {
                        switch (Peek)
                        {
                            case '-': on = false; break;
                            case 'i': ignoreCase = on; break;
                            case 'm': dotAll = on; break; // Ruby's m is "dot matches newline"
                            case 's' when dialect == RegexDialect.Rust: dotAll = on; break;
                            default: throw Error($"inline flag '{Peek}'");
                        }
                        i++;
                    }
                    if (!More) throw Error("unterminated group");
                    if (Peek == ')')
                    {
                        // (?i) applies to the rest of the enclosing group.
                        i++;
                        outerIgnoreCase = ignoreCase;
                        outerDotAll = dotAll;
                        return null;
                    }
                    i++; // ':'
                    break;
            }
        }
        var body = ParseAlternation(ignoreCase, dotAll);
        if (!More || Peek != ')') throw Error("missing ')'");
        i++;
        return kind is null ? body : new GroupNode(body, kind.Value);
    }

    private RegexNode ParseEscape(bool ignoreCase)
    {
        i++; // '\'
        if (!More) throw Error("trailing backslash");
        char c = pattern[i++];
        switch (c)
        {
            case 'A': return new AssertNode(AssertKind.TextStart);
            case 'z': return new AssertNode(AssertKind.TextEnd);
            case 'Z': return new AssertNode(AssertKind.TextEndOrFinalNewline);
            case 'b': return new AssertNode(AssertKind.WordBoundary);
            case 'B': return new AssertNode(AssertKind.NotWordBoundary);
            case 'G': throw Error("\\G");
            case >= '1' and <= '9': throw Error($"back-reference \\{c}");
            case 'k': throw Error("named back-reference \\k");
        }
        i--;
        var set = TryParseClassEscape(ignoreCase);
        if (set is not null) return new SetNode(set);
        return Literal(ParseEscapedCodePoint(), ignoreCase);
    }

    // \s \S \d \D \w \W \h \H \p{..} \P{..} at position i (just after the backslash); null if not a class escape.
    private CharClass? TryParseClassEscape(bool ignoreCase)
    {
        char c = pattern[i];
        switch (c)
        {
            case 's' or 'S': i++; return CharClass.OfBuiltin(CharClass.Builtin.Space, c == 'S', dialect);
            case 'd' or 'D': i++; return CharClass.OfBuiltin(CharClass.Builtin.Digit, c == 'D', dialect);
            case 'w' or 'W': i++; return CharClass.OfBuiltin(CharClass.Builtin.Word, c == 'W', dialect);
            case 'h' or 'H' when dialect == RegexDialect.Oniguruma: i++; return CharClass.OfBuiltin(CharClass.Builtin.Hex, c == 'H', dialect);
            case 'p' or 'P':
            {
                i++;
                bool negated = c == 'P';
                string name;
                if (More && Peek == '{')
                {
                    int close = pattern.IndexOf('}', i);
                    if (close < 0) throw Error("unterminated \\p{");
                    name = pattern[(i + 1)..close];
                    i = close + 1;
                }
                else if (More)
                {
                    name = pattern[i].ToString();
                    i++;
                }
                else
                {
                    throw Error("\\p without a property");
                }
                if (name.StartsWith('^'))
                {
                    negated = !negated;
                    name = name[1..];
                }
                var cls = new CharClass(dialect, ignoreCase) { Negated = negated };
                AddProperty(cls, name);
                return cls.Freeze();
            }
            default:
                return null;
        }
    }

    private void AddProperty(CharClass cls, string rawName)
    {
        var name = rawName.Replace("_", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();
        if (name.StartsWith("gc=", StringComparison.Ordinal) || name.StartsWith("generalcategory=", StringComparison.Ordinal)) name = name[(name.IndexOf('=') + 1)..];
        uint mask = CategoryMask(name);
        if (mask != 0)
        {
            cls.AddCategories(mask);
            return;
        }
        switch (name)
        {
            case "any": cls.AddBuiltin(CharClass.Builtin.Any); return;
            case "space" or "whitespace": cls.AddBuiltin(CharClass.Builtin.Space); return;
            case "digit": cls.AddCategories(UnicodeChars.Bit(UnicodeCategory.DecimalDigitNumber)); return;
            case "word": cls.AddBuiltin(CharClass.Builtin.Word); return;
            case "alnum": cls.AddCategories(UnicodeChars.LetterMask | UnicodeChars.MarkMask | UnicodeChars.Bit(UnicodeCategory.DecimalDigitNumber)); return;
            case "ascii": cls.AddRange(0, 0x7F); return;
        }
        throw Error($"Unicode property \\p{{{rawName}}} (only general categories are available)");
    }

    private static uint CategoryMask(string n)
    {
        static uint B(UnicodeCategory c) => UnicodeChars.Bit(c);
        return n switch
        {
            "l" or "letter" => UnicodeChars.LetterMask,
            "lu" or "uppercaseletter" => B(UnicodeCategory.UppercaseLetter),
            "ll" or "lowercaseletter" => B(UnicodeCategory.LowercaseLetter),
            "lt" or "titlecaseletter" => B(UnicodeCategory.TitlecaseLetter),
            "lm" or "modifierletter" => B(UnicodeCategory.ModifierLetter),
            "lo" or "otherletter" => B(UnicodeCategory.OtherLetter),
            "lc" or "casedletter" => B(UnicodeCategory.UppercaseLetter) | B(UnicodeCategory.LowercaseLetter) | B(UnicodeCategory.TitlecaseLetter),
            "m" or "mark" or "combiningmark" => UnicodeChars.MarkMask,
            "mn" or "nonspacingmark" => B(UnicodeCategory.NonSpacingMark),
            "mc" or "spacingmark" => B(UnicodeCategory.SpacingCombiningMark),
            "me" or "enclosingmark" => B(UnicodeCategory.EnclosingMark),
            "n" or "number" => UnicodeChars.NumberMask,
            "nd" or "decimalnumber" => B(UnicodeCategory.DecimalDigitNumber),
            "nl" or "letternumber" => B(UnicodeCategory.LetterNumber),
            "no" or "othernumber" => B(UnicodeCategory.OtherNumber),
            "p" or "punctuation" or "punct" => UnicodeChars.PunctuationMask,
            "pc" or "connectorpunctuation" => B(UnicodeCategory.ConnectorPunctuation),
            "pd" or "dashpunctuation" => B(UnicodeCategory.DashPunctuation),
            "ps" or "openpunctuation" => B(UnicodeCategory.OpenPunctuation),
            "pe" or "closepunctuation" => B(UnicodeCategory.ClosePunctuation),
            "pi" or "initialpunctuation" => B(UnicodeCategory.InitialQuotePunctuation),
            "pf" or "finalpunctuation" => B(UnicodeCategory.FinalQuotePunctuation),
            "po" or "otherpunctuation" => B(UnicodeCategory.OtherPunctuation),
            "s" or "symbol" => UnicodeChars.SymbolMask,
            "sm" or "mathsymbol" => B(UnicodeCategory.MathSymbol),
            "sc" or "currencysymbol" => B(UnicodeCategory.CurrencySymbol),
            "sk" or "modifiersymbol" => B(UnicodeCategory.ModifierSymbol),
            "so" or "othersymbol" => B(UnicodeCategory.OtherSymbol),
            "z" or "separator" => UnicodeChars.SeparatorMask,
            "zs" or "spaceseparator" => B(UnicodeCategory.SpaceSeparator),
            "zl" or "lineseparator" => B(UnicodeCategory.LineSeparator),
            "zp" or "paragraphseparator" => B(UnicodeCategory.ParagraphSeparator),
            "c" or "other" => UnicodeChars.OtherMask,
            "cc" or "control" or "cntrl" => B(UnicodeCategory.Control),
            "cf" or "format" => B(UnicodeCategory.Format),
            "cs" or "surrogate" => B(UnicodeCategory.Surrogate),
            "co" or "privateuse" => B(UnicodeCategory.PrivateUse),
            "cn" or "unassigned" => B(UnicodeCategory.OtherNotAssigned),
            _ => 0,
        };
    }

    // After the backslash: a literal code point (\n, \t, \x41, \x{1F600}, \u00e9, \., ...).
    private int ParseEscapedCodePoint()
    {
        char c = pattern[i++];
        switch (c)
        {
            case 'n': return '\n';
            case 'r': return '\r';
            case 't': return '\t';
            case 'f': return '\f';
            case 'v': return '\v';
            case 'a': return '\a';
            case 'e': return 0x1B;
            case '0':
            {
                int v = 0, n = 0;
                while (n < 2 && More && Peek is >= '0' and <= '7') { v = v * 8 + (pattern[i++] - '0'); n++; }
                return v;
            }
            case 'x': return HexEscape('x', 2);
            case 'u': return HexEscape('u', 4);
            default:
                if (char.IsAsciiLetterOrDigit(c)) throw Error($"escape \\{c}");
                i--;
                return ReadPatternCodePoint();
        }
    }

    // \x41 / \u00e9 (fixed number of hex digits) or \x{1F600} / \u{1F600} (braced).
    private int HexEscape(char kind, int digits)
    {
        if (!More || Peek != '{') return ParseHex(Take(digits, hexOnly: true));
        int close = pattern.IndexOf('}', i);
        if (close < 0) throw Error($"unterminated \\{kind}{{");
        var hex = pattern[(i + 1)..close];
        i = close + 1;
        return ParseHex(hex);
    }

    private string Take(int n, bool hexOnly)
    {
        int start = i;
        while (i < pattern.Length && i - start < n && (!hexOnly || char.IsAsciiHexDigit(pattern[i]))) i++;
        if (i == start) throw Error("escape without hex digits");
        return pattern[start..i];
    }

    private int ParseHex(string hex)
    {
        if (!int.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v) || v > 0x10FFFF)
            throw Error($"bad hex escape '{hex}'");
        return v;
    }

    // After '[': items up to the matching ']'.
    private CharClass ParseClass(bool ignoreCase)
    {
        var cls = new CharClass(dialect, ignoreCase);
        if (More && Peek == '^')
        {
            cls.Negated = true;
            i++;
        }
        bool first = true;
        while (true)
        {
            if (!More) throw Error("unterminated character class");
            char c = Peek;
            if (c == ']' && !first)
            {
                i++;
                break;
            }
            first = false;
            if (c == '[')
            {
                if (i + 1 < pattern.Length && pattern[i + 1] == ':') throw Error("POSIX bracket expression");
                i++;
                cls.AddNested(ParseClass(ignoreCase));
                continue;
            }
            if (c == '&' && i + 1 < pattern.Length && pattern[i + 1] == '&') throw Error("class intersection '&&'");
            int lo;
            if (c == '\\')
            {
                i++;
                if (!More) throw Error("trailing backslash");
                var nested = TryParseClassEscape(ignoreCase);
                if (nested is not null)
                {
                    cls.AddNested(nested);
                    continue;
                }
                lo = Peek == 'b' ? Advance('\b') : ParseEscapedCodePoint();
            }
            else
            {
                lo = ReadPatternCodePoint();
            }
            int hi = lo;
            if (More && Peek == '-' && i + 1 < pattern.Length && pattern[i + 1] != ']')
            {
                i++;
                if (Peek == '\\')
                {
                    i++;
                    if (!More) throw Error("trailing backslash");
                    hi = ParseEscapedCodePoint();
                }
                else
                {
                    hi = ReadPatternCodePoint();
                }
                if (hi < lo) throw Error("class range out of order");
            }
            cls.AddRange(lo, hi);
        }
        return cls.Freeze();
    }

    private int Advance(char value)
    {
        i++;
        return value;
    }
}
