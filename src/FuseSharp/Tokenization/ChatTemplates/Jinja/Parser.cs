namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>
/// jinja2's recursive-descent parser, producing the AST the interpreter runs. Precedence from loosest to
/// tightest: inline if, <c>or</c>, <c>and</c>, <c>not</c>, comparisons/<c>in</c>, <c>+ -</c>, <c>~</c>, <c>* / // %</c>,
/// <c>**</c> (left-associative, as in jinja2), unary <c>- +</c>, then postfix (<c>.a [b] (c)</c>) with filters and
/// <c>is</c> tests binding to the nearest operand. Statements: if/elif/else, for (else, <c>if</c> filter, recursive),
/// set (plain, tuple, namespace attribute, block), macro, call, filter, with, print, break/continue (jinja2's
/// loopcontrols) and transformers' generation block. Tags jinja2 knows but FuseSharp does not run (include, import,
/// extends, block, autoescape) fail with an Unsupported error naming the tag and line.
/// </summary>
internal sealed class Parser
{
    /// <summary>Nesting limit for expressions and blocks, so hostile input cannot overflow the stack.</summary>
    private const int MaxNesting = 100;
    private static readonly HashSet<string> UnsupportedTags = ["block", "extends", "include", "import", "from", "autoescape"];
    private readonly List<Token> tokens;
    private readonly List<HashSet<string>> nameUses = [];
    private readonly Stack<string[]> endTokenStack = new();
    private readonly Stack<string> tagStack = new();
    private int index;
    private int loopDepth;
    private int nesting;

    private Parser(List<Token> tokens) => this.tokens = tokens;

    public static List<Stmt> Parse(string source)
    {
        var parser = new Parser(Lexer.Tokenize(source));
        var body = parser.Subparse(null);
        if (parser.Current.Kind != TokenKind.Eof) throw parser.Fail($"unexpected {parser.Current.Describe()}");
        return body;
    }

    private Token Current => tokens[index];

    private Token Peek(int k = 1) => tokens[Math.Min(index + k, tokens.Count - 1)];

    private Token Next() => tokens[index < tokens.Count - 1 ? index++ : index];

    private ChatTemplateException Fail(string message, int line = -1) =>
        new(message, ChatTemplateErrorKind.Syntax, line < 0 ? Current.Line : line);

    private ChatTemplateException FailEof(string[]? endTokens = null)
    {
        endTokens ??= endTokenStack.Count > 0 ? endTokenStack.Peek() : null;
        var message = "Unexpected end of template.";
        if (endTokens is not null) message += " Jinja was looking for the following tags: " + string.Join(" or ", endTokens.Select(t => $"'{t}'")) + ".";
        if (tagStack.Count > 0) message += $" The innermost block that needs to be closed is '{tagStack.Peek()}'.";
        return Fail(message);
    }

    private Token Expect(TokenKind kind, string? text = null)
    {
        var t = Current;
        if (t.Kind != kind || (text is not null && t.Text != text))
        {
            var what = text ?? kind switch
            {
                TokenKind.BlockEnd => "end of statement block",
                TokenKind.VariableEnd => "end of print statement",
                TokenKind.Name => "name",
                _ => kind.ToString().ToLowerInvariant(),
            };
            if (t.Kind == TokenKind.Eof) throw Fail($"unexpected end of template, expected '{what}'.");
            throw Fail($"expected token '{what}', got '{t.Describe()}'");
        }
        return Next();
    }

    private bool SkipOp(string op)
    {
        if (!Current.IsOp(op)) return false;
        Next();
        return true;
    }

    private bool SkipName(string name)
    {
        if (!Current.IsName(name)) return false;
        Next();
        return true;
    }

    // ---- template structure ------------------------------------------------------------------------------------

