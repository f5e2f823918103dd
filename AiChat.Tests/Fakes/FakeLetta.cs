using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AiChat.Tests.Fakes;

/// <summary>
/// In-process contract fake of Letta's V1 REST API (<c>contracts/letta.md</c>, <c>contracts/letta-conversations.md</c>)
/// served by Kestrel on 127.0.0.1, in memory: providers, agents, core-memory blocks, archival memory, context, reset, the
/// streamed send, and conversations (create, list, get, patch, delete, send, cancel, recompile). A send calls the model
/// the way Letta does: the handle <c>&lt;provider&gt;/&lt;model&gt;</c> resolves to the provider's base URL and key, and
/// <c>{base_url}/chat/completions</c> is called in OpenAI format, with a <c>core_memory_append</c> tool. Resolving a
/// handle other than the agent's own (creating an agent, a conversation's model, <c>override_model</c>) lists
/// <c>{base_url}/models</c> with the provider's key, as Letta does for a BYOK handle.
/// <para>
/// Each conversation has its own history and its own system message, compiled from the agent's blocks when it is made
/// and again only on <c>/recompile</c>; blocks and archival memory are the agent's. A streaming send to a conversation
/// holds that conversation's lock (a second one gets the immediate 409 of §7), starts with a <c>ping</c> carrying its
/// run id, and runs on when its client goes away, until it ends or <c>/cancel</c> stops it. Agent-direct mode under
/// <c>/v1/conversations/default</c> is not served (501): AiChat sends the default conversation to
/// <c>/v1/agents/{id}/messages</c>.
/// </para>
/// </summary>
public sealed partial class FakeLetta : IAsyncDisposable
{
    public const string Version = "0.16.8";
    public const int DefaultBlockLimit = 5000;
    public const int ContextWindow = 128000;

    private const int MaxSteps = 5;
    private const string DefaultActor = "user-00000000-0000-4000-8000-000000000000";
    private const string Alphanumeric = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    private static readonly JsonSerializerOptions Indentless = new() { WriteIndented = false };

    private readonly object gate = new();
    private readonly WebApplication app;
    private readonly HttpClient llm = new();
    private readonly Dictionary<string, FakeProvider> providers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FakeAgent> agents = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FakeConversation> conversations = new(StringComparer.Ordinal);
    private readonly List<FakeRun> runs = [];
    private readonly List<Request> requests = [];
    private readonly List<LlmCall> llmCalls = [];
    private readonly List<LlmCall> modelListings = [];
    private DateTimeOffset lastTimestamp = DateTimeOffset.MinValue;
    private int conflictsLeft;
    private int serverErrorsLeft;
    private bool failNextSend;
    private int disposed;

    private FakeLetta(string password)
    {
        Password = password;
        app = BuildApp();
    }

    public Uri Url { get; private set; } = null!;

    /// <summary>The server password: every call but the health check must carry <c>Authorization: Bearer &lt;password&gt;</c>.</summary>
    public string Password { get; }

    public IReadOnlyList<Request> Requests
    {
        get { lock (gate) { return requests.ToArray(); } }
    }

    public IReadOnlyList<Provider> Providers
    {
        get { lock (gate) { return providers.Values.Select(p => new Provider(p.Id, p.Name, p.ProviderType, p.ApiKey, p.BaseUrl)).ToArray(); } }
    }

    public IReadOnlyList<AgentState> Agents
    {
        get { lock (gate) { return agents.Values.Select(Snapshot).ToArray(); } }
    }

    /// <summary>Every conversation made, deleted ones too (<see cref="ConversationState.Deleted"/>), oldest first.</summary>
    public IReadOnlyList<ConversationState> Conversations
    {
        get { lock (gate) { return conversations.Values.OrderBy(c => c.CreatedAt).Select(Snapshot).ToArray(); } }
    }

    /// <summary>The runs of streaming sends to conversations, oldest first.</summary>
    public IReadOnlyList<Run> Runs
    {
        get { lock (gate) { return runs.Select(r => new Run(r.Id, r.AgentId, r.ConversationId, r.Status)).ToArray(); } }
    }

    /// <summary>The chat-completion calls the fake made on behalf of its agents.</summary>
    public IReadOnlyList<LlmCall> LlmCalls
    {
        get { lock (gate) { return llmCalls.ToArray(); } }
    }

    /// <summary>The <c>GET {base_url}/models</c> calls made to resolve a model handle when an agent was created.</summary>
    public IReadOnlyList<LlmCall> ModelListings
    {
        get { lock (gate) { return modelListings.ToArray(); } }
    }

