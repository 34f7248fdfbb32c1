using System.Globalization;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using FuseSharp.Tokenization.ChatTemplates.Jinja;
using Xunit;

namespace FuseSharp.Tests.Tokenization.ChatTemplates;

/// <summary>
/// Properties of the Python value layer that every rendering relies on: <c>repr(float)</c> is the shortest round-trip
/// text in Python's layout, <c>json.dumps</c> writes JSON that parses back to the same strings, and <c>round</c> rounds
/// the exact binary value half-to-even.
/// </summary>
public class PythonValueTests
{
    [Fact]
    public void FloatRepr_RoundTripsInPythonsLayout()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<double>(), d =>
        {
            if (!double.IsFinite(d)) return true;
            var text = PyFormat.FloatRepr(d);
            bool roundTrips = BitConverter.DoubleToInt64Bits(double.Parse(text, CultureInfo.InvariantCulture)) == BitConverter.DoubleToInt64Bits(d);
            double a = Math.Abs(d);
            bool scientific = a != 0 && (a >= 1e16 || a < 1e-4);
            bool layout = scientific ? text.Contains('e', StringComparison.Ordinal) : text.Contains('.', StringComparison.Ordinal) && !text.Contains('e', StringComparison.Ordinal);
            return roundTrips && layout;
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(0.00001, "1e-05")]
    [InlineData(0.1 + 0.2, "0.30000000000000004")]
    [InlineData(-1.5e-300, "-1.5e-300")]
    [InlineData(123456789012345.6, "123456789012345.6")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(double.MaxValue, "1.7976931348623157e+308")]
    public void FloatRepr_KnownValues(double value, string expected) => Assert.Equal(expected, PyFormat.FloatRepr(value));

    [Fact]
    public void JsonDumps_ParsesBackToTheSameString()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<string>(), s =>
        {
            if (s is null) return true;
            var plain = PyJson.Dumps(s, ensureAscii: false, null, null, null, sortKeys: false);
            var ascii = PyJson.Dumps(s, ensureAscii: true, null, null, null, sortKeys: false);
            return JsonSerializer.Deserialize<string>(plain) == s && JsonSerializer.Deserialize<string>(ascii) == s && ascii.All(c => c is >= ' ' and <= '~');
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData(2.675, 2, 2.67)] // the binary value is just below 2.675
    [InlineData(0.125, 2, 0.12)] // an exact tie goes to even
    [InlineData(0.375, 2, 0.38)]
    [InlineData(2.5, 0, 2.0)]
    [InlineData(-2.5, 0, -2.0)]
    [InlineData(1234.5678, -2, 1200.0)]
    [InlineData(1e300, 2, 1e300)]
    public void Round_HalfToEvenOnTheExactBinaryValue(double value, long digits, double expected) => Assert.Equal(expected, PyFormat.Round(value, digits));

    [Fact]
    public void Casing_UsesPythonsFullUnicodeMappings()
    {
        Assert.Equal("σας οδος.", PyStr.Lower("ΣΑΣ ΟΔΟΣ.")); // final sigma at the end of each word
        Assert.Equal("STRASSE FIX", PyStr.Upper("straße ﬁx")); // SpecialCasing: ß -> SS, ﬁ -> FI
        Assert.Equal("ǅungla ᾼ", PyStr.Title("ǆungla ᾳ")); // titlecase digraph and ypogegrammeni
        Assert.Equal("Fix", PyStr.Capitalize("ﬁX"));
        Assert.Equal("i\u0307", PyStr.Lower("İ"));
        Assert.Equal("I", PyStr.Upper("ı"));
        Assert.Equal("όσος", PyStr.SwapCase("ΌΣΟΣ"));
        Assert.False(PyStr.IsLowerOrUpper("Ⅻ ⓐ", lower: false)); // ⓐ is lowercase (Other_Lowercase), Ⅻ uppercase
        Assert.True(PyStr.IsLowerOrUpper("ª", lower: true));
    }

    [Fact]
    public void Ints_AreUnboundedAsInPython()
    {
        // Large ids in tool-call JSON must survive: json.loads/json.dumps keep every digit.
        var messages = (System.Text.Json.Nodes.JsonArray)System.Text.Json.Nodes.JsonNode.Parse("""[{"role": "tool", "id": 18446744073709551615}]""")!;
        var request = new FuseSharp.Tokenization.ChatTemplates.ChatTemplateRequest(messages);
        Assert.Equal("[{\"role\": \"tool\", \"id\": 18446744073709551615}]|18446744073709551616|100000000000000000000|True",
            FuseSharp.Tokenization.ChatTemplates.ChatTemplate.Parse("{{ messages|tojson }}|{{ messages[0].id + 1 }}|{{ 10 ** 20 }}|{{ 1e20 == 10 ** 20 }}").Render(request));
        Assert.Equal(9223372036854775807L, Py.Sub(Py.Add(long.MaxValue, 1L), 1L)); // back to 64 bits when it fits
        Assert.Equal("-4", Py.Str(Py.FloorDiv(Py.Neg(Py.Pow(2L, 64L)), Py.Pow(2L, 62L))));
    }

    [Fact]
    public void PercentFormat_AsPython()
    {
        var args = PyList.Tuple(3.14159, 42L, 5L, 255L, 8L, 12345.678, 0.00001234, 1234567.0, 65L, "it's");
        Assert.Equal(" 3.14|42    |+5|ff|0o10|1.234568e+04|1.234e-05|1.23457e+06|A|%|\"it's\"",
            PyFormat.Percent("%5.2f|%-6d|%+d|%x|%#o|%e|%g|%g|%c|%%|%r", args));
    }
}