    private List<Stmt> Subparse(string[]? endTokens)
    {
        var body = new List<Stmt>();
        var data = new List<object>();
        int dataLine = 0;
        if (endTokens is not null) endTokenStack.Push(endTokens);
        try
        {
            void Flush()
            {
                if (data.Count == 0) return;
                body.Add(new OutputStmt(dataLine, [.. data]));
                data.Clear();
            }
            while (Current.Kind != TokenKind.Eof)
            {
                var t = Current;
                switch (t.Kind)
                {
                    case TokenKind.Data:
                        if (data.Count == 0) dataLine = t.Line;
                        data.Add(t.Text);
                        Next();
                        break;
                    case TokenKind.VariableBegin:
                        Next();
                        if (data.Count == 0) dataLine = t.Line;
                        data.Add(ParseTuple(withCondExpr: true));
                        Expect(TokenKind.VariableEnd);
                        break;
                    case TokenKind.BlockBegin:
                        Flush();
                        Next();
                        if (endTokens is not null && Current.Kind == TokenKind.Name && endTokens.Contains(Current.Text)) return body;
                        body.Add(ParseStatement());
                        Expect(TokenKind.BlockEnd);
                        break;
                    default:
                        throw Fail($"unexpected {t.Describe()}");
                }
            }
            Flush();
            return body;
        }
        finally
        {
            if (endTokens is not null) endTokenStack.Pop();
        }
    }

    /// <summary>Parses a statement body up to one of <paramref name="endTokens"/>; the current token is then that end tag's name.</summary>
    private List<Stmt> ParseStatements(string[] endTokens, bool dropNeedle = false)
    {
        SkipOp(":");
        Expect(TokenKind.BlockEnd);
        if (++nesting > MaxNesting) throw Fail("blocks nested too deeply");
        List<Stmt> result;
        try
        {
            result = Subparse(endTokens);
        }
        finally
        {
            nesting--;
        }
        if (Current.Kind == TokenKind.Eof) throw FailEof(endTokens);
        if (dropNeedle) Next();
        return result;
    }

    private Stmt ParseStatement()
    {
        var t = Current;
        if (t.Kind != TokenKind.Name) throw Fail("tag name expected");
        tagStack.Push(t.Text);
        try
        {
            return ParseTag(t);
        }
        finally
        {
            tagStack.Pop();
        }
    }

    private Stmt ParseTag(Token t)
    {
        switch (t.Text)
        {
            case "if": return ParseIf();
            case "for": return ParseFor();
            case "set": return ParseSet();
            case "macro": return ParseMacro();
            case "call": return ParseCallBlock();
            case "filter": return ParseFilterBlock();
            case "with": return ParseWith();
            case "print": return ParsePrint();
            case "generation": return ParseGeneration();
            case "break" or "continue":
                Next();
                if (loopDepth == 0) throw Fail($"'{t.Text}' outside loop", t.Line);
                return new LoopControlStmt(t.Line, t.Text == "break" ? Flow.Break : Flow.Continue);
            default:
                if (UnsupportedTags.Contains(t.Text))
                {
                    throw new ChatTemplateException($"the '{{% {t.Text} %}}' tag is not supported in chat templates (FuseSharp renders a single template without a loader)",
                        ChatTemplateErrorKind.Unsupported, t.Line);
                }
                var message = $"Encountered unknown tag '{t.Text}'.";
                if (endTokenStack.Count > 0)
                {
                    message += " Jinja was looking for the following tags: " + string.Join(" or ", endTokenStack.Peek().Select(e => $"'{e}'")) + ".";
                }
                else if (t.Text is "do")
                {
                    message += " ('do' needs the jinja2.ext.do extension, which transformers does not enable.)";
                }
                throw Fail(message, t.Line);
        }
    }