    public static async Task<FakeLetta> StartAsync(string? password = null)
    {
        var fake = new FakeLetta(password ?? "letta-" + RandomNumberGenerator.GetString(Alphanumeric, 24));
        try
        {
            fake.Url = new Uri(await FakeHost.StartOnLoopbackAsync(fake.app).ConfigureAwait(false) + "/");
            return fake;
        }
        catch
        {
            await fake.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public AgentState? Agent(string id)
    {
        lock (gate)
        {
            return agents.TryGetValue(id, out var agent) ? Snapshot(agent) : null;
        }
    }

    public ConversationState? Conversation(string id)
    {
        lock (gate)
        {
            return conversations.TryGetValue(id, out var conversation) ? Snapshot(conversation) : null;
        }
    }

    /// <summary>The next send streams one assistant delta, then fails as Letta does when the LLM call breaks mid-turn.</summary>
    public void FailNextSend()
    {
        lock (gate)
        {
            failNextSend = true;
        }
    }

    /// <summary>The next <paramref name="count"/> sends (to an agent or a conversation) are refused with 409, as when another request holds it.</summary>
    public void ConflictNextSends(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        lock (gate)
        {
            conflictsLeft = count;
        }
    }

    /// <summary>The next <paramref name="count"/> authenticated calls, whatever they are, fail with a 500 before doing anything.</summary>
    public void FailNextRequests(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        lock (gate)
        {
            serverErrorsLeft = count;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        lock (gate)
        {
            // Conversation runs outlive their clients, as upstream's do: stop them so the host can stop.
            foreach (var run in runs)
            {
                run.Cancellation.Cancel();
            }
        }

        try
        {
            await FakeHost.StopAsync(app).ConfigureAwait(false);
        }
        finally
        {
            llm.Dispose();
            foreach (var run in runs)
            {
                run.Cancellation.Dispose();
            }
        }
    }

    private WebApplication BuildApp()
    {
        var builder = FakeHost.CreateBuilder();

        var web = builder.Build();
        web.Use(CheckRequestAsync);

        web.MapGet("/v1/health/", (RequestDelegate)(ctx => WriteJsonAsync(ctx, 200, new JsonObject { ["version"] = Version, ["status"] = "ok" })));

        var v1 = web.MapGroup("/v1");
        v1.MapGet("/providers/", (RequestDelegate)ListProvidersAsync);
        v1.MapPost("/providers/", (RequestDelegate)CreateProviderAsync);
        v1.MapDelete("/providers/{providerId}", (RequestDelegate)DeleteProviderAsync);

        v1.MapPost("/agents/", (RequestDelegate)CreateAgentAsync);
        v1.MapGet("/agents/{agentId}", (RequestDelegate)GetAgentAsync);
        v1.MapDelete("/agents/{agentId}", (RequestDelegate)DeleteAgentAsync);
        v1.MapGet("/agents/{agentId}/core-memory/blocks", (RequestDelegate)ListBlocksAsync);
        v1.MapPatch("/agents/{agentId}/core-memory/blocks/{label}", (RequestDelegate)UpdateBlockAsync);
        v1.MapPost("/agents/{agentId}/archival-memory", (RequestDelegate)InsertPassageAsync);
        v1.MapGet("/agents/{agentId}/archival-memory", (RequestDelegate)ListPassagesAsync);
        v1.MapGet("/agents/{agentId}/archival-memory/search", (RequestDelegate)SearchPassagesAsync);
        v1.MapDelete("/agents/{agentId}/archival-memory/{passageId}", (RequestDelegate)DeletePassageAsync);
        v1.MapGet("/agents/{agentId}/context", (RequestDelegate)GetContextAsync);
        v1.MapPatch("/agents/{agentId}/reset-messages", (RequestDelegate)ResetMessagesAsync);
        v1.MapPost("/agents/{agentId}/messages", (RequestDelegate)(ctx => SendAsync(ctx, alwaysStream: false)));
        v1.MapPost("/agents/{agentId}/messages/stream", (RequestDelegate)(ctx => SendAsync(ctx, alwaysStream: true)));

        // Routing ignores a trailing slash, so this serves both forms (upstream redirects the bare one).
        v1.MapPost("/conversations/", (RequestDelegate)CreateConversationAsync);
        v1.MapGet("/conversations/", (RequestDelegate)ListConversationsAsync);

        v1.MapGet("/conversations/{conversationId}", (RequestDelegate)GetConversationAsync);
        v1.MapPatch("/conversations/{conversationId}", (RequestDelegate)UpdateConversationAsync);
        v1.MapDelete("/conversations/{conversationId}", (RequestDelegate)DeleteConversationAsync);
        v1.MapPost("/conversations/{conversationId}/messages", (RequestDelegate)SendToConversationAsync);
        v1.MapPost("/conversations/{conversationId}/cancel", (RequestDelegate)CancelConversationAsync);
        v1.MapPost("/conversations/{conversationId}/recompile", (RequestDelegate)RecompileConversationAsync);

        web.MapFallback((RequestDelegate)(ctx => WriteDetailAsync(ctx, StatusCodes.Status404NotFound, "Not Found")));
        return web;
    }

    private async Task CheckRequestAsync(HttpContext ctx, RequestDelegate next)
    {
        var userAgent = ctx.Request.Headers.UserAgent.Count > 0 ? ctx.Request.Headers.UserAgent.ToString() : null;
        var authorization = ctx.Request.Headers.Authorization.Count > 0 ? ctx.Request.Headers.Authorization.ToString() : null;
        lock (gate)
        {
            requests.Add(new Request(ctx.Request.Method, ctx.Request.Path.Value ?? "", ctx.Request.QueryString.Value ?? "", userAgent, authorization));
        }

        if (ctx.Request.Path.StartsWithSegments("/v1/health", StringComparison.Ordinal))
        {
            await next(ctx).ConfigureAwait(false);
            return;
        }

        var token = authorization is null ? null : BearerPattern().Match(authorization) is { Success: true } match ? match.Groups[1].Value : null;
        if (token is null || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(token), Encoding.UTF8.GetBytes(Password)))
        {
            await WriteDetailAsync(ctx, StatusCodes.Status401Unauthorized, "Unauthorized").ConfigureAwait(false);
            return;
        }

        bool serverError;
        lock (gate)
        {
            serverError = serverErrorsLeft > 0;
            serverErrorsLeft = Math.Max(0, serverErrorsLeft - 1);
        }

        if (serverError)
        {
            await WriteDetailAsync(ctx, StatusCodes.Status500InternalServerError, "An unknown error occurred").ConfigureAwait(false);
            return;
        }

        await next(ctx).ConfigureAwait(false);
    }

    private Task ListProvidersAsync(HttpContext ctx)
    {
        var name = ctx.Request.Query["name"].ToString();
        JsonArray list;
        lock (gate)
        {
            list = new JsonArray(providers.Values
                .Where(p => name.Length == 0 || p.Name == name)
                .OrderByDescending(p => p.CreatedAt)
                .Select(ProviderJson)
                .ToArray<JsonNode?>());
        }

        return WriteJsonAsync(ctx, 200, list);
    }

    private async Task CreateProviderAsync(HttpContext ctx)
    {
        var body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        var name = body is null ? null : GetString(body, "name");
        var type = body is null ? null : GetString(body, "provider_type");
        var apiKey = body is null ? null : GetString(body, "api_key");
        var baseUrl = body is null ? null : GetString(body, "base_url");
        if (string.IsNullOrEmpty(name) || type is null || apiKey is null)
        {
            await WriteValidationAsync(ctx, "body", "name, provider_type and api_key are required").ConfigureAwait(false);
            return;
        }

        if (type != "openai")
        {
            await WriteValidationAsync(ctx, "body.provider_type", "Input should be a supported provider type").ConfigureAwait(false);
            return;
        }

        JsonObject json;
        lock (gate)
        {
            if (providers.Values.Any(p => p.Name == name))
            {
                json = new JsonObject { ["detail"] = $"Provider with name '{name}' already exists" };
            }
            else
            {
                var provider = new FakeProvider("provider-" + Guid.NewGuid(), name, type, apiKey, baseUrl ?? "https://api.openai.com/v1", NextTimestamp());
                providers[provider.Id] = provider;
                json = ProviderJson(provider);
            }
        }

        await WriteJsonAsync(ctx, json.ContainsKey("detail") ? StatusCodes.Status409Conflict : 200, json).ConfigureAwait(false);
    }

    private Task DeleteProviderAsync(HttpContext ctx)
    {
        var id = Route(ctx, "providerId");
        bool removed;
        lock (gate)
        {
            removed = providers.Remove(id);
        }

        return removed
            ? WriteJsonAsync(ctx, 200, new JsonObject { ["message"] = $"Provider id={id} successfully deleted" })
            : WriteDetailAsync(ctx, StatusCodes.Status404NotFound, $"Provider with id '{id}' not found");
    }

    private async Task CreateAgentAsync(HttpContext ctx)
    {
        var body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        var model = body is null ? null : GetString(body, "model");
        if (body is null || string.IsNullOrEmpty(model))
        {
            await WriteValidationAsync(ctx, "body.model", "Field required").ConfigureAwait(false);
            return;
        }

        var blocks = new List<FakeBlock>();
        foreach (var node in body["memory_blocks"] as JsonArray ?? [])
        {
            if (node is not JsonObject block || GetString(block, "label") is not { Length: > 0 } label || GetString(block, "value") is not { } value)
            {
                await WriteValidationAsync(ctx, "body.memory_blocks", "Each block needs a label and a value").ConfigureAwait(false);
                return;
            }

            var limit = GetInt(block, "limit") ?? DefaultBlockLimit;
            if (PythonLength(value) > limit)
            {
                await WriteLimitAsync(ctx, limit, PythonLength(value)).ConfigureAwait(false);
                return;
            }

            blocks.Add(new FakeBlock("block-" + Guid.NewGuid(), label, value, limit, GetString(block, "description")));
        }

        (FakeProvider Provider, string Model)? target;
        lock (gate)
        {
            target = ResolveHandle(model);
        }

        // Upstream resolves a BYOK handle by listing the provider's models: the endpoint must offer the model.
        if (target is not { } resolved || !await OffersModelAsync(resolved.Provider, resolved.Model, ctx.RequestAborted).ConfigureAwait(false))
        {
            await WriteDetailAsync(ctx, StatusCodes.Status404NotFound, $"LLM model not found with handle='{model}'").ConfigureAwait(false);
            return;
        }

        JsonObject json;
        lock (gate)
        {
            var agent = new FakeAgent(
                "agent-" + Guid.NewGuid(),
                GetString(body, "name") ?? "agent-" + RandomNumberGenerator.GetString(Alphanumeric, 8),
                model,
                GetString(body, "embedding") ?? "openai/text-embedding-3-small",
                (body["tags"] as JsonArray ?? []).Select(tag => tag?.GetValue<string>() ?? "").ToList(),
                body["include_base_tools"] is JsonValue include && include.GetValueKind() == JsonValueKind.True,
                blocks,
                NextTimestamp());
            agents[agent.Id] = agent;
            json = AgentJson(agent, includeBlocks: true);
        }

        await WriteJsonAsync(ctx, 200, json).ConfigureAwait(false);
    }

    private async Task<bool> OffersModelAsync(FakeProvider provider, string model, CancellationToken cancellationToken)
    {
        var url = new Uri(provider.BaseUrl.TrimEnd('/') + "/models");
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", provider.ApiKey);
        try
        {
            using var response = await llm.SendAsync(request, cancellationToken).ConfigureAwait(false);
            lock (gate)
            {
                modelListings.Add(new LlmCall(url, provider.ApiKey, model, (int)response.StatusCode));
            }

            if (!response.IsSuccessStatusCode)
            {
                return false;
            }

            var json = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)) as JsonObject;
            return (json?["data"] as JsonArray ?? []).OfType<JsonObject>().Any(entry => GetString(entry, "id") == model);
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException)
        {
            return false;
        }
    }

    private Task GetAgentAsync(HttpContext ctx)
    {
        var includeBlocks = ctx.Request.Query["include"].Any(value => value == "agent.blocks");
        lock (gate)
        {
            return FindAgent(ctx) is { } agent
                ? WriteJsonAsync(ctx, 200, AgentJson(agent, includeBlocks))
                : AgentNotFoundAsync(ctx);
        }
    }

    private Task DeleteAgentAsync(HttpContext ctx)
    {
        var id = Route(ctx, "agentId");
        bool removed;
        lock (gate)
        {
            removed = agents.Remove(id);
            foreach (var conversation in conversations.Values.Where(c => c.AgentId == id))
            {
                conversation.Deleted = true;
            }
        }

        return removed
            ? WriteJsonAsync(ctx, 200, new JsonObject { ["message"] = $"Agent id={id} successfully deleted" })
            : AgentNotFoundAsync(ctx);
    }

