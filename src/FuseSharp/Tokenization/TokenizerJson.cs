using System.Text.Json;
using FuseSharp.Tokenization.Decoders;
using FuseSharp.Tokenization.Models;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.PostProcessors;
using FuseSharp.Tokenization.PreTokenizers;

namespace FuseSharp.Tokenization;

/// <summary>
/// Loads a Hugging Face <c>tokenizer.json</c> exactly as the Rust <c>tokenizers</c> library does: one component per
/// stage, chosen by its <c>"type"</c> tag; <c>truncation</c> and <c>padding</c> are ignored (as transformers does).
/// </summary>
public static class TokenizerJson
{
    /// <summary>Reads and builds the tokenizer in <paramref name="path"/>.</summary>
    /// <exception cref="TokenizerException">The file is missing, not JSON, or describes something unsupported (the message names the place).</exception>
    public static Tokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new TokenizerException($"{path}: not found");
        var bytes = Utf8.ReadValidated(path);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new TokenizerException($"{path}: line {(e.LineNumber ?? 0) + 1}: not valid JSON ({e.Message})", "the file should be a tokenizer.json written by Hugging Face tokenizers");
        }
        using (doc) return Build(new JsonSection(doc.RootElement, path, ""));
    }

    /// <summary>Builds a tokenizer from a parsed <c>tokenizer.json</c> object.</summary>
    public static Tokenizer Build(JsonSection root)
    {
        if (root.Element.ValueKind != JsonValueKind.Object) throw root.Error("a tokenizer.json must be a JSON object");
        var model = ModelFactory.Create(root.Child("model"));
        var normalizer = root.ChildOrNull("normalizer") is { } n ? NormalizerFactory.Create(n) : null;
        var preTokenizer = root.ChildOrNull("pre_tokenizer") is { } p ? PreTokenizerFactory.Create(p) : null;
        var postProcessor = root.ChildOrNull("post_processor") is { } pp ? PostProcessorFactory.Create(pp) : null;
        var decoder = root.ChildOrNull("decoder") is { } d ? DecoderFactory.Create(d) : null;
        var added = new List<AddedToken>();
        if (root.ChildOrNull("added_tokens") is { } list)
        {
            foreach (var t in list.Items())
            {
                added.Add(new AddedToken(
                    t.Child("id").AsInt(), t.GetString("content"), t.GetBool("special", false),
                    t.GetBool("single_word", false), t.GetBool("lstrip", false), t.GetBool("rstrip", false),
                    t.GetBool("normalized", !t.GetBool("special", false))));
            }
        }
        return new Tokenizer(model, normalizer, preTokenizer, postProcessor, decoder, added);
    }
}
