using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.PreTokenizers;

namespace FuseSharp.Tokenization.Training;

/// <summary>
/// Trains a tokenizer from text and produces a complete Hugging Face <c>tokenizer.json</c> (plus
/// <c>tokenizer_config.json</c>): <see cref="TokenizerKind.ByteLevelBpe"/> (GPT-2 layout), <see cref="TokenizerKind.SentencePieceBpe"/>
/// (Llama layout, with a Metaspace pre-tokenizer) or <see cref="TokenizerKind.Unigram"/> (SentencePiece / T5 layout).
/// The pipeline sections are written first and the training text is cut into words by the very components the
/// project's loader builds from them, so the tokenizer segments text exactly as it was trained. Vocabulary layouts:
/// <list type="bullet">
/// <item>byte-level BPE: special tokens, the 256 byte characters sorted by code point, merges in order (Hugging Face's
/// <c>BpeTrainer</c>; the cs336 reference vocabulary has the same ids);</item>
/// <item>SentencePiece BPE: special tokens (<c>&lt;unk&gt; &lt;s&gt; &lt;/s&gt;</c> first by default), the 256 <c>&lt;0xNN&gt;</c>
/// pieces with byte fallback, merged pieces in order, then the base characters by frequency (SentencePiece's ids);</item>
/// <item>unigram: special tokens, byte pieces, then pieces by score (SentencePiece's ids; specials and bytes score 0).</item>
/// </list>
/// With <see cref="SpecialTokensPlacement.End"/> the special tokens move after everything else.
/// </summary>
public static class TokenizerTrainer
{
    /// <summary>Trains from files (text or JSON lines), reading them once, in parallel.</summary>
    /// <exception cref="TokenizerTrainingException">Bad options, an unreadable, malformed or empty input, or a vocabulary too small for the alphabet.</exception>
    public static TrainedTokenizer Train(IReadOnlyList<TrainingInput> inputs, TokenizerTrainingOptions options, IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        options = options.Resolve();
        progress ??= NullProgress.Instance;
        var corpus = new TrainingCorpus(inputs, options.ResolvedSpecialTokens);
        long bytes = corpus.CheckInputs();
        return Run(options, (counter, chars) =>
        {
            using var task = progress.Start("counting words", bytes, ProgressUnit.Bytes);
            return counter.Count(corpus.Batches(task.Advance, cancellation), chars, cancellation);
        }, bytes, progress, cancellation);
    }

    /// <summary>Trains from in-memory documents (each one is cut into words as a whole).</summary>
    public static TrainedTokenizer Train(IEnumerable<string> documents, TokenizerTrainingOptions options, IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(documents);
        options = options.Resolve();
        return Run(options, (counter, chars) => counter.Count(documents.Select(d => new List<string> { d }), chars, cancellation), 0, progress ?? NullProgress.Instance, cancellation);
    }

    private static TrainedTokenizer Run(TokenizerTrainingOptions options, Func<WordCounter, Action<long>, Dictionary<string, long>> count, long inputBytes,
        IProgressReporter progress, CancellationToken cancellation)
    {
        var layout = Layout(options, null);
        var clock = Stopwatch.StartNew();
        Dictionary<string, long> words;
        long chars = 0;
        using (var doc = JsonDocument.Parse(layout.ToJsonString()))
        {
            var root = new JsonSection(doc.RootElement, "<trainer>", "");
            var normalizer = root.ChildOrNull("normalizer") is { } n ? NormalizerFactory.Create(n) : null;
            var preTokenizer = PreTokenizerFactory.Create(root.Child("pre_tokenizer"));
            var counter = new WordCounter(normalizer, preTokenizer, options.ResolvedSpecialTokens, cutLongWords: options.IsSentencePiece);
            words = count(counter, c => Interlocked.Add(ref chars, c));
        }
        var countTime = clock.Elapsed;
        if (words.Count == 0)
            throw new TokenizerTrainingException("the training text is empty (no words after removing special tokens)", "give files with some text");
        // Unique words in ordinal order: the result does not depend on how counting was scheduled.
        var unique = words.Keys.Order(StringComparer.Ordinal).ToArray();
        var counts = unique.Select(w => words[w]).ToArray();
        words.Clear();
        var stats = new TrainingStats { InputBytes = inputBytes, Characters = chars, Words = counts.Sum(), UniqueWords = unique.Length, CountTime = countTime };
        return TrainWords(options, unique, counts, stats, progress, cancellation);
    }