    private Task ListBlocksAsync(HttpContext ctx)
    {
        lock (gate)
        {
            return FindAgent(ctx) is { } agent
                ? WriteJsonAsync(ctx, 200, new JsonArray(agent.Blocks.Select(BlockJson).ToArray<JsonNode?>()))
                : AgentNotFoundAsync(ctx);
        }
    }

    private async Task UpdateBlockAsync(HttpContext ctx)
    {
        var body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        if (body is null)
        {
            await WriteValidationAsync(ctx, "body", "JSON decode error").ConfigureAwait(false);
            return;
        }

        var label = Route(ctx, "label");
        int status;
        JsonObject json;
        lock (gate)
        {
            var agent = FindAgent(ctx);
            var block = agent?.Blocks.FirstOrDefault(b => b.Label == label);
            var value = GetString(body, "value") ?? block?.Value ?? "";
            var limit = GetInt(body, "limit") ?? block?.Limit ?? DefaultBlockLimit;
            if (agent is null)
            {
                (status, json) = (404, Detail($"Agent with id '{Route(ctx, "agentId")}' not found"));
            }
            else if (block is null)
            {
                (status, json) = (404, Detail($"Block with label '{label}' not found for agent '{agent.Id}'"));
            }
            else if (PythonLength(value) > limit)
            {
                (status, json) = (422, LimitDetail(limit, PythonLength(value)));
            }
            else
            {
                block.Value = value;
                block.Limit = limit;
                if (body.ContainsKey("description"))
                {
                    block.Description = GetString(body, "description");
                }

                (status, json) = (200, BlockJson(block));
            }
        }

        await WriteJsonAsync(ctx, status, json).ConfigureAwait(false);
    }

    private async Task InsertPassageAsync(HttpContext ctx)
    {
        var body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        var text = body is null ? null : GetString(body, "text");
        if (string.IsNullOrEmpty(text))
        {
            await WriteValidationAsync(ctx, "body.text", "Field required").ConfigureAwait(false);
            return;
        }

        JsonNode json;
        lock (gate)
        {
            if (FindAgent(ctx) is not { } agent)
            {
                json = Detail($"Agent with id '{Route(ctx, "agentId")}' not found");
            }
            else
            {
                var tags = (body!["tags"] as JsonArray ?? []).Select(tag => tag?.GetValue<string>() ?? "").ToList();
                var passage = new FakePassage("passage-" + Guid.NewGuid(), text, tags, NextTimestamp());
                agent.Passages.Add(passage);
                json = new JsonArray(PassageJson(passage, agent.Id));
            }
        }

        await WriteJsonAsync(ctx, json is JsonArray ? 200 : 404, json).ConfigureAwait(false);
    }

    private Task ListPassagesAsync(HttpContext ctx)
    {
        var search = ctx.Request.Query["search"].ToString();
        var limit = int.TryParse(ctx.Request.Query["limit"], CultureInfo.InvariantCulture, out var n) ? n : 100;
        var ascending = !string.Equals(ctx.Request.Query["ascending"], "false", StringComparison.OrdinalIgnoreCase);
        lock (gate)
        {
            if (FindAgent(ctx) is not { } agent)
            {
                return AgentNotFoundAsync(ctx);
            }

            var matching = agent.Passages.Where(p => search.Length == 0 || p.Text.Contains(search, StringComparison.OrdinalIgnoreCase));
            var ordered = ascending ? matching.OrderBy(p => p.CreatedAt) : matching.OrderByDescending(p => p.CreatedAt);
            return WriteJsonAsync(ctx, 200, new JsonArray(ordered.Take(limit).Select(p => PassageJson(p, agent.Id)).ToArray<JsonNode?>()));
        }
    }

    // Stands in for the embedding search: passages ranked by how many of the query's words they contain.
    private Task SearchPassagesAsync(HttpContext ctx)
    {
        var query = ctx.Request.Query["query"].ToString();
        var topK = int.TryParse(ctx.Request.Query["top_k"], CultureInfo.InvariantCulture, out var n) ? n : 10;
        var words = query.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lock (gate)
        {
            if (FindAgent(ctx) is not { } agent)
            {
                return AgentNotFoundAsync(ctx);
            }

            var results = agent.Passages
                .Select(p => (Passage: p, Score: words.Count(word => p.Text.Contains(word, StringComparison.OrdinalIgnoreCase))))
                .Where(hit => hit.Score > 0)
                .OrderByDescending(hit => hit.Score)
                .ThenByDescending(hit => hit.Passage.CreatedAt)
                .Take(topK)
                .Select(hit => (JsonNode)new JsonObject
                {
                    ["id"] = hit.Passage.Id,
                    ["timestamp"] = Iso(hit.Passage.CreatedAt),
                    ["content"] = hit.Passage.Text,
                    ["tags"] = new JsonArray(hit.Passage.Tags.Select(tag => (JsonNode)tag).ToArray()),
                })
                .ToArray<JsonNode?>();
            return WriteJsonAsync(ctx, 200, new JsonObject { ["count"] = results.Length, ["results"] = new JsonArray(results) });
        }
    }

    private Task DeletePassageAsync(HttpContext ctx)
    {
        var passageId = Route(ctx, "passageId");
        lock (gate)
        {
            if (FindAgent(ctx) is not { } agent)
            {
                return AgentNotFoundAsync(ctx);
            }

            return agent.Passages.RemoveAll(p => p.Id == passageId) > 0
                ? WriteRawAsync(ctx, 200, "null")
                : WriteDetailAsync(ctx, StatusCodes.Status404NotFound, $"Passage with id '{passageId}' not found");
        }
    }

    private Task GetContextAsync(HttpContext ctx)
    {
        lock (gate)
        {
            if (FindAgent(ctx) is not { } agent)
            {
                return AgentNotFoundAsync(ctx);
            }

            var system = SystemPrompt(agent);
            var tokens = (system.Length + agent.Messages.Sum(m => m.Content.Length)) / 4;
            return WriteJsonAsync(ctx, 200, new JsonObject
            {
                ["context_window_size_max"] = ContextWindow,
                ["context_window_size_current"] = tokens,
                ["num_messages"] = agent.Messages.Count + 1,
                ["num_archival_memory"] = agent.Passages.Count,
                ["num_recall_memory"] = agent.RecallCount,
                ["num_tokens_external_memory_summary"] = 0,
                ["num_tokens_system"] = system.Length / 4,
                ["num_tokens_core_memory"] = agent.Blocks.Sum(b => b.Value.Length) / 4,
                ["num_tokens_messages"] = agent.Messages.Sum(m => m.Content.Length) / 4,
            });
        }
    }

    private async Task ResetMessagesAsync(HttpContext ctx)
    {
        var body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        var addDefaults = body?["add_default_initial_messages"] is JsonValue value && value.GetValueKind() == JsonValueKind.True;
        JsonObject json;
        lock (gate)
        {
            if (FindAgent(ctx) is not { } agent)
            {
                json = Detail($"Agent with id '{Route(ctx, "agentId")}' not found");
            }
            else
            {
                agent.Messages.Clear();
                if (addDefaults)
                {
                    agent.Messages.Add(new FakeMessage("assistant", "Hello! What would you like to talk about?"));
                }

                json = AgentJson(agent, includeBlocks: false);
            }
        }

        await WriteJsonAsync(ctx, json.ContainsKey("detail") ? 404 : 200, json).ConfigureAwait(false);
    }

