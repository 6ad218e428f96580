using TorchSharp;
using static TorchSharp.torch;

namespace Hybrid.CSharp;

public sealed partial class HybridSimulator
{
    private const int FormatVersion = 1;
    private const string Header = "hybrid-parameters 1";

    private IEnumerable<(string Name, Tensor Value)> Entries() =>
        _inner.Parameters.Select(p => ("theta:" + p.Name, (Tensor)p.Raw))
            .Concat(_inner.Modules.SelectMany(m =>
                m.Item2.named_parameters().Select(np => ($"phi:{m.Item1}:{np.name}", (Tensor)np.parameter))));

    /// <summary>
    /// Writes every parameter (θ, on its unconstrained scale) and every closure network weight (φ) to one
    /// binary file, by name, so that <see cref="Load"/> on a simulator of the same model restores them.
    /// </summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        OnTorch(() => SaveOnTorch(path));
    }

    private void SaveOnTorch(string path)
    {
        var entries = Entries().ToArray();
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
            Directory.CreateDirectory(folder);
        var staging = path + ".tmp";
        using (var file = File.Create(staging))
        using (var writer = new BinaryWriter(file))
        {
            writer.Write(Header);
            writer.Write(Model.Name);
            writer.Write(entries.Length);
            foreach (var (name, value) in entries)
            {
                writer.Write(name);
                using var copy = value.detach().cpu();
                copy.Save(writer);
            }
        }

        File.Move(staging, path, true);
    }

    /// <summary>Restores the parameters and network weights written by <see cref="Save"/>.</summary>
    /// <exception cref="Hybrid.HybridException">The file is not a Hybrid parameter file, or was written for a
    /// model with other parameters, closures or shapes; the message names the mismatch.</exception>
    public void Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        OnTorch(() => LoadOnTorch(path));
    }

    private void LoadOnTorch(string path)
    {
        if (!File.Exists(path))
            throw new HybridException($"Parameter file '{path}' does not exist. Write one with Save first.");
        var entries = Entries().ToDictionary(e => e.Name, e => e.Value);
        using var file = File.OpenRead(path);
        using var reader = new BinaryReader(file);
        string header;
        try
        {
            header = reader.ReadString();
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            header = "";
        }

        if (header != Header)
        {
            const string prefix = "hybrid-parameters ";
            if (header.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(header[prefix.Length..], out var format))
                throw new HybridException(
                    $"'{path}' is a Hybrid parameter file in format {format}, written by {(format > FormatVersion ? "a newer" : "an older")} version of Hybrid; this version reads format {FormatVersion}. Load it with the Hybrid that wrote it, or Save the parameters again from a simulator of this version.");
            throw new HybridException($"'{path}' is not a Hybrid parameter file (written by HybridSimulator.Save).");
        }
        var model = reader.ReadString();
        var count = reader.ReadInt32();
        if (count != entries.Count)
            throw new HybridException(
                $"'{path}' holds {count} tensors (model '{model}') but this simulator of '{Model.Name}' has {entries.Count}. Load it into a simulator of the same model.");
        using var noGrad = no_grad();
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadString();
            if (!entries.TryGetValue(name, out var target))
                throw new HybridException(
                    $"'{path}' holds '{name}', which this simulator of '{Model.Name}' does not have. Load it into a simulator of the same model.");
            using var tmp = zeros_like(target).cpu();
            tmp.Load(reader);
            if (!tmp.shape.SequenceEqual(target.shape))
                throw new HybridException(
                    $"'{path}': '{name}' has shape [{string.Join(", ", tmp.shape)}] but the simulator's has [{string.Join(", ", target.shape)}].");
            target.copy_(tmp);
        }
    }
}
