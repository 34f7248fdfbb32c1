using FuseSharp.Tokenization;
using FuseSharp.Training;
using FuseSharp.Training.Data;
using Xunit;

namespace FuseSharp.Tests.Training;

/// <summary>Data pipelines: packing, pre-tokenized rows, chat masking, the data order, and the errors bad data gets.</summary>
public class TrainingDataTests
{
    private static readonly TestTokenizer Tok = new();

    private static int[] Ids(string s) => s.Select(c => 6 + c - ' ').ToArray();

    private static ITrainingDataset Load(TempDir dir, string name, string content, DataFormat format, int blockSize = 8, ITokenizer? tok = null, IChatRenderer? chat = null)
    {
        var path = dir.File(name);
        File.WriteAllText(path, content);
        return TrainingData.Load(path, new DataOptions(format, blockSize, 102), tok ?? Tok, chat);
    }

    [Fact]
    public void Jsonl_PacksDocumentsWithBosAndEos_AndDropsTheRemainder()
    {
        using var dir = new TempDir();
        var data = Load(dir, "d.jsonl", "{\"text\": \"abc\"}\n\n{\"text\": \"de\"}\n", DataFormat.Jsonl, blockSize: 4);
        // <s> a b c </s> <s> d e </s> = 9 tokens -> 2 blocks of 4, one token dropped.
        int[] stream = [1, .. Ids("abc"), 2, 1, .. Ids("de"), 2];
        Assert.Equal(2, data.Count);
        Assert.Equal(stream[..4], data[0].InputIds);
        Assert.Equal(stream[4..8], data[1].InputIds);
        Assert.Equal(data[1].InputIds, data[1].Labels);
        Assert.Contains("1 trailing tokens dropped", data.Description, StringComparison.Ordinal);
        Assert.Equal(DataFormat.Jsonl, TrainingData.Detect(dir.File("d.jsonl")));
    }

    [Fact]
    public void Text_IsOneDocument()
    {
        using var dir = new TempDir();
        var data = Load(dir, "d.txt", "hello world", DataFormat.Auto, blockSize: 6);
        Assert.Equal(2, data.Count); // <s> + 11 chars + </s> = 13 tokens
        Assert.Equal([1, .. Ids("hello")], data[0].InputIds);
    }

    [Fact]
    public void Tokens_AreUsedAsGiven_WithLabelsAndRightPaddingTrimmed()
    {
        using var dir = new TempDir();
        var data = Load(dir, "t.jsonl",
            "{\"input_ids\": [5, 6, 7]}\n{\"input_ids\": [9, 8, 7, 0, 0], \"labels\": [-100, 8, 7, -100, -100], \"attention_mask\": [1, 1, 1, 0, 0]}\n",
            DataFormat.Auto);
        Assert.Equal(2, data.Count);
        Assert.Equal([5, 6, 7], data[0].InputIds);
        Assert.Equal([9, 8, 7], data[1].InputIds);
        Assert.Equal([-100, 8, 7], data[1].Labels);
        Assert.Equal(2, data[1].PredictedCount);
    }

    [Fact]
    public void Chat_TrainsOnAssistantTurnsOnly_InBothRecordForms()
    {
        using var dir = new TempDir();
        var sharegpt = "{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\", \"value\": \"yo\"}, {\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}";
        var messages = "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}";
        var data = Load(dir, "c.jsonl", sharegpt + "\n" + messages + "\n", DataFormat.Auto, blockSize: 100, chat: new ChatMlRenderer());
        Assert.Equal(2, data.Count);
        var e = data[0];
        string text = Tok.Decode(e.InputIds);
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n", text);
        // Supervised: "yo<|im_end|>\n" and "a<|im_end|>\n" — the content and the end-of-turn marker, never the headers.
        var supervised = Tok.Decode(e.Labels.Where(l => l != TrainingExample.IgnoreIndex).ToList());
        Assert.Equal("yo<|im_end|>\na<|im_end|>\n", supervised);
        Assert.Equal("yo<|im_end|>\n", Tok.Decode(data[1].Labels.Where(l => l != TrainingExample.IgnoreIndex).ToList()));
    }