    private async Task SendAsync(HttpContext ctx, bool alwaysStream)
    {
        var body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        var userText = body?["messages"] is JsonArray { Count: > 0 } messages && messages[^1] is JsonObject last ? ContentText(last["content"]) : null;
        if (userText is null)
        {
            await WriteValidationAsync(ctx, "body.messages", "Field required").ConfigureAwait(false);
            return;
        }

        var streaming = alwaysStream || body!["streaming"] is JsonValue s && s.GetValueKind() == JsonValueKind.True;
        var userAgent = ctx.Request.Headers.UserAgent.ToString();
        // Letta treats any other client that names itself "x/y" as a legacy SDK, which could not stream.
        if (streaming && userAgent.Contains('/', StringComparison.Ordinal) && !userAgent.StartsWith("letta-client/", StringComparison.Ordinal))
        {
            await WriteDetailAsync(ctx, StatusCodes.Status422UnprocessableEntity, "Streaming is not supported for legacy clients; upgrade letta-client").ConfigureAwait(false);
            return;
        }

        FakeAgent? agent;
        lock (gate)
        {
            agent = FindAgent(ctx);
        }

        if (agent is null)
        {
            await AgentNotFoundAsync(ctx).ConfigureAwait(false);
            return;
        }

        var handle = await ResolveModelAsync(ctx, agent, GetString(body!, "override_model")).ConfigureAwait(false);
        if (handle is null)
        {
            return;
        }

        string? refusal = null;
        bool fail;
        lock (gate)
        {
            fail = failNextSend;
            if (conflictsLeft > 0 || agent.Busy)
            {
                conflictsLeft = Math.Max(0, conflictsLeft - 1);
                refusal = $"Agent {agent.Id} is currently being processed by another request. Please wait for it to finish.";
            }
            else
            {
                agent.Busy = true;
                failNextSend = false;
            }
        }

        if (refusal is not null)
        {
            await WriteDetailAsync(ctx, StatusCodes.Status409Conflict, refusal).ConfigureAwait(false);
            return;
        }

        try
        {
            var output = streaming ? new Output(ctx) : new Output(null);
            if (streaming)
            {
                ctx.Response.StatusCode = 200;
                ctx.Response.ContentType = "text/event-stream";
                ctx.Response.Headers.CacheControl = "no-cache";
                await ctx.Response.StartAsync(ctx.RequestAborted).ConfigureAwait(false);
            }

            if (fail)
            {
                await FailMidStreamAsync(output, "Partial answer", "The fake was told to fail this send.").ConfigureAwait(false);
            }
            else
            {
                string system;
                lock (gate)
                {
                    system = SystemPrompt(agent); // the agent's own history: its system message follows its blocks
                }

                await RunStepsAsync(agent, agent.Messages, system, handle, userText, output, ctx.RequestAborted).ConfigureAwait(false);
            }

            if (!streaming)
            {
                await WriteJsonAsync(ctx, 200, output.ToResponse()).ConfigureAwait(false);
            }
        }
        finally
        {
            lock (gate)
            {
                agent.Busy = false;
            }
        }
    }

    /// <summary>The agent's loop on one history (the agent's own, or a conversation's): false when it ended in an error.</summary>
    private async Task<bool> RunStepsAsync(
        FakeAgent agent, List<FakeMessage> thread, string system, string handle, string userText, Output output, CancellationToken cancellationToken)
    {
        List<FakeMessage> history;
        lock (gate)
        {
            history = thread.ToList();
            thread.Add(new FakeMessage("user", userText));
            agent.RecallCount++;
        }

        var conversation = new JsonArray { new JsonObject { ["role"] = "system", ["content"] = system } };
        foreach (var message in history)
        {
            conversation.Add(new JsonObject { ["role"] = message.Role, ["content"] = message.Content });
        }

        conversation.Add(new JsonObject { ["role"] = "user", ["content"] = userText });
        int prompt = 0, completion = 0;
        for (var step = 1; step <= MaxSteps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested(); // upstream checks for a cancelled run at the start of every step
            var reply = await CallLlmAsync(handle, conversation, cancellationToken).ConfigureAwait(false);
            if (reply.Error is not null)
            {
                await FailMidStreamAsync(output, null, reply.Error).ConfigureAwait(false);
                return false;
            }

            prompt += reply.PromptTokens;
            completion += reply.CompletionTokens;
            if (step == 1)
            {
                await output.WriteAsync(Message("reasoning_message", NewId("message"), new JsonObject { ["reasoning"] = reply.Reasoning ?? "The user wrote; answer them." })).ConfigureAwait(false);
            }

            if (reply.ToolCalls.Count > 0)
            {
                conversation.Add(new JsonObject
                {
                    ["role"] = "assistant",
                    ["content"] = null,
                    ["tool_calls"] = new JsonArray(reply.ToolCalls.Select(call => (JsonNode)new JsonObject
                    {
                        ["id"] = call.Id,
                        ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = call.Arguments },
                    }).ToArray()),
                });
                foreach (var call in reply.ToolCalls)
                {
                    await output.WriteAsync(Message("tool_call_message", NewId("message"), new JsonObject
                    {
                        ["tool_call"] = new JsonObject { ["name"] = call.Name, ["arguments"] = call.Arguments, ["tool_call_id"] = call.Id },
                    })).ConfigureAwait(false);
                    var (ok, result) = RunTool(agent, call);
                    await output.WriteAsync(Message("tool_return_message", NewId("message"), new JsonObject
                    {
                        ["tool_return"] = result,
                        ["status"] = ok ? "success" : "error",
                        ["tool_call_id"] = call.Id,
                    })).ConfigureAwait(false);
                    conversation.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = call.Id, ["content"] = result });
                }

