using Xunit;

namespace Hybrid.CSharp.Tests;

/// <summary>The README's C# example is, word for word, samples/Hybrid.Readme/Program.cs, which
/// ./build.sh test compiles and runs; so the README cannot show C# that does not build or run.</summary>
public class ReadmeTests
{
    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "README.md")) && File.Exists(Path.Combine(dir.FullName, "Hybrid.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"No folder above {AppContext.BaseDirectory} holds README.md and Hybrid.sln.");
    }

    private static string Normalise(string text) => text.Replace("\r\n", "\n").Trim();

    [Fact]
    public void TheReadmeCSharpExampleIsTheCompiledSample()
    {
        var root = RepositoryRoot();
        var readme = File.ReadAllText(Path.Combine(root, "README.md"));
        const string fence = "```csharp\n";
        var start = readme.IndexOf(fence, StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no ```csharp block");
        start += fence.Length;
        var end = readme.IndexOf("\n```", start, StringComparison.Ordinal);
        Assert.True(end > start, "README.md's ```csharp block is not closed");

        var shown = Normalise(readme[start..end]);
        var compiled = Normalise(File.ReadAllText(Path.Combine(root, "samples", "Hybrid.Readme", "Program.cs")));
        Assert.Equal(compiled, shown);
    }
}
