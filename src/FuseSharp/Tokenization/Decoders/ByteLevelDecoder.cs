using System.Text;

namespace FuseSharp.Tokenization.Decoders;

/// <summary>
/// Maps byte-level characters back to bytes and decodes UTF-8 (invalid sequences become U+FFFD, as Rust's
/// <c>from_utf8_lossy</c>); a token with a character outside the alphabet (an added token such as "&lt;|im_start|&gt;"
/// written in plain text) contributes its own UTF-8 bytes.
/// </summary>
public sealed class ByteLevelDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var t in tokens)
        {
            if (!ByteLevelAlphabet.TryDecode(t, bytes)) bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(t));
        }
        return [Utf8.DecodeLossy(bytes)];
    }
}
