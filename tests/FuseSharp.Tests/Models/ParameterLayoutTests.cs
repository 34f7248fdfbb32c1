using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Models.Weights;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Models;

public class ParameterLayoutTests
{
    public static TheoryData<string> Cases => new(ModelFixtures.Names);

    [Theory]
    [MemberData(nameof(Cases))]
    public void ParameterList_IsExactlyTheCheckpointsTensors(string name)
    {
        var config = ModelConfig.Load(Path.Combine(ModelFixtures.Folder(name), "config.json"));
        var arch = ArchitectureRegistry.Resolve(config);
        var spec = arch.Resolve(config);
        using var weights = SafetensorsModel.Open(ModelFixtures.Folder(name));
        var expected = weights.Tensors.ToDictionary(t => t.Name, t => t.Shape.ToArray());
        var actual = arch.Parameters(spec).ToDictionary(p => p.Name, p => p.Shape);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (n, shape) in expected) Assert.Equal(shape, actual[n]);
        Assert.Equal(ModelFixtures.Case(name)["num_parameters"]?.GetValue<long>() ?? actual.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)),
            arch.Parameters(spec).Sum(p => p.ElementCount));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void InitialisedWeights_RunForEveryFamily(string name)
    {
        var config = ModelConfig.Load(Path.Combine(ModelFixtures.Folder(name), "config.json"));
        var arch = ArchitectureRegistry.Resolve(config);
        var (_, spec) = ModelInitializer.PrepareConfig(arch, config.Raw, DType.BF16);
        using var source = new TensorWeightSource(ModelInitializer.CreateWeights(arch, spec, 0.02, seed: 4, DType.BF16), ownsTensors: true);
        using var model = TransformerModel.Create(arch, spec, source);
        var loss = new NextTokenLoss();
        model.Forward(TokenBatch.Single([1, 2, 3, 4, 5]), loss);
        // Small random weights: the prediction is close to uniform, so the loss is close to ln(vocab).
        Assert.InRange(loss.Mean, Math.Log(spec.VocabSize) - 0.5, Math.Log(spec.VocabSize) + 0.5);
    }
}
