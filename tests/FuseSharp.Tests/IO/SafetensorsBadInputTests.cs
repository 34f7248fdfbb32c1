using System.Buffers.Binary;
using System.Text;
using FuseSharp.IO;
using Xunit;

namespace FuseSharp.Tests.IO;

/// <summary>Hostile and broken files: each gets one clear <see cref="SafetensorsException"/> naming the file and the problem.</summary>
public class SafetensorsBadInputTests : IDisposable
{
    private readonly TempDir _tmp = TestPaths.NewTempDir();

    public void Dispose() => _tmp.Dispose();

    /// <summary>A file of an 8-byte length, the header text and <paramref name="dataBytes"/> zero bytes.</summary>
    private string Craft(string header, long dataBytes, ulong? declaredLength = null, string name = "bad.safetensors")
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        var path = _tmp.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static SafetensorsException Fails(string path, SafetensorsErrorKind kind, string fragment)
    {
        var e = Assert.Throws<SafetensorsException>(() => { using var _ = SafetensorsFile.Open(path); });
        Assert.Equal(kind, e.Kind);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        return e;
    }

    private const string Ok = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""";

    [Fact]
    public void ValidCraftedFile_Opens()
    {
        using var f = SafetensorsFile.Open(Craft(Ok, 8));
        Assert.Single(f.Tensors);
    }

    [Fact]
    public void FileShorterThanEightBytes()
    {
        var path = _tmp.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Fails(path, SafetensorsErrorKind.Truncated, "fewer than the 8-byte header length");
    }

    [Fact]
    public void TruncatedData() => Fails(Craft(Ok, 5), SafetensorsErrorKind.Truncated, "run past the data buffer");

    [Fact]
    public void HeaderLengthLargerThanFile() => Fails(Craft(Ok, 8, declaredLength: 5000), SafetensorsErrorKind.HeaderTooLarge, "larger than the rest of the file");

    [Fact]
    public void HeaderLengthOverTheCap() => Fails(Craft(Ok, 8, declaredLength: 200_000_000), SafetensorsErrorKind.HeaderTooLarge, "exceeds the cap");

    [Fact]
    public void HeaderLengthHuge_DoesNotAllocate() => Fails(Craft(Ok, 8, declaredLength: ulong.MaxValue), SafetensorsErrorKind.HeaderTooLarge, "exceeds the cap");

    [Fact]
    public void InvalidJson() => Fails(Craft("""{"a":{"dtype":"F32",}""", 0), SafetensorsErrorKind.InvalidHeader, "not valid UTF-8 JSON");

    [Fact]
    public void NotStartingWithBrace() => Fails(Craft("""   {"a":1}""", 0), SafetensorsErrorKind.InvalidHeader, "does not start with '{'");

    [Fact]
    public void InvalidUtf8()
    {
        var path = Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"X\":{}}", 8);
        var bytes = File.ReadAllBytes(path);
        bytes[8 + 57] = 0xFF; // the X
        File.WriteAllBytes(path, bytes);
        Fails(path, SafetensorsErrorKind.InvalidHeader, "not valid UTF-8");
    }

    [Fact]
    public void UnknownDType() => Fails(Craft("""{"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}}""", 8), SafetensorsErrorKind.UnknownDType, "unknown dtype 'F31'");

