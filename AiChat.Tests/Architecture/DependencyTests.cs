extern alias gateway;

using System.Reflection;
using System.Text;
using AiChat.Api.Data;

namespace AiChat.Tests.Architecture;

/// <summary>
/// Issue 9's one-way flow, read from the compiled assemblies this suite runs against: a turn goes
/// Chat → Agents → Llm → Billing → Data, accounts go Auth → Users, and Data and Infrastructure know no feature.
/// </summary>
[Trait("Category", "Architecture")]
public sealed class DependencyTests
{
    private const string ApiAssembly = "AiChat.Api";

    // What each feature may use besides itself; Program (the global namespace) composes them all and may use anything.
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Clients"] = ["Chat", "Agents", "Llm", "Billing", "Users", "Data", "Infrastructure"],
        ["Chat"] = ["Agents", "Llm", "Billing", "Users", "Data", "Infrastructure"],
        ["Agents"] = ["Llm", "Billing", "Users", "Data", "Infrastructure"],
        ["Llm"] = ["Billing", "Data", "Infrastructure"],
        ["Billing"] = ["Data", "Infrastructure"],
        ["Auth"] = ["Users", "Data", "Infrastructure"],
        ["Users"] = ["Billing", "Data", "Infrastructure"],
        ["Data"] = [],
        ["Infrastructure"] = [],
    };

    private static readonly Lazy<FeatureGraph> Api = new(() => FeatureGraph.Read(typeof(AiChatDb).Assembly));

    [Fact]
    public void EveryFeatureUsesOnlyTheFeaturesTheOneWayFlowAllows()
    {
        var graph = Api.Value;
        TestContext.Current.TestOutputHelper?.WriteLine(graph.Describe());

        var violations = graph.Edges
            .Where(edge => edge.Key.From != FeatureGraph.Global && !(Allowed.TryGetValue(edge.Key.From, out var allowed) && allowed.Contains(edge.Key.To)))
            .OrderBy(edge => edge.Key.From, StringComparer.Ordinal).ThenBy(edge => edge.Key.To, StringComparer.Ordinal)
            .ToList();

        Assert.True(violations.Count == 0, $"{violations.Count} feature reference(s) against the one-way flow:\n"
            + string.Join("\n", violations.Select(edge => FeatureGraph.Describe(edge.Key, edge.Value, Allowed.ContainsKey(edge.Key.From) ? null : $"{edge.Key.From} is not a feature the matrix knows"))));
    }

    [Fact]
    public void TheFeatureGraphHasNoCycle()
    {
        var graph = Api.Value;
        var cycles = graph.Cycles();

        Assert.True(cycles.Count == 0, $"{cycles.Count} cycle(s) between features:\n" + string.Join("\n", cycles.Select(cycle =>
            string.Join(" → ", cycle.Append(cycle[0])) + "\n" + string.Join("\n", cycle.Select((from, i) =>
            {
                var to = cycle[(i + 1) % cycle.Count];
                return $"    {from} → {to}: {graph.Edges[(from, to)].FirstExamples[0]}";
            })))));
    }

    [Fact]
    public void TheGraphIsReadFromTheApiAssemblyThisSuiteRuns()
    {
        var graph = Api.Value;

        Assert.Equal(typeof(AiChatDb).Assembly.ManifestModule.ModuleVersionId, graph.Mvid);
        Assert.True(graph.HasSymbols, "the API's PDB is read (its using directives are the only trace of constants taken from another feature)");
        Assert.Contains("Chat", graph.Features);
        Assert.Contains("Data", graph.Features);
        // Program composes the features: its calls to AddChat and AddStore are edges the reader must have seen.
        Assert.Contains((FeatureGraph.Global, "Chat"), graph.Edges.Keys);
        Assert.Contains((FeatureGraph.Global, "Data"), graph.Edges.Keys);
    }

    [Theory]
    [InlineData("AiChat.Gateway")]
    [InlineData("AiChat.ServiceDefaults")]
    public void TheGatewayAndTheServiceDefaultsKnowNoApiType(string assemblyName)
    {
        var assembly = assemblyName == "AiChat.Gateway" ? typeof(gateway::Program).Assembly : typeof(ResourceNames).Assembly;
        Assert.Equal(assemblyName, assembly.GetName().Name);
        using var module = TypeUses.Read(assembly.Location);

        Assert.DoesNotContain(module.AssemblyReferences, reference => reference.Name == ApiAssembly);
        var apiUses = TypeUses.Of(module)
            .Where(use => use.TargetAssembly == ApiAssembly || use.TargetNamespace == ApiAssembly || use.TargetNamespace.StartsWith(ApiAssembly + ".", StringComparison.Ordinal))
            .ToList();
        Assert.True(apiUses.Count == 0, $"{assemblyName} uses the API:\n" + string.Join("\n", apiUses.Take(20).Select(use => $"    {use.Example}")));
    }

    [Fact]
    public void TheReaderSeesEveryKindOfTypeUse()
    {
        const string uses = "AiChat.Tests.Architecture.Samples.Uses";
        const string used = "AiChat.Tests.Architecture.Samples.Used";
        using var module = TypeUses.Read(typeof(DependencyTests).Assembly.Location);

        var samples = module.Types.Where(type => type.Namespace == uses).Select(type => type.Name).Order(StringComparer.Ordinal).ToList();
        var seen = TypeUses.Of(module)
            .Where(use => use.SourceNamespace == uses && use.TargetNamespace == used)
            .Select(use => TypeUse.Outermost(use.Source).Name)
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();

        Assert.True(samples.Count >= 30, $"the samples are there ({samples.Count})");
        var missed = samples.Except(seen).ToList();
        Assert.True(missed.Count == 0, $"the reader missed the use in: {string.Join(", ", missed)}");
        Assert.Equal(samples, seen);
    }

    /// <summary>The features of the API and, for each pair that references the other, how often and a few examples.</summary>
    private sealed class FeatureGraph
    {
        public const string Global = "(global)";

        private const int ExamplesPerEdge = 3;

        private FeatureGraph(Guid mvid, bool hasSymbols)
        {
            Mvid = mvid;
            HasSymbols = hasSymbols;
        }

        public Guid Mvid { get; }

        public bool HasSymbols { get; }

        public Dictionary<(string From, string To), Edge> Edges { get; } = [];

        public SortedSet<string> Features { get; } = new(StringComparer.Ordinal);

        /// <summary>Namespaces of generated code (source generators' output), left out of the graph.</summary>
        public SortedSet<string> Ignored { get; } = new(StringComparer.Ordinal);

        public static FeatureGraph Read(Assembly assembly)
        {
            using var module = TypeUses.Read(assembly.Location);
            var graph = new FeatureGraph(module.Mvid, module.HasSymbols);
            foreach (var type in module.Types)
            {
                if (FeatureOf(type.Namespace) is { } feature)
                {
                    graph.Features.Add(feature);
                }
                else
                {
                    graph.Ignored.Add(type.Namespace);
                }
            }

            foreach (var use in TypeUses.Of(module))
            {
                if (FeatureOf(use.SourceNamespace) is not { } from
                    || FeatureOf(use.TargetNamespace) is not { } to
                    || from == to
                    || (use.TargetAssembly != ApiAssembly && use.TargetAssembly != ""))
                {
                    continue;
                }

                if (!graph.Edges.TryGetValue((from, to), out var edge))
                {
                    graph.Edges[(from, to)] = edge = new Edge();
                }

                edge.Count++;
                var examples = use.IsUsing ? edge.UsingExamples : edge.Examples;
                if (examples.Count < ExamplesPerEdge && !examples.Contains(use.Example))
                {
                    examples.Add(use.Example);
                }
            }

            graph.Features.Remove(Global);
            return graph;
        }

        /// <summary><c>AiChat.Api.Agents.Letta</c> is Agents; the global namespace is Program's; other namespaces are generated code.</summary>
        private static string? FeatureOf(string ns)
        {
            if (ns.Length == 0)
            {
                return Global;
            }

            if (ns.StartsWith(ApiAssembly + ".", StringComparison.Ordinal))
            {
                return ns[(ApiAssembly.Length + 1)..].Split('.')[0];
            }

            return ns == ApiAssembly || ns.StartsWith("AiChat.", StringComparison.Ordinal) ? ns : null;
        }

        /// <summary>Every cycle's strongly connected set of features (Program left out), as one cycle through it.</summary>
        public List<List<string>> Cycles()
        {
            var next = Edges.Keys.Where(edge => edge.From != Global && edge.To != Global)
                .GroupBy(edge => edge.From, edge => edge.To)
                .ToDictionary(group => group.Key, group => group.Order(StringComparer.Ordinal).ToList());
            var cycles = new List<List<string>>();
            foreach (var component in StronglyConnected(next).Where(component => component.Count > 1))
            {
                cycles.Add(CycleThrough(component[0], component.ToHashSet(), next));
            }

            return cycles;
        }

        // Tarjan's algorithm.
        private static List<List<string>> StronglyConnected(Dictionary<string, List<string>> next)
        {
            var index = new Dictionary<string, int>();
            var low = new Dictionary<string, int>();
            var stack = new Stack<string>();
            var components = new List<List<string>>();

            void Visit(string node)
            {
                index[node] = low[node] = index.Count;
                stack.Push(node);
                foreach (var to in next.GetValueOrDefault(node) ?? [])
                {
                    if (!index.ContainsKey(to))
                    {
                        Visit(to);
                        low[node] = Math.Min(low[node], low[to]);
                    }
                    else if (stack.Contains(to))
                    {
                        low[node] = Math.Min(low[node], index[to]);
                    }
                }

                if (low[node] == index[node])
                {
                    var component = new List<string>();
                    string member;
                    do
                    {
                        member = stack.Pop();
                        component.Add(member);
                    }
                    while (member != node);
                    components.Add(component.Order(StringComparer.Ordinal).ToList());
                }
            }

            foreach (var node in next.Keys.Order(StringComparer.Ordinal))
            {
                if (!index.ContainsKey(node))
                {
                    Visit(node);
                }
            }

            return components;
        }

        // The shortest way from start back to itself inside its component (breadth first).
        private static List<string> CycleThrough(string start, HashSet<string> component, Dictionary<string, List<string>> next)
        {
            var cameFrom = new Dictionary<string, string>();
            var queue = new Queue<string>([start]);
            while (queue.TryDequeue(out var node))
            {
                foreach (var to in next.GetValueOrDefault(node) ?? [])
                {
                    if (to == start)
                    {
                        var cycle = new List<string> { node };
                        while (cycle[0] != start)
                        {
                            cycle.Insert(0, cameFrom[cycle[0]]);
                        }

                        return cycle;
                    }

                    if (component.Contains(to) && cameFrom.TryAdd(to, node))
                    {
                        queue.Enqueue(to);
                    }
                }
            }

            throw new InvalidOperationException($"{start} is on no cycle.");
        }

        public string Describe()
        {
            var text = new StringBuilder($"Features: {string.Join(", ", Features)}; generated code left out: {string.Join(", ", Ignored.Select(ns => ns.Length == 0 ? Global : ns))}\n");
            foreach (var (key, edge) in Edges.OrderBy(edge => edge.Key.From, StringComparer.Ordinal).ThenBy(edge => edge.Key.To, StringComparer.Ordinal))
            {
                text.AppendLine(Describe(key, edge, null));
            }

            return text.ToString();
        }

        public static string Describe((string From, string To) key, Edge edge, string? note)
        {
            var notes = new[] { note, edge.Examples.Count == 0 ? "only using directives name it" : null }.OfType<string>();
            return $"{key.From} → {key.To} ({edge.Count} use(s){string.Concat(notes.Select(n => $"; {n}"))}), e.g.\n"
                + string.Join("\n", edge.FirstExamples.Select(example => $"    {example}"));
        }
    }

    private sealed class Edge
    {
        public int Count { get; set; }

        public List<string> Examples { get; } = [];

        public List<string> UsingExamples { get; } = [];

        public List<string> FirstExamples => Examples.Count > 0 ? Examples : UsingExamples;
    }
}