    private IfStmt ParseIf()
    {
        int line = Expect(TokenKind.Name, "if").Line;
        var branches = new List<(Expr, List<Stmt>)>();
        List<Stmt> otherwise = [];
        while (true)
        {
            var test = ParseTuple(withCondExpr: false);
            var body = ParseStatements(["elif", "else", "endif"]);
            branches.Add((test, body));
            var end = Next();
            if (end.IsName("elif")) continue;
            if (end.IsName("else")) otherwise = ParseStatements(["endif"], dropNeedle: true);
            break;
        }
        return new IfStmt(line, branches, otherwise);
    }

    private ForStmt ParseFor()
    {
        int line = Expect(TokenKind.Name, "for").Line;
        var target = ParseAssignTarget(extraEndRules: ["in"]);
        Expect(TokenKind.Name, "in");
        var iter = ParseTuple(withCondExpr: false, extraEndRules: ["recursive"]);
        Expr? filter = null;
        if (SkipName("if")) filter = ParseExpression();
        bool recursive = SkipName("recursive");
        loopDepth++;
        var uses = new HashSet<string>(StringComparer.Ordinal);
        nameUses.Add(uses);
        List<Stmt> body;
        try
        {
            body = ParseStatements(["endfor", "else"]);
        }
        finally
        {
            loopDepth--;
            nameUses.RemoveAt(nameUses.Count - 1);
        }
        List<Stmt> otherwise = Next().IsName("endfor") ? [] : ParseStatements(["endfor"], dropNeedle: true);
        // jinja2 only creates the loop variable when the body mentions `loop` (or the loop is recursive).
        bool usesLoop = uses.Contains("loop");
        return new ForStmt(line, target, iter, filter, recursive, body, otherwise, usesLoop);
    }

    private Stmt ParseSet()
    {
        int line = Next().Line;
        var target = ParseAssignTarget(withNamespace: true);
        if (SkipOp("=")) return new SetStmt(line, target, ParseTuple());
        var filter = ParseFilter(null);
        var body = ParseStatements(["endset"], dropNeedle: true);
        return new SetBlockStmt(line, target, filter, body);
    }

    private MacroStmt ParseMacro()
    {
        int line = Next().Line;
        var name = Expect(TokenKind.Name).Text;
        var (parameters, defaults) = ParseSignature();
        var (body, features) = ParseMacroBody("endmacro");
        return new MacroStmt(line, name, parameters, defaults, body, features);
    }

    private (List<Stmt> Body, Macro.Features Features) ParseMacroBody(string end)
    {
        var uses = new HashSet<string>(StringComparer.Ordinal);
        nameUses.Add(uses);
        int savedLoopDepth = loopDepth;
        loopDepth = 0;
        List<Stmt> body;
        try
        {
            body = ParseStatements([end], dropNeedle: true);
        }
        finally
        {
            loopDepth = savedLoopDepth;
            nameUses.RemoveAt(nameUses.Count - 1);
        }
        var features = Macro.Features.None;
        if (uses.Contains("varargs")) features |= Macro.Features.Varargs;
        if (uses.Contains("kwargs")) features |= Macro.Features.Kwargs;
        if (uses.Contains("caller")) features |= Macro.Features.Caller;
        return (body, features);
    }

    private (string[] Parameters, Expr?[] Defaults) ParseSignature()
    {
        var parameters = new List<string>();
        var defaults = new List<Expr?>();
        Expect(TokenKind.Operator, "(");
        while (!Current.IsOp(")"))
        {
            if (parameters.Count > 0) Expect(TokenKind.Operator, ",");
            parameters.Add(Expect(TokenKind.Name).Text);
            if (SkipOp("=")) defaults.Add(ParseExpression());
            else if (defaults.Count > 0) throw Fail("non-default argument follows default argument");
        }
        Expect(TokenKind.Operator, ")");
        return ([.. parameters], [.. defaults]);
    }

    private CallBlockStmt ParseCallBlock()
    {
        int line = Next().Line;
        var (parameters, defaults) = Current.IsOp("(") ? ParseSignature() : ([], []);
        var call = ParseExpression() as CallExpr ?? throw Fail("expected call", line);
        var (body, features) = ParseMacroBody("endcall");
        return new CallBlockStmt(line, call, parameters, defaults, body, features);
    }