    /// <summary>Trains on counted words (in a fixed order), with resolved options.</summary>
    internal static TrainedTokenizer TrainWords(TokenizerTrainingOptions options, string[] unique, long[] counts, TrainingStats? stats, IProgressReporter? progress, CancellationToken cancellation)
    {
        stats ??= new TrainingStats { Words = counts.Sum(), UniqueWords = unique.Length };
        progress ??= NullProgress.Instance;
        var clock = Stopwatch.StartNew();
        var trained = options.Kind switch
        {
            TokenizerKind.ByteLevelBpe => ByteLevel(options, unique, counts, stats, progress, cancellation),
            TokenizerKind.SentencePieceBpe => SentencePieceBpe(options, unique, counts, stats, progress, cancellation),
            _ => Unigram(options, unique, counts, stats, progress, cancellation),
        };
        trained.Stats.TrainTime = clock.Elapsed;
        return trained;
    }

    // ---- byte-level BPE --------------------------------------------------------------------------------------

    private static TrainedTokenizer ByteLevel(TokenizerTrainingOptions o, string[] unique, long[] counts, TrainingStats stats, IProgressReporter progress, CancellationToken ct)
    {
        var specials = o.ResolvedSpecialTokens;
        var alphabet = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.Encode((byte)b)).Order().Select(c => c.ToString()).ToList();
        foreach (var s in specials)
            if (alphabet.Contains(s, StringComparer.Ordinal)) throw new TokenizerTrainingException($"special token '{s}' is a character of the byte alphabet", "special tokens must not be single bytes");
        int target = o.VocabSize - specials.Count - alphabet.Count;
        if (target < 0)
            throw new TokenizerTrainingException($"the vocabulary size {o.VocabSize} is smaller than the 256-byte alphabet plus {specials.Count} special token(s)",
                $"use a vocabulary size of at least {256 + specials.Count}");
        var symbolOf = new int[0x200]; // the byte alphabet lies below U+0200
        for (int i = 0; i < alphabet.Count; i++) symbolOf[alphabet[i][0]] = i;
        var seqs = new int[unique.Length][];
        for (int w = 0; w < unique.Length; w++)
        {
            var word = unique[w];
            var seq = seqs[w] = new int[word.Length];
            for (int i = 0; i < word.Length; i++) seq[i] = symbolOf[word[i]];
        }
        var merger = new BpeMerger(alphabet, ByteLevelBytes, o.ResolvedTieBreak, PieceRules.LengthOnly(o.ResolvedMaxTokenLength).Reserving(specials), DuplicateMerge.ReuseToken);
        using var task = progress.Start("merges", target, ProgressUnit.Steps);
        var result = merger.Train(seqs, counts, target, o.MinFrequency, zeroCountMerges: false, task, ct);
        stats.BaseSymbols = alphabet.Count;
        stats.LearnedTokens = result.Symbols.Count - alphabet.Count;
        return Assemble(o, [], result.Symbols, result.Merges.Select(m => (result.Symbols[m.Left], result.Symbols[m.Right])).ToList(), null, stats);
    }

    private static byte[] ByteLevelBytes(string token)
    {
        var list = new List<byte>(token.Length);
        ByteLevelAlphabet.TryDecode(token, list);
        return [.. list];
    }

    // ---- SentencePiece BPE -----------------------------------------------------------------------------------

    private static TrainedTokenizer SentencePieceBpe(TokenizerTrainingOptions o, string[] unique, long[] counts, TrainingStats stats, IProgressReporter progress, CancellationToken ct)
    {
        var (required, seqs) = CoveredWords(o, unique, counts);
        var reserved = Reserved(o);
        int target = o.VocabSize - reserved.Count - required.Count;
        if (target < 0) throw TooSmall(o, reserved.Count, required.Count);
        var alphabet = required.Select(r => char.ConvertFromUtf32(r.CodePoint)).ToList();
        var index = new Dictionary<int, int>();
        for (int i = 0; i < required.Count; i++) index[required[i].CodePoint] = i;
        var symbols = seqs.Select(w => w.Select(c => c >= 0 ? index[c] : -1).ToArray()).ToArray();
        var merger = new BpeMerger(alphabet, s => System.Text.Encoding.UTF8.GetBytes(s), o.ResolvedTieBreak, Rules(o).Reserving(reserved), DuplicateMerge.SkipPair);
        using var task = progress.Start("merges", target, ProgressUnit.Steps);
        var result = merger.Train(symbols, counts, target, o.MinFrequency, zeroCountMerges: o.ResolvedTieBreak == BpeTieBreak.SentencePiece, task, ct);
        stats.BaseSymbols = alphabet.Count;
        stats.LearnedTokens = result.Symbols.Count - alphabet.Count;
        stats.ZeroCountMerges = result.ZeroCountMerges;
        var tokens = result.Symbols.Skip(alphabet.Count).Concat(alphabet).ToList();
        return Assemble(o, reserved.Skip(o.ResolvedSpecialTokens.Count).ToList(), tokens, result.Merges.Select(m => (result.Symbols[m.Left], result.Symbols[m.Right])).ToList(), null, stats);
    }

    // ---- unigram ---------------------------------------------------------------------------------------------

    private static TrainedTokenizer Unigram(TokenizerTrainingOptions o, string[] unique, long[] counts, TrainingStats stats, IProgressReporter progress, CancellationToken ct)
    {
        var (required, seqs) = CoveredWords(o, unique, counts);
        var reserved = Reserved(o);
        int pieces = o.VocabSize - reserved.Count;
        if (pieces < required.Count) throw TooSmall(o, reserved.Count, required.Count);
        var settings = new UnigramTrainer.Settings(pieces, (int)(o.VocabSize * 1.1), o.SeedSize, o.ShrinkingFactor, o.EmSubIterations, Rules(o).Reserving(reserved));
        var result = new UnigramTrainer(seqs, counts, settings).Train(required, progress, ct);
        stats.BaseSymbols = required.Count;
        stats.LearnedTokens = result.Pieces.Count - required.Count;
        stats.SeedPieces = result.SeedCount;
        stats.EmSteps = result.Steps;
        var texts = result.Pieces.Select(p => PieceRules.Text(p.Piece)).ToList();
        return Assemble(o, reserved.Skip(o.ResolvedSpecialTokens.Count).ToList(), texts, null, result.Pieces.Select(p => p.Score).ToList(), stats);
    }

    private static PieceRules Rules(TokenizerTrainingOptions o) => PieceRules.SentencePiece(o.ResolvedMaxTokenLength, o.SplitByScript, o.SplitByNumber, o.SplitDigits);

    // Special tokens, then the byte pieces.
    private static List<string> Reserved(TokenizerTrainingOptions o)
    {
        var list = new List<string>(o.ResolvedSpecialTokens);
        if (o.ByteFallback) list.AddRange(Enumerable.Range(0, 256).Select(b => Models.BpeModel.ByteToken((byte)b)));
        return list;
    }

    private static TokenizerTrainingException TooSmall(TokenizerTrainingOptions o, int reserved, int chars) => new(
        $"the vocabulary size {o.VocabSize} is too small: {reserved} special/byte piece(s) and {chars} base character(s) (character coverage {o.CharacterCoverage}) need {reserved + chars}",
        $"use a vocabulary size above {reserved + chars}, or a lower --character-coverage");

    // The covered characters (by count, then code point) and every word as code points, uncovered ones as -1.
    private static (List<(int CodePoint, long Count)> Required, int[][] Words) CoveredWords(TokenizerTrainingOptions o, string[] unique, long[] counts)
    {
        var charCounts = new Dictionary<int, long>();
        var seqs = new int[unique.Length][];
        for (int w = 0; w < unique.Length; w++)
        {
            var cps = new List<int>(unique[w].Length);
            foreach (var r in unique[w].EnumerateRunes())
            {
                cps.Add(r.Value);
                charCounts[r.Value] = charCounts.GetValueOrDefault(r.Value) + counts[w];
            }
            seqs[w] = [.. cps];
        }
        var required = PieceRules.RequiredCharacters(charCounts, o.CharacterCoverage);
        var covered = new HashSet<int>(required.Select(r => r.CodePoint));
        foreach (var s in seqs)
            for (int i = 0; i < s.Length; i++)
                if (!covered.Contains(s[i])) s[i] = -1;
        return (required, seqs);
    }

    // ---- assembly --------------------------------------------------------------------------------------------

    // The id order: specials (at the start or end), the byte pieces, then the learnt tokens.
    private static TrainedTokenizer Assemble(TokenizerTrainingOptions o, List<string> bytePieces, List<string> tokens, List<(string, string)>? merges,
        List<double>? scores, TrainingStats stats)
    {
        var specials = o.ResolvedSpecialTokens;
        var body = bytePieces.Concat(tokens).ToList();
        var bodyScores = scores is null ? null : Enumerable.Repeat(0.0, bytePieces.Count).Concat(scores).ToList();
        bool start = o.SpecialTokensPlacement == SpecialTokensPlacement.Start;
        var vocab = start ? [.. specials, .. body] : body.Concat(specials).ToList();
        List<double>? allScores = bodyScores is null ? null
            : start ? [.. Enumerable.Repeat(0.0, specials.Count), .. bodyScores] : [.. bodyScores, .. Enumerable.Repeat(0.0, specials.Count)];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in vocab)
            if (!seen.Add(t)) throw new TokenizerTrainingException($"token '{t}' would be in the vocabulary twice", "a special token equals a learnt token or byte piece; rename it");
        if (stats.LearnedTokens + stats.BaseSymbols + specials.Count + bytePieces.Count < o.VocabSize)
            stats.Notice = $"the text ran out of pairs to merge: the vocabulary has {vocab.Count} tokens, not {o.VocabSize}";
        return new TrainedTokenizer(o, vocab, merges ?? [], allScores, stats);
    }

    /// <summary>
    /// The pipeline sections of <c>tokenizer.json</c> for these options (everything but the model and added tokens);
    /// <paramref name="idOf"/> gives the ids of the template's special tokens (null while training, which reads only the
    /// normalizer and pre-tokenizer).
    /// </summary>
    internal static JsonObject Layout(TokenizerTrainingOptions o, Func<string, int>? idOf)
    {
        JsonNode? normalizer = o.Normalization switch
        {
            TrainingNormalization.Nfc => new JsonObject { ["type"] = "NFC" },
            TrainingNormalization.Nfkc => new JsonObject { ["type"] = "NFKC" },
            TrainingNormalization.NmtNfkc => new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray(new JsonObject { ["type"] = "Nmt" }, new JsonObject { ["type"] = "NFKC" }) },
            _ => null,
        };
        JsonObject ByteLevelSection(bool addPrefixSpace, bool trimOffsets) => new()
        {
            ["type"] = "ByteLevel", ["add_prefix_space"] = addPrefixSpace, ["trim_offsets"] = trimOffsets, ["use_regex"] = true,
        };
        JsonObject Metaspace() => new() { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = "always", ["split"] = true };
        if (o.Kind == TokenizerKind.ByteLevelBpe)
        {
            JsonNode post = ByteLevelSection(true, false);
            if (Template(o, idOf) is { } t) post = new JsonObject { ["type"] = "Sequence", ["processors"] = new JsonArray(post, t) };
            return new JsonObject
            {
                ["normalizer"] = normalizer,
                ["pre_tokenizer"] = ByteLevelSection(false, true),
                ["post_processor"] = post,
                ["decoder"] = ByteLevelSection(true, true),
            };
        }
        // With byte fallback, the decoder Hugging Face's Llama converter writes: '▁' → ' ', bytes → text, one leading space dropped.
        JsonNode decoder = !o.ByteFallback ? Metaspace() : new JsonObject
        {
            ["type"] = "Sequence",
            ["decoders"] = new JsonArray(
                new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "\u2581" }, ["content"] = " " },
                new JsonObject { ["type"] = "ByteFallback" },
                new JsonObject { ["type"] = "Fuse" },
                new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
        };
        return new JsonObject { ["normalizer"] = normalizer, ["pre_tokenizer"] = Metaspace(), ["post_processor"] = Template(o, idOf), ["decoder"] = decoder };
    }

    // BOS / EOS around every sequence (transformers' layout for Llama: single "<s> $A </s>", pair with type id 1 for B).
    private static JsonObject? Template(TokenizerTrainingOptions o, Func<string, int>? idOf)
    {
        var bos = o.AddBosToken ? o.BosToken ?? throw new TokenizerTrainingException("BOS addition asked for, but there is no BOS token", "name one with --bos-token") : null;
        var eos = o.AddEosToken ? o.EosToken ?? throw new TokenizerTrainingException("EOS addition asked for, but there is no EOS token", "name one with --eos-token") : null;
        if (bos is null && eos is null) return null;
        JsonObject Special(string id, int type) => new() { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        JsonObject Sequence(string id, int type) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        JsonArray Side(string seq, int type)
        {
            var a = new JsonArray();
            if (bos is not null) a.Add(Special(bos, type));
            a.Add(Sequence(seq, type));
            if (eos is not null) a.Add(Special(eos, type));
            return a;
        }
        var pair = Side("A", 0);
        foreach (var item in Side("B", 1)) pair.Add(item!.DeepClone());
        var specials = new JsonObject();
        foreach (var t in new[] { bos, eos }.OfType<string>().Distinct(StringComparer.Ordinal))
            specials[t] = new JsonObject { ["id"] = t, ["ids"] = new JsonArray(idOf?.Invoke(t) ?? 0), ["tokens"] = new JsonArray(t) };
        return new JsonObject { ["type"] = "TemplateProcessing", ["single"] = Side("A", 0), ["pair"] = pair, ["special_tokens"] = specials };
    }
}
