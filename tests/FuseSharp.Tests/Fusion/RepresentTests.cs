using FuseSharp.Fusion;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Text;
using Xunit;

namespace FuseSharp.Tests.Fusion;

public sealed class RepresentTests : ScratchFolderTest
{

    private string Corpus(params string[] lines)
    {
        var p = Path.Combine(Dir, $"corpus-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(p, lines);
        return p;
    }

    [Fact]
    public void TextRowsAreScoredLikeForwardForLogits()
    {
        var tok = new ToyTokenizer();
        var scorer = new ToyScorer(tok.VocabSize);
        var corpus = Corpus(Enumerable.Range(0, 7).Select(i => $"{{\"text\": \"row {i}: the cat sat\"}}").ToArray());
        var outDir = Path.Combine(Dir, "rep");
        RepresentStage.Run(corpus, tok, scorer, outDir, new RepresentOptions { K = 5, RowsPerPart = 3 });
        var store = StoreReader.Open(outDir);
        Assert.Equal(7, store.Rows);
        var rows = store.ReadRows().ToList();
        for (int i = 0; i < 7; i++)
        {
            var expectedIds = tok.Encode($"row {i}: the cat sat</s>").Ids.ToArray();
            Assert.Equal(expectedIds, rows[i].InputIds);
            Assert.Equal(2, rows[i].InputIds[^1]); // EOS appended as text, no BOS
            Assert.Equal(expectedIds, rows[i].Labels);
            Assert.Equal(StoreManifest.HashText($"row {i}: the cat sat"), rows[i].Hash);
            var s = scorer.Score([expectedIds], 5)[0];
            Assert.Equal(s.TopKIds, rows[i].TopK!.Ids);
            Assert.Equal(s.TopKLogits.Select(x => (float)(Half)x), rows[i].TopK!.Values);
            Assert.True(float.IsNaN(rows[i].TokenCe![^1]));
            double mean = s.CrossEntropy.Take(expectedIds.Length - 1).Average(x => (double)x);
            Assert.Equal(mean, rows[i].Metrics[0], 12);
        }
    }

    [Fact]
    public void KilledRunResumesAndGivesTheSameStore()
    {
        var tok = new ToyTokenizer();
        var corpus = Corpus(Enumerable.Range(0, 9).Select(i => $"{{\"text\": \"doc {i} {new string('x', i)}\"}}").ToArray());
        var once = Path.Combine(Dir, "once");
        RepresentStage.Run(corpus, tok, new ToyScorer(tok.VocabSize), once, new RepresentOptions { K = 3, RowsPerPart = 2 });
        var twice = Path.Combine(Dir, "twice");
        var failing = new ToyScorer(tok.VocabSize) { FailOnCall = 3 };
        Assert.ThrowsAny<OperationCanceledException>(() => RepresentStage.Run(corpus, tok, failing, twice, new RepresentOptions { K = 3, RowsPerPart = 2 }));
        Assert.Equal(2, Directory.EnumerateFiles(twice, "*.safetensors").Count());
        var resumed = new ToyScorer(tok.VocabSize);
        var report = RepresentStage.Run(corpus, tok, resumed, twice, new RepresentOptions { K = 3, RowsPerPart = 2 });
        Assert.Equal(3, resumed.Calls); // parts 2..4 only: 5 rows in batches of 2
        var a = StoreReader.Open(once).ReadRows().ToList();
        var b = StoreReader.Open(twice).ReadRows().ToList();
        Assert.Equal(a.Select(r => r.TopK!.Ids.Sum()), b.Select(r => r.TopK!.Ids.Sum()));
        Assert.Equal(StoreReader.Open(once).Manifest.ConfigHash, StoreReader.Open(twice).Manifest.ConfigHash);
    }

    [Fact]
    public void ChatRowsMaskEverythingButResponsesAndTheirSeparator()
    {
        var tok = new ToyTokenizer();
        var corpus = Corpus(
            "{\"conversations\": [{\"from\": \"human\", \"value\": \"hi there\"}, {\"from\": \"gpt\", \"value\": \"hello\"}, {\"from\": \"human\", \"value\": \"bye\"}, {\"from\": \"gpt\", \"value\": \"ok\"}]}",
            "{\"messages\": [{\"role\": \"assistant\", \"content\": \"dropped\"}, {\"role\": \"user\", \"content\": \"only a question\"}]}");
        var outDir = Path.Combine(Dir, "chat");
        var report = RepresentStage.Run(corpus, tok, new ToyScorer(tok.VocabSize), outDir, new RepresentOptions { Format = CorpusFormat.Chat, K = 4 });
        var rows = StoreReader.Open(outDir).ReadRows().ToList();
        var r0 = rows[0];
        Assert.Equal(1, r0.InputIds[0]); // BOS
        string supervised = tok.Decode(r0.InputIds.Where((_, t) => r0.Labels![t] != -100).ToArray());
        // The header ends with a space that the first response token absorbs ("▁h"), as SentencePiece tokenizes it.
        Assert.Equal(" hello</s> ok</s>", supervised);
        string text = tok.Decode(r0.InputIds);
        Assert.Equal("<s>GPT4 Correct User: hi there</s>GPT4 Correct Assistant: hello</s>GPT4 Correct User: bye</s>GPT4 Correct Assistant: ok</s>", text);
        Assert.False(double.IsNaN(r0.Metrics[0]));
        // The second row has no assistant turn left: nothing is supervised, the metric is NaN (filter-nan's case).
        Assert.All(rows[1].Labels!, l => Assert.Equal(-100, l));
        Assert.True(double.IsNaN(rows[1].Metrics[0]));
        Assert.Contains(("no supervised token (metric NaN)", 1L), report.Group("rows"));
    }

    [Fact]
    public void BadCorpusLinesAreNamed()
    {
        var tok = new ToyTokenizer();
        var e = Assert.Throws<FusionException>(() => RepresentStage.Run(Corpus("{\"text\": \"a\"}", "{\"txt\": 1}"), tok, new ToyScorer(tok.VocabSize), Path.Combine(Dir, "x"), new RepresentOptions()));
        Assert.Contains(":2:", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<FusionException>(() => RepresentStage.Run(Corpus("{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, {\"from\": \"human\", \"value\": \"b\"}]}"),
            tok, new ToyScorer(tok.VocabSize), Path.Combine(Dir, "y"), new RepresentOptions { Format = CorpusFormat.Chat }));
        Assert.Contains("alternation", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SplitCutsByTheLongestTokenizationAndDecodes()
    {
        var chars = new ToyTokenizer();
        var words = new WordTokenizer();
        string text = "alpha beta gamma delta epsilon zeta eta theta";
        // Whole when every tokenization fits.
        Assert.Equal([text], TextSplitter.Split(text, [words], blockSize: 20, margin: 4));
        // The char-level tokenizer is longest: 16-token chunks of it, decoded.
        var chunks = TextSplitter.Split(text, [words, chars], blockSize: 20, margin: 4);
        Assert.Equal(string.Concat(chunks), text);
        Assert.All(chunks.SkipLast(1), c => Assert.Equal(16, chars.Encode(c).Count));
        var input = Corpus($"{{\"text\": \"{text}\"}}", "{\"text\": \"short\"}");
        var output = Path.Combine(Dir, "split.jsonl");
        var report = TextSplitter.SplitCorpus(input, output, [words, chars], 20, 4);
        Assert.Equal(chunks.Count + 1, File.ReadAllLines(output).Length);
        Assert.Contains(("split", 1L), report.Group("documents"));
    }

    /// <summary>One token per whitespace-separated word (the space belongs to the next word, as "▁word").</summary>
    private sealed class WordTokenizer : FuseSharp.Tokenization.ITokenizer
    {
        private readonly Dictionary<string, int> _ids = [];
        private readonly List<string> _pieces = [];

        public int VocabSize => _pieces.Count;
        public int? BosTokenId => null;
        public int? EosTokenId => null;
        public int? PadTokenId => null;
        public int? UnkTokenId => null;
        public string WhitespaceMarker => "▁";

        public FuseSharp.Tokenization.Encoding Encode(string text, bool addSpecialTokens = false)
        {
            lock (_ids)
            {
                var ids = new List<int>();
                var offs = new List<(int, int)>();
                int i = 0;
                foreach (var w in text.Split(' '))
                {
                    string p = i == 0 ? w : "▁" + w;
                    if (!_ids.TryGetValue(p, out int id)) { id = _pieces.Count; _ids[p] = id; _pieces.Add(p); }
                    ids.Add(id);
                    offs.Add((i == 0 ? 0 : i - 1, i + w.Length));
                    i += w.Length + 1;
                }
                return new FuseSharp.Tokenization.Encoding(ids, ids.Select(x => _pieces[x]).ToList(), offs);
            }
        }

        public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false)
        {
            lock (_ids) return string.Concat(ids.Select(x => _pieces[x].Replace("▁", " ", StringComparison.Ordinal)));
        }

        public string? IdToToken(int id) { lock (_ids) return id < _pieces.Count ? _pieces[id] : null; }
        public int? TokenToId(string token) { lock (_ids) return _ids.TryGetValue(token, out var id) ? id : null; }
        public IReadOnlyDictionary<string, int> GetVocab() { lock (_ids) return new Dictionary<string, int>(_ids); }
    }
}