    private FilterBlockStmt ParseFilterBlock()
    {
        int line = Next().Line;
        var filter = ParseFilter(null, startInline: true)!;
        var body = ParseStatements(["endfilter"], dropNeedle: true);
        return new FilterBlockStmt(line, filter, body);
    }

    private WithStmt ParseWith()
    {
        int line = Next().Line;
        var assignments = new List<(Target, Expr)>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (assignments.Count > 0) Expect(TokenKind.Operator, ",");
            var target = ParseAssignTarget();
            Expect(TokenKind.Operator, "=");
            assignments.Add((target, ParseExpression()));
        }
        var body = ParseStatements(["endwith"], dropNeedle: true);
        return new WithStmt(line, assignments, body);
    }

    private OutputStmt ParsePrint()
    {
        int line = Next().Line;
        var items = new List<object>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (items.Count > 0) Expect(TokenKind.Operator, ",");
            items.Add(ParseExpression());
        }
        return new OutputStmt(line, items);
    }

    private GenerationStmt ParseGeneration()
    {
        int line = Next().Line;
        return new GenerationStmt(line, ParseStatements(["endgeneration"], dropNeedle: true));
    }

    // ---- assignment targets ------------------------------------------------------------------------------------

    /// <summary>A name, a namespace attribute (<c>ns.x</c>, with <paramref name="withNamespace"/>), or a tuple of targets.</summary>
    private Target ParseAssignTarget(string[]? extraEndRules = null, bool withNamespace = false)
    {
        int line = Current.Line;
        var (items, isTuple) = ParseTupleItems(() => ParseTargetPrimary(withNamespace), extraEndRules);
        if (!isTuple)
        {
            if (items.Count == 1) return items[0];
            throw Fail($"Expected an expression, got '{Current.Describe()}'", line);
        }
        return new TupleTarget(items);
    }

    private Target ParseTargetPrimary(bool withNamespace)
    {
        var t = Current;
        if (t.Kind == TokenKind.Name && t.Text is not ("true" or "false" or "True" or "False" or "none" or "None"))
        {
            Next();
            if (withNamespace && Current.IsOp("."))
            {
                Next();
                return new NamespaceTarget(t.Text, Expect(TokenKind.Name).Text);
            }
            return new NameTarget(t.Text);
        }
        if (t.IsOp("("))
        {
            Next();
            var inner = ParseAssignTarget();
            Expect(TokenKind.Operator, ")");
            return inner;
        }
        var expr = ParsePrimary();
        throw Fail($"can't assign to {(expr is ConstExpr ? "'const'" : "'" + expr.GetType().Name.Replace("Expr", "", StringComparison.Ordinal).ToLowerInvariant() + "'")}", t.Line);
    }

    // ---- expressions -------------------------------------------------------------------------------------------

    private bool IsTupleEnd(string[]? extraEndRules) =>
        Current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd || Current.IsOp(")") ||
        (extraEndRules is not null && Current.Kind == TokenKind.Name && extraEndRules.Contains(Current.Text));

    /// <summary>jinja2's tuple loop: items separated by commas until a tuple end; a trailing comma makes a tuple.</summary>
    private (List<T> Items, bool IsTuple) ParseTupleItems<T>(Func<T> parseItem, string[]? extraEndRules)
    {
        var items = new List<T>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0) Expect(TokenKind.Operator, ",");
            if (IsTupleEnd(extraEndRules)) break;
            items.Add(parseItem());
            if (Current.IsOp(",")) isTuple = true;
            else break;
        }
        return (items, isTuple);
    }

    private Expr ParseTuple(bool withCondExpr = true, string[]? extraEndRules = null, bool explicitParentheses = false)
    {
        int line = Current.Line;
        var (args, isTuple) = ParseTupleItems(() => ParseExpression(withCondExpr), extraEndRules);
        if (!isTuple)
        {
            if (args.Count > 0) return args[0];
            if (!explicitParentheses)
            {
                if (Current.Kind == TokenKind.Eof) throw FailEof();
                throw Fail($"Expected an expression, got '{Current.Describe()}'");
            }
        }
        return new ListExpr(line, args, isTuple: true);
    }

    private Expr ParseExpression(bool withCondExpr = true)
    {
        if (++nesting > MaxNesting) throw Fail("expression nested too deeply");
        try
        {
            return withCondExpr ? ParseCondExpr() : ParseOr();
        }
        finally
        {
            nesting--;
        }
    }

    private Expr ParseCondExpr()
    {
        int line = Current.Line;
        var expr = ParseOr();
        while (SkipName("if"))
        {
            var test = ParseOr();
            Expr? otherwise = SkipName("else") ? ParseCondExpr() : null;
            expr = new CondExpr(line, test, expr, otherwise);
            line = Current.Line;
        }
        return expr;
    }

    private Expr ParseOr()
    {
        int line = Current.Line;
        var left = ParseAnd();
        while (SkipName("or")) left = new LogicalExpr(line, false, left, ParseAnd());
        return left;
    }

    private Expr ParseAnd()
    {
        int line = Current.Line;
        var left = ParseNot();
        while (SkipName("and")) left = new LogicalExpr(line, true, left, ParseNot());
        return left;
    }

    private Expr ParseNot()
    {
        if (Current.IsName("not"))
        {
            int line = Next().Line;
            return new NotExpr(line, ParseNot());
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        int line = Current.Line;
        var expr = ParseMath1();
        var ops = new List<(string, Expr)>();
        while (true)
        {
            var t = Current;
            if (t.Kind == TokenKind.Operator && t.Text is "==" or "!=" or "<" or "<=" or ">" or ">=")
            {
                Next();
                ops.Add((t.Text, ParseMath1()));
            }
            else if (SkipName("in"))
            {
                ops.Add(("in", ParseMath1()));
            }
            else if (t.IsName("not") && Peek().IsName("in"))
            {
                Next();
                Next();
                ops.Add(("notin", ParseMath1()));
            }
            else
            {
                break;
            }
        }
        return ops.Count == 0 ? expr : new CompareExpr(line, expr, ops);
    }

    private Expr ParseMath1() => ParseLeftAssociative(ParseConcat, "+", "-");

    private Expr ParseConcat()
    {
        int line = Current.Line;
        var first = ParseMath2();
        if (!Current.IsOp("~")) return first;
        var items = new List<Expr> { first };
        while (SkipOp("~")) items.Add(ParseMath2());
        return new ConcatExpr(line, items);
    }

    private Expr ParseMath2() => ParseLeftAssociative(ParsePow, "*", "/", "//", "%");

    /// <summary><c>**</c> is left-associative in jinja2 (<c>2 ** 3 ** 2</c> is 64), unlike Python.</summary>
    private Expr ParsePow() => ParseLeftAssociative(() => ParseUnary(), "**");

    /// <summary>One precedence level of left-associative binary operators over <paramref name="operand"/>.</summary>
    private Expr ParseLeftAssociative(Func<Expr> operand, params string[] operators)
    {
        int line = Current.Line;
        var left = operand();
        while (Current.Kind == TokenKind.Operator && operators.Contains(Current.Text))
        {
            var op = Next().Text;
            left = new BinaryExpr(line, op, left, operand());
        }
        return left;
    }

    private Expr ParseUnary(bool withFilter = true)
    {
        int line = Current.Line;
        Expr node;
        if (SkipOp("-")) node = new NegExpr(line, ParseUnary(false), negate: true);
        else if (SkipOp("+")) node = new NegExpr(line, ParseUnary(false), negate: false);
        else node = ParsePrimary();
        node = ParsePostfix(node);
        return withFilter ? ParseFilterExpr(node) : node;
    }

    private Expr ParsePrimary()
    {
        var t = Current;
        switch (t.Kind)
        {
            case TokenKind.Name:
                Next();
                switch (t.Text)
                {
                    case "true" or "True": return new ConstExpr(t.Line, Py.True);
                    case "false" or "False": return new ConstExpr(t.Line, Py.False);
                    case "none" or "None": return new ConstExpr(t.Line, null);
                }
                foreach (var uses in nameUses) uses.Add(t.Text);
                return new NameExpr(t.Line, t.Text);
            case TokenKind.String:
                Next();
                var text = (string)t.Value!;
                while (Current.Kind == TokenKind.String) text += (string)Next().Value!;
                return new ConstExpr(t.Line, text);
            case TokenKind.Integer or TokenKind.Float:
                Next();
                return new ConstExpr(t.Line, t.Value);
            case TokenKind.Operator when t.Text == "(":
                Next();
                var inner = ParseTuple(explicitParentheses: true);
                Expect(TokenKind.Operator, ")");
                return inner;
            case TokenKind.Operator when t.Text == "[":
                return ParseList();
            case TokenKind.Operator when t.Text == "{":
                return ParseDict();
            case TokenKind.Eof:
                throw FailEof();
            default:
                throw Fail($"unexpected '{t.Describe()}'");
        }
    }

    private ListExpr ParseList()
    {
        int line = Expect(TokenKind.Operator, "[").Line;
        var items = new List<Expr>();
        while (!Current.IsOp("]"))
        {
            if (items.Count > 0) Expect(TokenKind.Operator, ",");
            if (Current.IsOp("]")) break;
            items.Add(ParseExpression());
        }
        Expect(TokenKind.Operator, "]");
        return new ListExpr(line, items, isTuple: false);
    }

    private DictExpr ParseDict()
    {
        int line = Expect(TokenKind.Operator, "{").Line;
        var pairs = new List<(Expr, Expr)>();
        while (!Current.IsOp("}"))
        {
            if (pairs.Count > 0) Expect(TokenKind.Operator, ",");
            if (Current.IsOp("}")) break;
            var key = ParseExpression();
            Expect(TokenKind.Operator, ":");
            pairs.Add((key, ParseExpression()));
        }
        Expect(TokenKind.Operator, "}");
        return new DictExpr(line, pairs);
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (Current.IsOp(".") || Current.IsOp("[")) node = ParseSubscript(node);
            else if (Current.IsOp("(")) node = ParseCall(node);
            else return node;
        }
    }

    private Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (Current.IsOp("|")) node = ParseFilter(node)!;
            else if (Current.IsName("is")) node = ParseTest(node);
            else if (Current.IsOp("(")) node = ParseCall(node);
            else return node;
        }
    }

    private Expr ParseSubscript(Expr node)
    {
        var t = Next();
        if (t.IsOp("."))
        {
            var attr = Next();
            if (attr.Kind == TokenKind.Name) return new GetAttrExpr(t.Line, node, attr.Text);
            if (attr.Kind != TokenKind.Integer) throw Fail("expected name or number", attr.Line);
            return new GetItemExpr(t.Line, node, new ConstExpr(attr.Line, attr.Value));
        }
        var args = new List<object>();
        while (!Current.IsOp("]"))
        {
            if (args.Count > 0) Expect(TokenKind.Operator, ",");
            args.Add(ParseSubscribed());
        }
        Expect(TokenKind.Operator, "]");
        if (args.Count == 1)
        {
            return args[0] is SliceSpec s ? new SliceExpr(t.Line, node, s.Start, s.Stop, s.Step) : new GetItemExpr(t.Line, node, (Expr)args[0]);
        }
        if (args.Exists(a => a is SliceSpec))
            throw new ChatTemplateException("extended slicing (several slices in one subscript) is not supported", ChatTemplateErrorKind.Unsupported, t.Line);
        return new GetItemExpr(t.Line, node, new ListExpr(t.Line, args.Cast<Expr>().ToList(), isTuple: true));
    }

    private sealed record SliceSpec(Expr? Start, Expr? Stop, Expr? Step);

    private object ParseSubscribed()
    {
        Expr? start = null;
        if (!Current.IsOp(":"))
        {
            var node = ParseExpression();
            if (!Current.IsOp(":")) return node;
            start = node;
        }
        Next();
        Expr? stop = null, step = null;
        if (!Current.IsOp(":") && !Current.IsOp("]") && !Current.IsOp(",")) stop = ParseExpression();
        if (SkipOp(":") && !Current.IsOp("]") && !Current.IsOp(",")) step = ParseExpression();
        return new SliceSpec(start, stop, step);
    }

    private CallArgs ParseCallArgs()
    {
        var open = Expect(TokenKind.Operator, "(");
        var positional = new List<Expr>();
        var keywords = new List<(string, Expr)>();
        Expr? dynArgs = null, dynKwargs = null;
        bool requireComma = false;
        void Ensure(bool ok)
        {
            if (!ok) throw Fail("invalid syntax for function call expression", open.Line);
        }
        while (!Current.IsOp(")"))
        {
            if (requireComma)
            {
                Expect(TokenKind.Operator, ",");
                if (Current.IsOp(")")) break;
            }
            if (SkipOp("*"))
            {
                Ensure(dynArgs is null && dynKwargs is null);
                dynArgs = ParseExpression();
            }
            else if (SkipOp("**"))
            {
                Ensure(dynKwargs is null);
                dynKwargs = ParseExpression();
            }
            else if (Current.Kind == TokenKind.Name && Peek().IsOp("="))
            {
                Ensure(dynKwargs is null);
                var key = Next().Text;
                Next();
                keywords.Add((key, ParseExpression()));
            }
            else
            {
                Ensure(dynArgs is null && dynKwargs is null && keywords.Count == 0);
                positional.Add(ParseExpression());
            }
            requireComma = true;
        }
        Expect(TokenKind.Operator, ")");
        return new CallArgs(positional, keywords, dynArgs, dynKwargs);
    }

    private CallExpr ParseCall(Expr node)
    {
        int line = Current.Line;
        return new CallExpr(line, node, ParseCallArgs());
    }

    private string ParseDottedName()
    {
        var name = Expect(TokenKind.Name).Text;
        while (SkipOp(".")) name += "." + Expect(TokenKind.Name).Text;
        return name;
    }

    private FilterExpr? ParseFilter(Expr? node, bool startInline = false)
    {
        FilterExpr? result = null;
        while (Current.IsOp("|") || startInline)
        {
            if (!startInline) Next();
            int line = Current.Line;
            var name = ParseDottedName();
            var args = Current.IsOp("(") ? ParseCallArgs() : CallArgs.Empty;
            result = new FilterExpr(line, node, name, args);
            node = result;
            startInline = false;
        }
        return result;
    }

    private Expr ParseTest(Expr node)
    {
        int line = Next().Line;
        bool negated = SkipName("not");
        var name = ParseDottedName();
        CallArgs args;
        if (Current.IsOp("("))
        {
            args = ParseCallArgs();
        }
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float || Current.IsOp("(") || Current.IsOp("[") || Current.IsOp("{"))
                 && !Current.IsName("else") && !Current.IsName("or") && !Current.IsName("and"))
        {
            if (Current.IsName("is")) throw Fail("You cannot chain multiple tests with is");
            var arg = ParsePostfix(ParsePrimary());
            args = new CallArgs([arg], [], null, null);
        }
        else
        {
            args = CallArgs.Empty;
        }
        Expr test = new TestExpr(line, node, name, args);
        return negated ? new NotExpr(line, test) : test;
    }
}
