using System.IO.Hashing;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

namespace AiChat.Api.Llm;

/// <summary>
/// Offline embeddings: feature hashing of a text's words (and word pairs) into a fixed-size, unit-length vector.
/// Deterministic and network-free; texts that share words land close together, which is what archival search needs.
/// </summary>
public sealed partial class OfflineEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    public const string ModelName = "aichat-offline-embedding";
    public const int Dimensions = 1536;

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var embeddings = new GeneratedEmbeddings<Embedding<float>>(values.Select(text => new Embedding<float>(Embed(text)) { ModelId = ModelName }));
        return Task.FromResult(embeddings);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(EmbeddingGeneratorMetadata) ? new EmbeddingGeneratorMetadata("aichat-offline", null, ModelName, Dimensions)
        : serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
    }

    public static float[] Embed(string text)
    {
        var vector = new float[Dimensions];
        var words = Words().Matches(text.ToLowerInvariant()).Select(m => m.Value).ToArray();
        for (var i = 0; i < words.Length; i++)
        {
            Add(vector, words[i], 1f);
            if (i + 1 < words.Length)
            {
                Add(vector, words[i] + " " + words[i + 1], 0.5f);
            }
        }

        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        if (norm > 0)
        {
            for (var i = 0; i < vector.Length; i++)
            {
                vector[i] /= norm;
            }
        }

        return vector;
    }

    private static void Add(float[] vector, string feature, float weight)
    {
        var hash = XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(feature));
        vector[(int)(hash % Dimensions)] += (hash >> 63) == 0 ? weight : -weight;
    }

    [GeneratedRegex(@"[\p{L}\p{N}]+", RegexOptions.CultureInvariant)]
    private static partial Regex Words();
}
