using System.Reflection;
using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>No F# type (FSharpOption, FSharpList, FSharpFunc, FSharpAsync, F# tuples, unions of FSharp.Core) and no
/// type of Hybrid's F# assemblies (Hybrid.Dsl, Hybrid.Core, Hybrid.Models: <c>Model</c>, <c>Simulator</c>, …) appears
/// in any public signature of the facade.</summary>
public class SurfaceTests
{
    private static IEnumerable<Type> Mentioned(Type t)
    {
        yield return t;
        if (t.HasElementType)
            foreach (var m in Mentioned(t.GetElementType()!))
                yield return m;
        if (t.IsGenericType)
            foreach (var a in t.GetGenericArguments())
            foreach (var m in Mentioned(a))
                yield return m;
    }

    private static readonly string[] HybridFSharpAssemblies = { "Hybrid.Dsl", "Hybrid.Core", "Hybrid.Models" };

    private static bool IsFSharp(Type t) =>
        Mentioned(t).Any(m =>
            (m.Namespace ?? "").StartsWith("Microsoft.FSharp", StringComparison.Ordinal)
            || HybridFSharpAssemblies.Contains(m.Assembly.GetName().Name));

    private static IEnumerable<(string Where, Type Type)> Signatures(Type type)
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        if (type.BaseType is not null) yield return ($"{type.Name} base", type.BaseType);
        foreach (var i in type.GetInterfaces()) yield return ($"{type.Name} implements", i);
        foreach (var m in type.GetMethods(flags))
        {
            yield return ($"{type.Name}.{m.Name} returns", m.ReturnType);
            foreach (var p in m.GetParameters()) yield return ($"{type.Name}.{m.Name}({p.Name})", p.ParameterType);
        }

        foreach (var c in type.GetConstructors(flags))
        foreach (var p in c.GetParameters())
            yield return ($"{type.Name}.ctor({p.Name})", p.ParameterType);
        foreach (var p in type.GetProperties(flags)) yield return ($"{type.Name}.{p.Name}", p.PropertyType);
        foreach (var f in type.GetFields(flags)) yield return ($"{type.Name}.{f.Name}", f.FieldType);
        foreach (var e in type.GetEvents(flags)) yield return ($"{type.Name}.{e.Name}", e.EventHandlerType!);
    }

    [Fact]
    public void NoPublicSignatureMentionsAnFSharpType()
    {
        var types = typeof(HybridModel).Assembly.GetExportedTypes();
        Assert.Contains(typeof(HybridSimulator), types);
        Assert.NotEmpty(types.SelectMany(Signatures));
        var offenders = types
            .SelectMany(Signatures)
            .Where(s => IsFSharp(s.Type))
            .Select(s => $"{s.Where}: {s.Type}")
            .ToList();
        Assert.True(offenders.Count == 0, "F# or Hybrid F# types in public signatures:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void TheCheckCatchesFSharpTypes()
    {
        Assert.True(IsFSharp(typeof(Microsoft.FSharp.Core.FSharpOption<int>[])));
        Assert.True(IsFSharp(typeof(List<Microsoft.FSharp.Collections.FSharpList<int>>)));
        Assert.False(IsFSharp(typeof(Dictionary<string, double[]>)));
        // Hybrid's own F# types: the model IR, the compiled simulator, a training record, in any position.
        Assert.True(IsFSharp(typeof(Hybrid.Model)));
        Assert.True(IsFSharp(typeof(IReadOnlyList<Hybrid.Compiler.Simulator>)));
        Assert.True(IsFSharp(typeof(Hybrid.Training.TrainOptions[])));
        Assert.False(IsFSharp(typeof(HybridSimulator)));
        Assert.False(IsFSharp(typeof(TorchSharp.torch.Tensor)));
    }
}