    [Fact]
    public void ShapeWhoseByteSizeOverflows() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}""", 8), SafetensorsErrorKind.ShapeOverflow, "overflows");

    [Fact]
    public void ShapeEntryTooLargeForInt64() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}}""", 8), SafetensorsErrorKind.ShapeOverflow, "not a non-negative integer");

    [Fact]
    public void NegativeShape() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8), SafetensorsErrorKind.InvalidHeader, "not a non-negative integer");

    [Fact]
    public void OffsetsNotMatchingShape() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8), SafetensorsErrorKind.InvalidOffsets, "needs 12");

    [Fact]
    public void OffsetsOverlapping() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12),
            SafetensorsErrorKind.InvalidOffsets, "overlap");

    [Fact]
    public void OffsetsOutOfBounds() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", 12),
            SafetensorsErrorKind.Truncated, "run past the data buffer");

    [Fact]
    public void OffsetsLeavingAHole() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}""", 20),
            SafetensorsErrorKind.InvalidOffsets, "leave a hole");

    [Fact]
    public void OffsetsNotStartingAtZero() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12), SafetensorsErrorKind.InvalidOffsets, "leave a hole");

    [Fact]
    public void OffsetsNotCoveringTheBuffer() => Fails(Craft(Ok, 16), SafetensorsErrorKind.InvalidOffsets, "must be fully indexed");

    [Fact]
    public void OffsetsEndingBeforeTheyBegin() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}""", 8), SafetensorsErrorKind.InvalidOffsets, "end before they begin");

    [Fact]
    public void DuplicateTensorNames() =>
        Fails(Craft("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8),
            SafetensorsErrorKind.DuplicateTensor, "appears twice");

    [Fact]
    public void MetadataWithNonStringValue() =>
        Fails(Craft("""{"__metadata__":{"format":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8), SafetensorsErrorKind.InvalidHeader, "must be a string");

    [Fact]
    public void MissingField() => Fails(Craft("""{"a":{"dtype":"F32","data_offsets":[0,8]}}""", 8), SafetensorsErrorKind.InvalidHeader, "'shape'");

    [Fact]
    public void DeeplyNestedJson_IsRejectedNotStackOverflow() =>
        Fails(Craft("{\"a\":" + new string('[', 100_000) + new string(']', 100_000) + "}", 0), SafetensorsErrorKind.InvalidHeader, "JSON");

    [Fact]
    public void RandomMutationsOfAValidHeader_OnlyEverThrowSafetensorsException()
    {
        var rng = new Random(20230828);
        var header = """{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"I64","shape":[1],"data_offsets":[12,20]}}""";
        for (int trial = 0; trial < 400; trial++)
        {
            var bytes = Encoding.UTF8.GetBytes(header);
            int mutations = rng.Next(1, 4);
            for (int m = 0; m < mutations; m++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            var path = _tmp.File("fuzz.safetensors");
            var file = new byte[8 + bytes.Length + 20];
            BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)bytes.Length);
            bytes.CopyTo(file, 8);
            File.WriteAllBytes(path, file);
            try
            {
                using var f = SafetensorsFile.Open(path);
                foreach (var t in f.Tensors) _ = f.GetBytes(t.Name).Length;
            }
            catch (SafetensorsException)
            {
            }
        }
    }

    // ---- sharded index ----

    private string Index(string weightMapJson)
    {
        var dir = _tmp.File("sharded");
        Directory.CreateDirectory(dir);
        File.Copy(Craft(Ok, 8), Path.Combine(dir, "model-00001-of-00001.safetensors"), overwrite: true);
        File.WriteAllText(Path.Combine(dir, SafetensorsModel.IndexFileName), $$"""{"metadata":{"total_size":8},"weight_map":{{weightMapJson}}}""");
        return dir;
    }

    private static SafetensorsException IndexFails(string dir, string fragment)
    {
        var e = Assert.Throws<SafetensorsException>(() => { using var _ = SafetensorsModel.Open(dir); });
        Assert.Equal(SafetensorsErrorKind.InvalidIndex, e.Kind);
        Assert.Contains(SafetensorsModel.IndexFileName, e.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        return e;
    }

    [Fact]
    public void Index_Valid_Opens()
    {
        using var m = SafetensorsModel.Open(Index("""{"a":"model-00001-of-00001.safetensors"}"""));
        Assert.Equal(["a"], m.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void Index_MissingShard() => IndexFails(Index("""{"a":"model-00002-of-00002.safetensors"}"""), "does not exist");

    [Fact]
    public void Index_ShardEscapingTheFolder() => IndexFails(Index("""{"a":"../x.safetensors"}"""), "outside the model folder");

    [Fact]
    public void Index_AbsoluteShardPath() => IndexFails(Index("""{"a":"/etc/passwd"}"""), "outside the model folder");

    [Fact]
    public void Index_NestedEscape() => IndexFails(Index("""{"a":"sub/../../x.safetensors"}"""), "outside the model folder");

    [Fact]
    public void Index_TensorNotInItsShard() => IndexFails(Index("""{"a":"model-00001-of-00001.safetensors","zzz":"model-00001-of-00001.safetensors"}"""), "no such tensor");

    [Fact]
    public void Index_NotJson()
    {
        var dir = Index("{}");
        File.WriteAllText(Path.Combine(dir, SafetensorsModel.IndexFileName), "{not json");
        IndexFails(dir, "not valid JSON");
    }

    [Fact]
    public void Index_NoWeightMap()
    {
        var dir = Index("{}");
        File.WriteAllText(Path.Combine(dir, SafetensorsModel.IndexFileName), """{"metadata":{}}""");
        IndexFails(dir, "weight_map");
    }

    [Fact]
    public void Folder_WithoutWeights()
    {
        var dir = _tmp.File("empty-model");
        Directory.CreateDirectory(dir);
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsModel.Open(dir));
        Assert.Equal(SafetensorsErrorKind.NoWeights, e.Kind);
    }
}