    [Fact]
    public void Chat_TruncatedToNothing_IsSkipped_AndLeadingAssistantDropped()
    {
        using var dir = new TempDir();
        var longPrompt = new string('x', 40);
        var content = $"{{\"conversations\": [{{\"from\": \"human\", \"value\": \"{longPrompt}\"}}, {{\"from\": \"gpt\", \"value\": \"y\"}}]}}\n"
            + "{\"conversations\": [{\"from\": \"gpt\", \"value\": \"hello\"}, {\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n";
        var data = Load(dir, "c.jsonl", content, DataFormat.Chat, blockSize: 32, chat: new ChatMlRenderer());
        Assert.Equal(1, data.Count);
        Assert.DoesNotContain("hello", Tok.Decode(data[0].InputIds), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("c.jsonl", "{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}]}\n", DataFormat.Chat, "c.jsonl:1: the conversation has no assistant turn")]
    [InlineData("c.jsonl", "{\"conversations\": [{\"from\": \"alien\", \"value\": \"hi\"}]}\n", DataFormat.Chat, "unknown role \"alien\"")]
    [InlineData("t.jsonl", "{\"input_ids\": [1, 2]}\n{\"input_ids\": [1, 500]}\n", DataFormat.Tokens, "t.jsonl:2: input id 500 is outside the model's vocabulary of 102")]
    [InlineData("t.jsonl", "{\"input_ids\": [1, 2, 3, 4, 5, 6, 7, 8, 9]}\n", DataFormat.Tokens, "longer than the block size 8")]
    [InlineData("t.jsonl", "{\"input_ids\": [1, 2]}\n{\"input_ids\": [1, 2\n", DataFormat.Tokens, "t.jsonl:2: not valid JSON")]
    [InlineData("d.jsonl", "{\"txt\": \"a\"}\n", DataFormat.Jsonl, "d.jsonl:1: expected a \"text\" string field")]
    [InlineData("d.jsonl", "{\"txt\": \"a\"}\n", DataFormat.Auto, "cannot tell the data format")]
    [InlineData("d.txt", "", DataFormat.Text, "no text to train on")]
    [InlineData("d.txt", "ab", DataFormat.Text, "4 tokens are fewer than one block of 8")]
    [InlineData("e.jsonl", "\n\n", DataFormat.Tokens, "no training sequences")]
    public void BadData_GetsOneClearMessage(string name, string content, DataFormat format, string expected)
    {
        using var dir = new TempDir();
        var e = Assert.ThrowsAny<TrainingException>(() => Load(dir, name, content, format, chat: new ChatMlRenderer()));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChatWithoutTemplate_AndTextWithoutTokenizer_AreRefused()
    {
        using var dir = new TempDir();
        var path = dir.File("c.jsonl");
        File.WriteAllText(path, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n");
        Assert.Contains("chat template", Assert.Throws<TrainingException>(() => TrainingData.Load(path, new DataOptions(DataFormat.Chat, 64), Tok)).Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer", Assert.Throws<TrainingException>(() => TrainingData.Load(path, new DataOptions(DataFormat.Chat, 64), null)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonArrayFiles_AreRead_WithRecordNumbersInErrors()
    {
        using var dir = new TempDir();
        var path = dir.File("c.json");
        File.WriteAllText(path, "[{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\", \"value\": \"yo\"}]}, {\"conversations\": []}]");
        var e = Assert.Throws<TrainingDataException>(() => TrainingData.Load(path, new DataOptions(DataFormat.Auto, 64, 102), Tok, new ChatMlRenderer()));
        Assert.Contains("c.json: record 2:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DataOrder_IsAPermutationPerEpoch_AndAPureFunctionOfSeedAndEpoch()
    {
        var a = new DataOrder(100, seed: 42);
        var b = new DataOrder(100, seed: 42);
        var epoch0 = Enumerable.Range(0, 100).Select(i => a[i]).ToArray();
        var epoch1 = Enumerable.Range(100, 100).Select(i => a[i]).ToArray();
        Assert.Equal(Enumerable.Range(0, 100), epoch0.Order());
        Assert.Equal(Enumerable.Range(0, 100), epoch1.Order());
        Assert.NotEqual(epoch0, epoch1);
        Assert.NotEqual(Enumerable.Range(0, 100), epoch0);
        // Random access in any order gives the same draws (resume jumps straight to a position).
        Assert.Equal(epoch1[37], b[137]);
        Assert.Equal(epoch0[5], b[5]);
        Assert.NotEqual(epoch0, Enumerable.Range(0, 100).Select(i => new DataOrder(100, seed: 43)[i]));
        Assert.Equal(Enumerable.Range(0, 10), Enumerable.Range(10, 10).Select(i => new DataOrder(10, 1, shuffle: false)[i]));
    }

    [Fact]
    public void TemplateChatRenderer_WithTheChatMlTemplate_GivesTheTextAndAssistantSpansOfChatMl()
    {
        const string chatMl = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        var renderer = new TemplateChatRenderer(FuseSharp.Tokenization.ChatTemplates.ChatTemplate.Parse(chatMl), null);
        ChatTurn[] turns = [new("system", "Be brief."), new("user", "Hi?"), new("assistant", "Hello."), new("user", "Bye?"), new("assistant", "Bye.")];
        var want = new ChatMlRenderer().Render(turns);
        var got = renderer.Render(turns);
        Assert.Equal(want.Text, got.Text);
        Assert.Equal(want.AssistantSpans, got.AssistantSpans);
    }
}