                continue;
            }

            var content = reply.Content ?? "";
            var id = NewId("message");
            foreach (var piece in Split(content))
            {
                await output.WriteAsync(Message("assistant_message", id, new JsonObject { ["content"] = piece })).ConfigureAwait(false);
            }

            lock (gate)
            {
                thread.Add(new FakeMessage("assistant", content));
                agent.RecallCount++;
            }

            await FinishAsync(output, "end_turn", prompt, completion, step).ConfigureAwait(false);
            return true;
        }

        await FinishAsync(output, "max_steps", prompt, completion, MaxSteps).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// The handle a send runs on: <paramref name="requested"/> (an override or the conversation's model), resolved as
    /// Letta resolves a BYOK handle, or the agent's own. Null once a 404 has been written for a handle that does not resolve.
    /// </summary>
    private async Task<string?> ResolveModelAsync(HttpContext ctx, FakeAgent agent, string? requested)
    {
        if (requested is null)
        {
            return agent.Model;
        }

        (FakeProvider Provider, string Model)? target;
        lock (gate)
        {
            target = ResolveHandle(requested);
        }

        if (target is { } resolved && await OffersModelAsync(resolved.Provider, resolved.Model, ctx.RequestAborted).ConfigureAwait(false))
        {
            return requested;
        }

        await WriteDetailAsync(ctx, StatusCodes.Status404NotFound, $"NOT_FOUND: Handle {requested} not found, must be one of []").ConfigureAwait(false);
        return null;
    }

    private async Task CreateConversationAsync(HttpContext ctx)
    {
        var agentId = ctx.Request.Query["agent_id"].ToString();
        if (agentId.Length == 0)
        {
            await WriteRequestValidationAsync(ctx, "missing", "query", "agent_id", "Field required").ConfigureAwait(false);
            return;
        }

        var (body, readable) = await ReadOptionalBodyAsync(ctx).ConfigureAwait(false);
        if (!readable)
        {
            await WriteRequestValidationAsync(ctx, "json_invalid", "body", null, "JSON decode error").ConfigureAwait(false);
            return;
        }

        var model = body is null ? null : GetString(body, "model");
        if (model is not null && !IsHandle(model))
        {
            await WriteDetailAsync(ctx, StatusCodes.Status400BadRequest, $"INVALID_ARGUMENT: Model handle '{model}' must be of the form provider/model-name").ConfigureAwait(false);
            return;
        }

        if (body?["isolated_block_labels"] is JsonArray { Count: > 0 })
        {
            await WriteDetailAsync(ctx, StatusCodes.Status400BadRequest, "INVALID_ARGUMENT: FakeLetta does not model isolated blocks").ConfigureAwait(false);
            return;
        }

        JsonObject? json = null;
        lock (gate)
        {
            if (agents.TryGetValue(agentId, out var agent))
            {
                var now = NextTimestamp();
                var conversation = new FakeConversation("conv-" + Guid.NewGuid(), agent.Id, body is null ? null : GetString(body, "summary"), model, SystemPrompt(agent), now);
                conversations[conversation.Id] = conversation;
                json = ConversationJson(conversation, withMessageIds: false);
            }
        }

        await (json is null
            ? WriteDetailAsync(ctx, StatusCodes.Status404NotFound, "Agent not found")
            : WriteJsonAsync(ctx, 200, json)).ConfigureAwait(false);
    }

    private Task ListConversationsAsync(HttpContext ctx)
    {
        var query = ctx.Request.Query;
        var agentId = query["agent_id"].ToString();
        var search = query["summary_search"].ToString();
        var after = query["after"].ToString();
        var ascending = query["order"].ToString() == "asc";
        var orderBy = query["order_by"].Count > 0 ? query["order_by"].ToString() : "created_at";
        var limit = int.TryParse(query["limit"], CultureInfo.InvariantCulture, out var n) ? n : 50;
        Func<FakeConversation, DateTimeOffset?> key = orderBy switch
        {
            "last_message_at" => c => c.LastMessageAt,
            "last_run_completion" => c => c.LastRunCompletedAt,
            _ => c => c.CreatedAt,
        };
        lock (gate)
        {
            IEnumerable<FakeConversation> live = conversations.Values.Where(c => !c.Deleted
                && (agentId.Length == 0 || c.AgentId == agentId)
                && (search.Length == 0 || c.Summary?.Contains(search, StringComparison.Ordinal) == true));
            if (after.Length > 0)
            {
                var cursor = conversations.GetValueOrDefault(after);
                if (cursor is null && orderBy != "last_run_completion")
                {
                    return ConversationNotFoundAsync(ctx, after);
                }

                if (cursor is not null)
                {
                    live = live.Where(c => orderBy == "created_at"
                        ? ascending ? c.CreatedAt > cursor.CreatedAt : c.CreatedAt < cursor.CreatedAt
                        : AfterNullableCursor(key(c), c.Id, key(cursor), cursor.Id, ascending));
                }
            }

            // Nullable sort keys go last either way; ties are broken by id in the same direction.
            var ordered = ascending
                ? live.OrderBy(c => key(c) is null).ThenBy(key).ThenBy(c => c.Id, StringComparer.Ordinal)
                : live.OrderBy(c => key(c) is null).ThenByDescending(key).ThenByDescending(c => c.Id, StringComparer.Ordinal);
            var page = ordered.Take(limit).Select(c => (JsonNode)ConversationJson(c, withMessageIds: false)).ToArray<JsonNode?>();
            return WriteJsonAsync(ctx, 200, new JsonArray(page));
        }
    }

    // Upstream's keyset predicate for last_message_at and last_run_completion (conversation_manager.py), quirks included.
    private static bool AfterNullableCursor(DateTimeOffset? value, string id, DateTimeOffset? cursor, string cursorId, bool ascending)
    {
        var idOrder = string.CompareOrdinal(id, cursorId);
        if (cursor is null)
        {
            return ascending ? value is not null || idOrder > 0 : value is null && idOrder < 0;
        }

        return ascending
            ? value is not null && (value > cursor || (value == cursor && idOrder > 0))
            : value is null || value < cursor || (value == cursor && idOrder < 0);
    }

    private Task GetConversationAsync(HttpContext ctx)
    {
        var id = Route(ctx, "conversationId");
        if (!ConversationIdPattern().IsMatch(id))
        {
            return WritePathValidationAsync(ctx);
        }

        lock (gate)
        {
            return FindConversation(id) is { } conversation
                ? WriteJsonAsync(ctx, 200, ConversationJson(conversation, withMessageIds: true))
                : ConversationNotFoundAsync(ctx, id);
        }
    }

    private async Task UpdateConversationAsync(HttpContext ctx)
    {
        var id = Route(ctx, "conversationId");
        if (!ConversationIdPattern().IsMatch(id))
        {
            await WritePathValidationAsync(ctx).ConfigureAwait(false);
            return;
        }

        var (body, readable) = await ReadOptionalBodyAsync(ctx).ConfigureAwait(false);
        if (!readable || body is null)
        {
            await WriteRequestValidationAsync(ctx, "missing", "body", null, "Field required").ConfigureAwait(false);
            return;
        }

        var model = GetString(body, "model");
        if (model is not null && !IsHandle(model))
        {
            await WriteDetailAsync(ctx, StatusCodes.Status400BadRequest, $"INVALID_ARGUMENT: Model handle '{model}' must be of the form provider/model-name").ConfigureAwait(false);
            return;
        }

        JsonObject? json = null;
        lock (gate)
        {
            if (FindConversation(id) is { } conversation)
            {
                // Null or absent means no change: a field cannot be cleared.
                conversation.Summary = GetString(body, "summary") ?? conversation.Summary;
                conversation.Model = model ?? conversation.Model;
                if (GetString(body, "last_message_at") is { } at && DateTimeOffset.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
                {
                    conversation.LastMessageAt = time;
                }

                conversation.UpdatedAt = NextTimestamp();
                json = ConversationJson(conversation, withMessageIds: false);
            }
        }

        await (json is null ? ConversationNotFoundAsync(ctx, id) : WriteJsonAsync(ctx, 200, json)).ConfigureAwait(false);
    }

    private Task DeleteConversationAsync(HttpContext ctx)
    {
        var id = Route(ctx, "conversationId");
        if (!ConversationIdPattern().IsMatch(id))
        {
            return WritePathValidationAsync(ctx);
        }

        lock (gate)
        {
            if (FindConversation(id) is not { } conversation)
            {
                return ConversationNotFoundAsync(ctx, id);
            }

            conversation.Deleted = true; // soft: a second delete, like every other call but listing its messages, is a 404
            return WriteRawAsync(ctx, 200, "null");
        }
    }

    private async Task SendToConversationAsync(HttpContext ctx)
    {
        var id = Route(ctx, "conversationId");
        if (await RefuseAgentDirectAsync(ctx, id).ConfigureAwait(false))
        {
            return;
        }

        var body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        if (body is null)
        {
            await WriteRequestValidationAsync(ctx, "json_invalid", "body", null, "JSON decode error").ConfigureAwait(false);
            return;
        }

        if (body["messages"] is JsonArray == body["input"] is not null)
        {
            await WriteRequestValidationAsync(ctx, "value_error", "body", null, "Value error, Either 'messages' or 'input' must be provided, but not both").ConfigureAwait(false);
            return;
        }

        if (body["messages"] is JsonArray { Count: 0 })
        {
            await WriteDetailAsync(ctx, StatusCodes.Status422UnprocessableEntity, "Messages must not be empty").ConfigureAwait(false);
            return;
        }

        var userText = body["input"] is { } input ? ContentText(input) : body["messages"] is JsonArray list && list[^1] is JsonObject last ? ContentText(last["content"]) : null;
        if (userText is null)
        {
            await WriteRequestValidationAsync(ctx, "value_error", "body", null, "Value error, the message has no text").ConfigureAwait(false);
            return;
        }

        var streaming = body["streaming"] is not JsonValue flag || flag.GetValueKind() != JsonValueKind.False;
        FakeConversation? conversation;
        FakeAgent? agent = null;
        lock (gate)
        {
            conversation = FindConversation(id);
            if (conversation is not null)
            {
                conversation.LastMessageAt = NextTimestamp(); // bumped before the lock is tried, so a refused send bumps it too
                agent = agents.GetValueOrDefault(conversation.AgentId);
            }
        }

        if (conversation is null || agent is null)
        {
            await ConversationNotFoundAsync(ctx, id).ConfigureAwait(false);
            return;
        }

        var handle = await ResolveModelAsync(ctx, agent, GetString(body, "override_model") ?? conversation.Model).ConfigureAwait(false);
        if (handle is null)
        {
            return;
        }

        if (!streaming)
        {
            // Upstream takes no lock for a non-streaming send and tracks no run with the conversation.
            var json = new Output(null, null);
            await RunStepsAsync(agent, conversation.Messages, conversation.SystemPrompt, handle, userText, json, ctx.RequestAborted).ConfigureAwait(false);
            await WriteJsonAsync(ctx, 200, json.ToResponse()).ConfigureAwait(false);
            return;
        }

        FakeRun? run = null;
        string? holder = null;
        bool fail;
        lock (gate)
        {
            fail = failNextSend;
            if (conflictsLeft > 0 || conversation.ActiveRun is not null)
            {
                conflictsLeft = Math.Max(0, conflictsLeft - 1);
                holder = conversation.ActiveRun?.Id;
            }
            else
            {
                failNextSend = false;
                run = new FakeRun(NewId("run"), agent.Id, conversation.Id);
                runs.Add(run);
                conversation.ActiveRun = run;
            }
        }

        if (run is null)
        {
            await WriteJsonAsync(ctx, StatusCodes.Status409Conflict, BusyDetail(holder)).ConfigureAwait(false);
            return;
        }

        var ok = false;
        var output = new Output(ctx, run.Id);
        try
        {
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "text/event-stream; charset=utf-8";
            await ctx.Response.StartAsync(ctx.RequestAborted).ConfigureAwait(false);
            await output.WriteAsync(Message("ping", NewId("ping"), new JsonObject())).ConfigureAwait(false);
            if (fail)
            {
                await FailMidStreamAsync(output, "Partial answer", "The fake was told to fail this send.").ConfigureAwait(false);
            }
            else
            {
                // The run's own token, not the request's: a client that goes away does not stop the run.
                ok = await RunStepsAsync(agent, conversation.Messages, conversation.SystemPrompt, handle, userText, output, run.Cancellation.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (run.Cancellation.IsCancellationRequested)
        {
            // A foreground cancel: the stop reason as Python's json.dumps spaces it, then the stream just closes.
            await output.WriteRawAsync("""data: {"message_type": "stop_reason", "stop_reason": "cancelled"}""" + "\n\n").ConfigureAwait(false);
        }
        finally
        {
            lock (gate)
            {
                if (run.Status == "running")
                {
                    run.Status = ok ? "completed" : "failed";
                }

                Release(conversation, run);
            }
        }
    }

    private async Task CancelConversationAsync(HttpContext ctx)
    {
        var id = Route(ctx, "conversationId");
        if (await RefuseAgentDirectAsync(ctx, id).ConfigureAwait(false))
        {
            return;
        }

        FakeRun? run = null;
        bool found;
        lock (gate)
        {
            var conversation = FindConversation(id);
            found = conversation is not null;
            if (conversation?.ActiveRun is { } active)
            {
                // The run turns terminal here, which is what lets go of the conversation's lock upstream.
                run = active;
                run.Status = "cancelled";
                Release(conversation, run);
            }
        }

        if (!found)
        {
            await ConversationNotFoundAsync(ctx, id).ConfigureAwait(false);
            return;
        }

        if (run is null)
        {
            await WriteDetailAsync(ctx, StatusCodes.Status409Conflict, $"CONFLICT: No active runs to cancel for conversation {id}").ConfigureAwait(false);
            return;
        }

        await run.Cancellation.CancelAsync().ConfigureAwait(false);
        await WriteJsonAsync(ctx, 200, new JsonObject { [run.Id] = "cancelled" }).ConfigureAwait(false);
    }

    private async Task RecompileConversationAsync(HttpContext ctx)
    {
        var id = Route(ctx, "conversationId");
        if (await RefuseAgentDirectAsync(ctx, id).ConfigureAwait(false))
        {
            return;
        }

        var dryRun = string.Equals(ctx.Request.Query["dry_run"], "true", StringComparison.OrdinalIgnoreCase);
        string? compiled = null;
        lock (gate)
        {
            if (FindConversation(id) is { } conversation && agents.TryGetValue(conversation.AgentId, out var agent))
            {
                compiled = SystemPrompt(agent);
                if (!dryRun)
                {
                    conversation.SystemPrompt = compiled;
                }
            }
        }

        await (compiled is null ? ConversationNotFoundAsync(ctx, id) : WriteJsonAsync(ctx, 200, JsonValue.Create(compiled))).ConfigureAwait(false);
    }

    // Every route but get/update/delete also takes "default" and a deprecated agent id (agent-direct mode), which the fake does not serve.
    private static async Task<bool> RefuseAgentDirectAsync(HttpContext ctx, string id)
    {
        if (ConversationIdPattern().IsMatch(id))
        {
            return false;
        }

        if (id == "default" || (id.StartsWith("agent-", StringComparison.Ordinal) && id.Length <= 42))
        {
            await WriteDetailAsync(ctx, StatusCodes.Status501NotImplemented, "FakeLetta does not serve agent-direct mode under /v1/conversations; use /v1/agents/{agent_id}/messages").ConfigureAwait(false);
        }
        else
        {
            await WritePathValidationAsync(ctx).ConfigureAwait(false);
        }

        return true;
    }

    private void Release(FakeConversation conversation, FakeRun run)
    {
        if (conversation.ActiveRun == run)
        {
            conversation.ActiveRun = null;
            conversation.LastRunCompletedAt = NextTimestamp();
        }
    }

    private FakeConversation? FindConversation(string id) =>
        conversations.TryGetValue(id, out var conversation) && !conversation.Deleted ? conversation : null;

    // ConversationBusyError: run_id (in the text and as a key) only when the lock holder's run is known.
    private static JsonObject BusyDetail(string? runId) => runId is null
        ? Detail("CONFLICT: Cannot send a new message: Another request is currently being processed for this conversation. Please wait for the current request to complete.")
        : new JsonObject
        {
            ["detail"] = $"CONFLICT: Cannot send a new message: Another request (run_id={runId}) is currently being processed for this conversation. Please wait for it to complete.",
            ["run_id"] = runId,
        };

    private static bool IsHandle(string model)
    {
        var slash = model.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 && slash < model.Length - 1;
    }

    private async Task<LlmReply> CallLlmAsync(string handle, JsonArray conversation, CancellationToken cancellationToken)
    {
        (FakeProvider Provider, string Model)? resolved;
        lock (gate)
        {
            resolved = ResolveHandle(handle);
        }

        if (resolved is not { } target)
        {
            return LlmReply.Failed($"Handle {handle} no longer resolves to a provider");
        }

        var (provider, model) = target;

        var url = new Uri(provider.BaseUrl.TrimEnd('/') + "/chat/completions");
        var payload = new JsonObject
        {
            ["model"] = model,
            ["messages"] = conversation.DeepClone(),
            ["tools"] = new JsonArray(MemoryToolJson()),
            ["tool_choice"] = "auto",
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, url)
        {
            Content = new StringContent(payload.ToJsonString(Indentless), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", provider.ApiKey);
        int status;
        string text;
        try
        {
            using var response = await llm.SendAsync(request, cancellationToken).ConfigureAwait(false);
            status = (int)response.StatusCode;
            text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            lock (gate)
            {
                llmCalls.Add(new LlmCall(url, provider.ApiKey, model, 0));
            }

            return LlmReply.Failed($"Connection error calling the LLM: {ex.Message}");
        }

        lock (gate)
        {
            llmCalls.Add(new LlmCall(url, provider.ApiKey, model, status));
        }

        if (status is < 200 or >= 300)
        {
            return LlmReply.Failed($"LLM API returned {status}");
        }

        try
        {
            var json = JsonNode.Parse(text) as JsonObject;
            var message = json?["choices"]?[0]?["message"] as JsonObject;
            var usage = json?["usage"] as JsonObject;
            var calls = (message?["tool_calls"] as JsonArray ?? [])
                .OfType<JsonObject>()
                .Select(call => new LlmToolCall(
                    GetString(call, "id") ?? NewId("call"),
                    call["function"]?["name"]?.GetValue<string>() ?? "",
                    call["function"]?["arguments"]?.GetValue<string>() ?? "{}"))
                .ToList();
            return new LlmReply(
                message is null ? null : GetString(message, "content"),
                message is null ? null : GetString(message, "reasoning_content"),
                calls,
                usage is null ? 0 : GetInt(usage, "prompt_tokens") ?? 0,
                usage is null ? 0 : GetInt(usage, "completion_tokens") ?? 0,
                null);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return LlmReply.Failed("The LLM answered with a body Letta could not read");
        }
    }

    private (bool Ok, string Result) RunTool(FakeAgent agent, LlmToolCall call)
    {
        if (call.Name != "core_memory_append")
        {
            return (false, $"Error: tool {call.Name} is not attached to this agent");
        }

        try
        {
            var arguments = JsonNode.Parse(call.Arguments) as JsonObject;
            var label = arguments is null ? null : GetString(arguments, "label");
            var content = arguments is null ? null : GetString(arguments, "content");
            lock (gate)
            {
                var block = agent.Blocks.FirstOrDefault(b => b.Label == label);
                if (block is null || content is null)
                {
                    return (false, $"Error: no block labelled '{label}'");
                }

                var value = block.Value.Length == 0 ? content : block.Value + "\n" + content;
                if (PythonLength(value) > block.Limit)
                {
                    return (false, $"Edit failed: Exceeds {block.Limit} character limit (requested {PythonLength(value)})");
                }

                block.Value = value;
                return (true, "None");
            }
        }
        catch (JsonException)
        {
            return (false, "Error: the arguments are not JSON");
        }
    }

    private static async Task FailMidStreamAsync(Output output, string? partial, string message)
    {
        if (partial is not null)
        {
            await output.WriteAsync(Message("assistant_message", NewId("message"), new JsonObject { ["content"] = partial })).ConfigureAwait(false);
        }

        await output.WriteAsync(new JsonObject { ["message_type"] = "stop_reason", ["stop_reason"] = "llm_api_error" }).ConfigureAwait(false);
        await output.WriteEventAsync("error", new JsonObject
        {
            ["message_type"] = "error_message",
            ["run_id"] = NewId("run"),
            ["error_type"] = "llm_error",
            ["message"] = message,
            ["detail"] = message,
        }).ConfigureAwait(false);
    }

    private static async Task FinishAsync(Output output, string stopReason, int prompt, int completion, int steps)
    {
        await output.WriteAsync(new JsonObject { ["message_type"] = "stop_reason", ["stop_reason"] = stopReason }).ConfigureAwait(false);
        await output.WriteAsync(new JsonObject
        {
            ["message_type"] = "usage_statistics",
            ["completion_tokens"] = completion,
            ["prompt_tokens"] = prompt,
            ["total_tokens"] = prompt + completion,
            ["step_count"] = steps,
        }).ConfigureAwait(false);
        await output.WriteDoneAsync().ConfigureAwait(false);
    }

    private (FakeProvider Provider, string Model)? ResolveHandle(string handle)
    {
        var slash = handle.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == handle.Length - 1)
        {
            return null;
        }

        var name = handle[..slash];
        var provider = providers.Values.FirstOrDefault(p => p.Name == name);
        return provider is null ? null : (provider, handle[(slash + 1)..]);
    }

    private FakeAgent? FindAgent(HttpContext ctx) => agents.GetValueOrDefault(Route(ctx, "agentId"));

    private DateTimeOffset NextTimestamp()
    {
        var now = DateTimeOffset.UtcNow;
        lastTimestamp = now > lastTimestamp ? now : lastTimestamp.AddTicks(10);
        return lastTimestamp;
    }

    private static string SystemPrompt(FakeAgent agent) =>
        "You are a Letta agent with core memory.\n" + string.Join("\n", agent.Blocks.Select(b => $"<{b.Label}>\n{b.Value}\n</{b.Label}>"));

    private static JsonObject MemoryToolJson() => new()
    {
        ["type"] = "function",
        ["function"] = new JsonObject
        {
            ["name"] = "core_memory_append",
            ["description"] = "Append to the contents of core memory.",
            ["parameters"] = new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject
                {
                    ["label"] = new JsonObject { ["type"] = "string" },
                    ["content"] = new JsonObject { ["type"] = "string" },
                },
                ["required"] = new JsonArray("label", "content"),
            },
        },
    };

    private static IEnumerable<string> Split(string content)
    {
        if (content.Length < 3)
        {
            yield return content;
            yield break;
        }

        var size = (content.Length + 2) / 3;
        for (var start = 0; start < content.Length; start += size)
        {
            yield return content.Substring(start, Math.Min(size, content.Length - start));
        }
    }

    private static JsonObject Message(string type, string id, JsonObject fields)
    {
        var json = new JsonObject
        {
            ["id"] = id,
            ["date"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'+00:00'", CultureInfo.InvariantCulture),
            ["message_type"] = type,
        };
        foreach (var (name, value) in fields.ToList())
        {
            fields.Remove(name);
            json[name] = value;
        }

        return json;
    }

    private static string? ContentText(JsonNode? content) => content switch
    {
        JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
        JsonArray parts => string.Concat(parts.OfType<JsonObject>().Select(part => GetString(part, "text"))),
        _ => null,
    };

    private static JsonObject ProviderJson(FakeProvider provider) => new()
    {
        ["id"] = provider.Id,
        ["name"] = provider.Name,
        ["provider_type"] = provider.ProviderType,
        ["provider_category"] = "byok",
        ["base_url"] = provider.BaseUrl,
        ["updated_at"] = Iso(provider.CreatedAt),
    };

    private static JsonObject AgentJson(FakeAgent agent, bool includeBlocks) => new()
    {
        ["id"] = agent.Id,
        ["name"] = agent.Name,
        ["agent_type"] = "memgpt_v2_agent",
        ["model"] = agent.Model,
        ["embedding"] = agent.Embedding,
        ["tags"] = new JsonArray(agent.Tags.Select(tag => (JsonNode)tag).ToArray()),
        ["blocks"] = includeBlocks ? new JsonArray(agent.Blocks.Select(BlockJson).ToArray<JsonNode?>()) : new JsonArray(),
        ["created_at"] = Iso(agent.CreatedAt),
    };

    private static JsonObject BlockJson(FakeBlock block) => new()
    {
        ["id"] = block.Id,
        ["label"] = block.Label,
        ["value"] = block.Value,
        ["limit"] = block.Limit,
        ["description"] = block.Description,
        ["read_only"] = false,
        ["metadata"] = new JsonObject(),
    };

    private static JsonObject PassageJson(FakePassage passage, string agentId) => new()
    {
        ["id"] = passage.Id,
        ["text"] = passage.Text,
        ["tags"] = new JsonArray(passage.Tags.Select(tag => (JsonNode)tag).ToArray()),
        ["agent_id"] = agentId,
        ["created_at"] = Iso(passage.CreatedAt),
    };

    private static AgentState Snapshot(FakeAgent agent) => new(
        agent.Id,
        agent.Name,
        agent.Model,
        agent.Embedding,
        agent.Tags.ToArray(),
        agent.IncludeBaseTools,
        agent.Blocks.Select(b => new Block(b.Label, b.Value, b.Limit, b.Description)).ToArray(),
        agent.Passages.Select(p => new Passage(p.Id, p.Text, p.Tags.ToArray(), p.CreatedAt)).ToArray(),
        agent.Messages.Select(m => (m.Role, m.Content)).ToArray());

    private static ConversationState Snapshot(FakeConversation conversation) => new(
        conversation.Id,
        conversation.AgentId,
        conversation.Summary,
        conversation.Model,
        conversation.SystemPrompt,
        conversation.Messages.Select(m => (m.Role, m.Content)).ToArray(),
        conversation.Deleted);

    private static JsonObject ConversationJson(FakeConversation conversation, bool withMessageIds) => new()
    {
        ["created_by_id"] = DefaultActor,
        ["last_updated_by_id"] = DefaultActor,
        ["created_at"] = OrmTime(conversation.CreatedAt),
        ["updated_at"] = OrmTime(conversation.UpdatedAt),
        ["id"] = conversation.Id,
        ["agent_id"] = conversation.AgentId,
        ["summary"] = conversation.Summary,
        // Only a get lists them, the system message first.
        ["in_context_message_ids"] = withMessageIds
            ? new JsonArray(conversation.Messages.Select(m => (JsonNode)m.Id).Prepend(conversation.SystemMessageId).ToArray())
            : new JsonArray(),
        ["isolated_block_ids"] = new JsonArray(),
        ["model"] = conversation.Model,
        ["model_settings"] = null,
        ["last_message_at"] = conversation.LastMessageAt is { } at ? OrmTime(at) : null,
    };

    // Python's len(): code points, not UTF-16 units.
    private static int PythonLength(string value) => value.EnumerateRunes().Count();

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid()}";

    private static string Iso(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'+00:00'", CultureInfo.InvariantCulture);

    // How the ORM's datetimes read: microseconds and a Z.
    private static string OrmTime(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static string Route(HttpContext ctx, string name) => ctx.Request.RouteValues[name]?.ToString() ?? "";

    private static JsonObject Detail(string detail) => new() { ["detail"] = detail };

    private static JsonObject LimitDetail(int limit, int requested) => Detail($"Edit failed: Exceeds {limit} character limit (requested {requested})");

    private static async Task<JsonObject?> ReadBodyAsync(HttpContext ctx)
    {
        try
        {
            return await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted).ConfigureAwait(false) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>An optional JSON body: (null, true) when there is none, (null, false) when it is not a JSON object.</summary>
    private static async Task<(JsonObject? Body, bool Readable)> ReadOptionalBodyAsync(HttpContext ctx)
    {
        using var reader = new StreamReader(ctx.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(ctx.RequestAborted).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(text) || text.Trim() == "null")
        {
            return (null, true);
        }

        try
        {
            return JsonNode.Parse(text) is JsonObject body ? (body, true) : (null, false);
        }
        catch (JsonException)
        {
            return (null, false);
        }
    }

    private static string? GetString(JsonObject body, string name) =>
        body[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static int? GetInt(JsonObject body, string name) =>
        body[name] is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<int>(out var number) ? number : null;

    private Task AgentNotFoundAsync(HttpContext ctx) =>
        WriteDetailAsync(ctx, StatusCodes.Status404NotFound, $"Agent with id '{Route(ctx, "agentId")}' not found");

    private static Task WriteLimitAsync(HttpContext ctx, int limit, int requested) =>
        WriteJsonAsync(ctx, StatusCodes.Status422UnprocessableEntity, LimitDetail(limit, requested));

    // FastAPI's validation error shape; "input" is left out so a test never finds a key echoed back.
    private static Task WriteValidationAsync(HttpContext ctx, string location, string message) =>
        WriteJsonAsync(ctx, StatusCodes.Status422UnprocessableEntity, new JsonObject
        {
            ["detail"] = new JsonArray(new JsonObject
            {
                ["type"] = "value_error",
                ["loc"] = new JsonArray(location.Split('.').Select(part => (JsonNode)part).ToArray()),
                ["msg"] = message,
            }),
        });

    // A RequestValidationError on the conversation routes: upstream's handler turns the errors into a Python-repr string.
    private static Task WriteRequestValidationAsync(HttpContext ctx, string type, string place, string? name, string message) =>
        WriteJsonAsync(ctx, StatusCodes.Status422UnprocessableEntity, new JsonObject
        {
            ["trace_id"] = "",
            ["detail"] = $"[{{'type': '{type}', 'loc': ('{place}'{(name is null ? "," : $", '{name}'")}), 'msg': '{message}', 'input': None}}]",
        });

    private static Task WritePathValidationAsync(HttpContext ctx) =>
        WriteRequestValidationAsync(ctx, "string_pattern_mismatch", "path", "conversation_id", "String should match pattern '^conv-[a-fA-F0-9]{8}'");

    private static Task ConversationNotFoundAsync(HttpContext ctx, string id) =>
        WriteDetailAsync(ctx, StatusCodes.Status404NotFound, $"Conversation not found with id='['{id}']', is_deleted=False");

    private static Task WriteDetailAsync(HttpContext ctx, int status, string detail) => WriteJsonAsync(ctx, status, Detail(detail));

    private static Task WriteJsonAsync(HttpContext ctx, int status, JsonNode body) => WriteRawAsync(ctx, status, body.ToJsonString(Indentless));

    private static Task WriteRawAsync(HttpContext ctx, int status, string body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(body, ctx.RequestAborted);
    }

    [GeneratedRegex(@"^\s*bearer\s+(\S+)\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex BearerPattern();

    // validators.py: the prefix and a version-4 uuid.
    [GeneratedRegex("^conv-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")]
    private static partial Regex ConversationIdPattern();

    public sealed record Request(string Method, string Path, string Query, string? UserAgent, string? Authorization);

    /// <summary>A provider as stored; <paramref name="ApiKey"/> is what the fake presents to the LLM endpoint.</summary>
    public sealed record Provider(string Id, string Name, string ProviderType, string ApiKey, string BaseUrl);

    public sealed record AgentState(
        string Id,
        string Name,
        string Model,
        string Embedding,
        IReadOnlyList<string> Tags,
        bool IncludeBaseTools,
        IReadOnlyList<Block> Blocks,
        IReadOnlyList<Passage> Passages,
        IReadOnlyList<(string Role, string Content)> Messages);

    public sealed record Block(string Label, string Value, int Limit, string? Description);

    /// <summary>A conversation as stored: its compiled system message and its own history; memory is its agent's.</summary>
    public sealed record ConversationState(
        string Id,
        string AgentId,
        string? Summary,
        string? Model,
        string SystemPrompt,
        IReadOnlyList<(string Role, string Content)> Messages,
        bool Deleted);

    /// <summary>A streaming send's run: <c>running</c>, then <c>completed</c>, <c>failed</c> or <c>cancelled</c>.</summary>
    public sealed record Run(string Id, string AgentId, string? ConversationId, string Status);

    public sealed record Passage(string Id, string Text, IReadOnlyList<string> Tags, DateTimeOffset CreatedAt);

    /// <summary>One chat-completion call; <paramref name="Status"/> is 0 when the endpoint could not be reached.</summary>
    public sealed record LlmCall(Uri Url, string? ApiKey, string Model, int Status);

    private sealed record LlmToolCall(string Id, string Name, string Arguments);

    private sealed record LlmReply(string? Content, string? Reasoning, IReadOnlyList<LlmToolCall> ToolCalls, int PromptTokens, int CompletionTokens, string? Error)
    {
        public static LlmReply Failed(string error) => new(null, null, [], 0, 0, error);
    }

    /// <summary>
    /// Where a send's messages go: the SSE body as they happen, or a list for the non-streaming JSON answer. A
    /// conversation's run (<paramref name="runId"/>) stamps its id on every message and writes on into nothing once its
    /// client has gone away, as upstream's run goes on.
    /// </summary>
    private sealed class Output(HttpContext? stream, string? runId = null)
    {
        private readonly List<JsonObject> messages = [];
        private JsonObject? stopReason;
        private JsonObject? usage;
        private bool gone;

        public async Task WriteAsync(JsonObject message)
        {
            if (runId is not null && message.ContainsKey("id"))
            {
                message["run_id"] = runId;
            }

            if (stream is not null)
            {
                await WriteRawAsync($"data: {message.ToJsonString(Indentless)}\n\n").ConfigureAwait(false);
                return;
            }

            switch (GetString(message, "message_type"))
            {
                case "stop_reason":
                    stopReason = message;
                    break;
                case "usage_statistics":
                    usage = message;
                    break;
                default:
                    messages.Add(message);
                    break;
            }
        }

        public Task WriteEventAsync(string name, JsonObject data) => WriteRawAsync($"event: {name}\ndata: {data.ToJsonString(Indentless)}\n\n");

        public Task WriteDoneAsync() => WriteRawAsync("data: [DONE]\n\n");

        /// <summary>Frames exactly as given, flushed; nothing without a stream.</summary>
        public async Task WriteRawAsync(string frames)
        {
            if (stream is null || gone)
            {
                return;
            }

            try
            {
                await stream.Response.WriteAsync(frames, stream.RequestAborted).ConfigureAwait(false);
                await stream.Response.Body.FlushAsync(stream.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception ex) when (runId is not null && (ex is IOException || stream.RequestAborted.IsCancellationRequested))
            {
                gone = true;
            }
        }

        // Without streaming, chunks of one message are one message.
        public JsonObject ToResponse() => new()
        {
            ["messages"] = new JsonArray(messages
                .GroupBy(m => GetString(m, "id"))
                .Select(group => (JsonNode)Merge(group.ToList()))
                .ToArray()),
            ["stop_reason"] = stopReason?.DeepClone(),
            ["usage"] = usage?.DeepClone(),
        };

        private static JsonObject Merge(List<JsonObject> chunks)
        {
            var first = (JsonObject)chunks[0].DeepClone();
            if (GetString(first, "message_type") == "assistant_message")
            {
                first["content"] = string.Concat(chunks.Select(chunk => GetString(chunk, "content")));
            }

            return first;
        }
    }

    private sealed class FakeProvider(string id, string name, string providerType, string apiKey, string baseUrl, DateTimeOffset createdAt)
    {
        public string Id { get; } = id;
        public string Name { get; } = name;
        public string ProviderType { get; } = providerType;
        public string ApiKey { get; } = apiKey;
        public string BaseUrl { get; } = baseUrl;
        public DateTimeOffset CreatedAt { get; } = createdAt;
    }

    private sealed class FakeAgent(string id, string name, string model, string embedding, List<string> tags, bool includeBaseTools, List<FakeBlock> blocks, DateTimeOffset createdAt)
    {
        public string Id { get; } = id;
        public string Name { get; } = name;
        public string Model { get; } = model;
        public string Embedding { get; } = embedding;
        public List<string> Tags { get; } = tags;
        public bool IncludeBaseTools { get; } = includeBaseTools;
        public List<FakeBlock> Blocks { get; } = blocks;
        public List<FakePassage> Passages { get; } = [];
        public List<FakeMessage> Messages { get; } = [];
        public DateTimeOffset CreatedAt { get; } = createdAt;
        public int RecallCount { get; set; }
        public bool Busy { get; set; }
    }

    private sealed class FakeBlock(string id, string label, string value, int limit, string? description)
    {
        public string Id { get; } = id;
        public string Label { get; } = label;
        public string Value { get; set; } = value;
        public int Limit { get; set; } = limit;
        public string? Description { get; set; } = description;
    }

    private sealed record FakePassage(string Id, string Text, List<string> Tags, DateTimeOffset CreatedAt);

    private sealed record FakeMessage(string Role, string Content)
    {
        public string Id { get; } = NewId("message");
    }

    private sealed class FakeConversation(string id, string agentId, string? summary, string? model, string systemPrompt, DateTimeOffset createdAt)
    {
        public string Id { get; } = id;
        public string AgentId { get; } = agentId;
        public string? Summary { get; set; } = summary;
        public string? Model { get; set; } = model;

        /// <summary>Compiled when the conversation is made, and again only by <c>/recompile</c>.</summary>
        public string SystemPrompt { get; set; } = systemPrompt;

        public string SystemMessageId { get; } = NewId("message");
        public List<FakeMessage> Messages { get; } = [];
        public DateTimeOffset CreatedAt { get; } = createdAt;
        public DateTimeOffset UpdatedAt { get; set; } = createdAt;
        public DateTimeOffset? LastMessageAt { get; set; }
        public DateTimeOffset? LastRunCompletedAt { get; set; }
        public bool Deleted { get; set; }

        /// <summary>The run holding the conversation's lock.</summary>
        public FakeRun? ActiveRun { get; set; }
    }

    private sealed class FakeRun(string id, string agentId, string conversationId)
    {
        public string Id { get; } = id;
        public string AgentId { get; } = agentId;
        public string ConversationId { get; } = conversationId;
        public string Status { get; set; } = "running";
        public CancellationTokenSource Cancellation { get; } = new();
    }
}
