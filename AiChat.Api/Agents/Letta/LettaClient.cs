using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Polly;

namespace AiChat.Api.Agents.Letta;

/// <summary>
/// Letta's V1 REST API (see <c>contracts/letta.md</c> and <c>contracts/letta-conversations.md</c>): providers, agents,
/// core and archival memory, context, reset, conversations and the streamed send. Retries a 409 "busy" answer before
/// any body was read, and 5xx on reads; never a send whose stream has started.
/// </summary>
public sealed partial class LettaClient
{
    /// <summary>The name of Letta's circuit breaker (<c>Resilience:letta</c>, the <c>letta-circuit</c> health check).</summary>
    public const string Circuit = "letta";

    /// <summary>The only User-Agent Letta treats as a current client; any other containing "/" gets legacy behaviour.</summary>
    public const string UserAgent = "letta-client/1.0.0";

    private const int MaxTransientRetries = 2;
    private const int MaxDetailLength = 300;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly HttpClient http;
    private readonly LettaOptions options;
    private readonly ILogger<LettaClient> logger;

    public LettaClient(HttpClient http, IOptions<LettaOptions> options, ILogger<LettaClient> logger)
    {
        this.http = http;
        this.options = options.Value;
        this.logger = logger;
        http.BaseAddress ??= WithTrailingSlash(this.options.BaseUrl);
    }

    public async Task<bool> IsHealthyAsync(CancellationToken cancellationToken)
    {
        try
        {
            var reply = await CallAsync(HttpMethod.Get, "v1/health/", null, cancellationToken);
            return reply.Ok;
        }
        catch (AgentRuntimeUnavailableException)
        {
            return false;
        }
    }

    /// <summary>The id of the provider with exactly this name, or null.</summary>
    public async Task<string?> FindProviderAsync(string name, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Get, $"v1/providers/?name={Uri.EscapeDataString(name)}", null, cancellationToken);
        var providers = Read<List<ProviderBody>>(reply, "list providers");
        return providers.FirstOrDefault(provider => provider.Name == name)?.Id;
    }

    /// <summary>An OpenAI-compatible provider: Letta calls <paramref name="baseUrl"/> with <paramref name="apiKey"/> for its models.</summary>
    public async Task<string> CreateProviderAsync(string name, string apiKey, string baseUrl, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Post, "v1/providers/", new ProviderCreateBody(name, "openai", apiKey, baseUrl), cancellationToken);
        return Read<ProviderBody>(reply, "create a provider").Id;
    }

    /// <summary>False when the provider does not exist.</summary>
    public async Task<bool> DeleteProviderAsync(string providerId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Delete, $"v1/providers/{Escape(providerId)}", null, cancellationToken);
        return reply.Status == HttpStatusCode.NotFound ? false : Succeeded(reply, "delete a provider");
    }

    /// <summary>Creates the agent and returns Letta's id for it.</summary>
    public async Task<string> CreateAgentAsync(LettaAgentSpec spec, CancellationToken cancellationToken)
    {
        var body = new AgentCreateBody(
            spec.Name,
            spec.Model,
            spec.Embedding,
            spec.Blocks.Select(block => new BlockCreateBody(block.Label, block.Value, block.Limit, block.Description)).ToList(),
            spec.Tags,
            IncludeBaseTools: true);
        var reply = await CallAsync(HttpMethod.Post, "v1/agents/", body, cancellationToken);
        return Read<AgentBody>(reply, "create an agent").Id;
    }

    /// <summary>False when the agent does not exist.</summary>
    public async Task<bool> DeleteAgentAsync(string agentId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Delete, $"v1/agents/{Escape(agentId)}", null, cancellationToken);
        return reply.Status == HttpStatusCode.NotFound ? false : Succeeded(reply, "delete an agent");
    }

    public async Task<IReadOnlyList<MemoryBlock>> GetBlocksAsync(string agentId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Get, $"v1/agents/{Escape(agentId)}/core-memory/blocks", null, cancellationToken);
        return Read<List<BlockBody>>(reply, "list the memory blocks").Select(block => block.ToBlock()).ToList();
    }

    /// <summary>Sets a block's value (and its limit when given); over the limit is <see cref="MemoryLimitExceededException"/>.</summary>
    public async Task<MemoryBlock> UpdateBlockAsync(string agentId, string label, string value, int? limit, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(
            HttpMethod.Patch,
            $"v1/agents/{Escape(agentId)}/core-memory/blocks/{Escape(label)}",
            new BlockUpdateBody(value, limit),
            cancellationToken);
        if (reply.Status == HttpStatusCode.UnprocessableContent && LimitPattern().Match(Detail(reply.Body)) is { Success: true } match)
        {
            throw new MemoryLimitExceededException(
                label,
                int.Parse(match.Groups["limit"].Value, CultureInfo.InvariantCulture),
                int.Parse(match.Groups["requested"].Value, CultureInfo.InvariantCulture));
        }

        if (reply.Status == HttpStatusCode.NotFound && Detail(reply.Body).Contains("block", StringComparison.OrdinalIgnoreCase))
        {
            throw new UnknownBlockException(label);
        }

        return Read<BlockBody>(reply, "update a memory block").ToBlock();
    }

    public async Task<ArchivalPassage> InsertPassageAsync(string agentId, string text, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Post, $"v1/agents/{Escape(agentId)}/archival-memory", new PassageCreateBody(text, []), cancellationToken);
        var passages = Read<List<PassageBody>>(reply, "insert into archival memory");
        return passages.Count > 0
            ? passages[0].ToPassage()
            : throw new AgentRuntimeUnavailableException("Letta inserted no archival passage.");
    }

    /// <summary>Archival passages, filtered by text when <paramref name="search"/> is given.</summary>
    public async Task<IReadOnlyList<ArchivalPassage>> ListPassagesAsync(string agentId, string? search, int limit, bool newestFirst, CancellationToken cancellationToken)
    {
        var query = new StringBuilder($"v1/agents/{Escape(agentId)}/archival-memory?limit={limit.ToString(CultureInfo.InvariantCulture)}");
        query.Append(newestFirst ? "&ascending=false" : "&ascending=true");
        if (!string.IsNullOrWhiteSpace(search))
        {
            query.Append("&search=").Append(Uri.EscapeDataString(search));
        }

        var reply = await CallAsync(HttpMethod.Get, query.ToString(), null, cancellationToken);
        return Read<List<PassageBody>>(reply, "list archival memory").Select(passage => passage.ToPassage()).ToList();
    }

    /// <summary>The passages closest in meaning to <paramref name="query"/> (Letta's embedding search).</summary>
    public async Task<IReadOnlyList<ArchivalPassage>> SearchPassagesAsync(string agentId, string query, int topK, CancellationToken cancellationToken)
    {
        var path = $"v1/agents/{Escape(agentId)}/archival-memory/search?query={Uri.EscapeDataString(query)}&top_k={topK.ToString(CultureInfo.InvariantCulture)}";
        var reply = await CallAsync(HttpMethod.Get, path, null, cancellationToken);
        return Read<SearchBody>(reply, "search archival memory").Results?.Select(passage => passage.ToPassage()).ToList() ?? [];
    }

    /// <summary>False when the agent has no such passage.</summary>
    public async Task<bool> DeletePassageAsync(string agentId, string passageId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Delete, $"v1/agents/{Escape(agentId)}/archival-memory/{Escape(passageId)}", null, cancellationToken);
        return reply.Status == HttpStatusCode.NotFound ? false : Succeeded(reply, "delete an archival passage");
    }

    public async Task<LettaContext> GetContextAsync(string agentId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Get, $"v1/agents/{Escape(agentId)}/context", null, cancellationToken);
        var context = Read<ContextBody>(reply, "read the context window");
        return new LettaContext(
            context.ContextWindowSizeCurrent ?? 0,
            context.ContextWindowSizeMax ?? 0,
            context.NumMessages ?? 0,
            context.NumArchivalMemory ?? 0);
    }

    /// <summary>Clears the messages in context; blocks and archival memory stay.</summary>
    public async Task ResetMessagesAsync(string agentId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Patch, $"v1/agents/{Escape(agentId)}/reset-messages", new ResetBody(AddDefaultInitialMessages: false), cancellationToken);
        Succeeded(reply, "reset the messages");
    }

    /// <summary>
    /// A new conversation of the agent (contracts/letta-conversations.md): its own history and context window, the
    /// agent's memory. <paramref name="model"/> is a model handle (<c>provider/model</c>), or null for the agent's model.
    /// </summary>
    public async Task<string> CreateConversationAsync(string agentId, string? model, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Post, $"v1/conversations/?agent_id={Escape(agentId)}", new ConversationCreateBody(model), cancellationToken);
        return Read<ConversationBody>(reply, "create a conversation").Id;
    }

    /// <summary>False when the conversation does not exist (or was deleted before).</summary>
    public async Task<bool> DeleteConversationAsync(string conversationId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Delete, $"v1/conversations/{Escape(conversationId)}", null, cancellationToken);
        return reply.Status == HttpStatusCode.NotFound ? false : Succeeded(reply, "delete a conversation");
    }

    /// <summary>Compiles the conversation's system message again from the agent's memory as it is now.</summary>
    public async Task RecompileConversationAsync(string conversationId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Post, $"v1/conversations/{Escape(conversationId)}/recompile", null, cancellationToken);
        Succeeded(reply, "recompile a conversation");
    }

    /// <summary>Cancels the conversation's running requests; false when none was running (409) or there is no such conversation.</summary>
    public async Task<bool> CancelConversationAsync(string conversationId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Post, $"v1/conversations/{Escape(conversationId)}/cancel", null, cancellationToken);
        return reply.Status is HttpStatusCode.Conflict or HttpStatusCode.NotFound ? false : Succeeded(reply, "cancel a conversation's run");
    }

    /// <summary>
    /// Sends the user's message to the agent's default (agent-direct) conversation with token streaming and returns
    /// Letta's <c>text/event-stream</c> body, which the caller disposes. <paramref name="model"/> is a model handle that
    /// overrides the agent's for this request, or null. Refusals before the stream starts throw
    /// <see cref="AgentRuntimeUnavailableException"/>.
    /// </summary>
    public Task<Stream> SendMessageStreamAsync(string agentId, string text, string? model, CancellationToken cancellationToken) =>
        StreamAsync($"v1/agents/{Escape(agentId)}/messages", text, model, cancellationToken);

    /// <summary>As <see cref="SendMessageStreamAsync"/>, to one of the agent's conversations.</summary>
    public Task<Stream> SendConversationMessageStreamAsync(string conversationId, string text, string? model, CancellationToken cancellationToken) =>
        StreamAsync($"v1/conversations/{Escape(conversationId)}/messages", text, model, cancellationToken);

    private async Task<Stream> StreamAsync(string path, string text, string? model, CancellationToken cancellationToken)
    {
        var body = new SendBody([new SendMessageBody("user", text)], Streaming: true, StreamTokens: true, IncludePings: true, OverrideModel: model);
        try
        {
            var response = await SendWithRetriesAsync(HttpMethod.Post, path, body, cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                try
                {
                    return await response.Content.ReadAsStreamAsync(cancellationToken);
                }
                catch
                {
                    response.Dispose();
                    throw;
                }
            }

            using (response)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(options.RequestTimeout);
                var reply = await ReadReplyAsync(response, path, timeout.Token, cancellationToken);
                throw Refused(reply, "send a message");
            }
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AgentRuntimeUnavailableException("Letta did not start the reply in time.", ex);
        }
    }

    private async Task<Reply> CallAsync(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RequestTimeout);
        try
        {
            using var response = await SendWithRetriesAsync(method, path, body, timeout.Token);
            return await ReadReplyAsync(response, path, timeout.Token, cancellationToken);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AgentRuntimeUnavailableException($"Letta did not answer within {options.RequestTimeout.TotalSeconds:0} s.", ex);
        }
    }

    private static async Task<Reply> ReadReplyAsync(HttpResponseMessage response, string path, CancellationToken timeout, CancellationToken cancellationToken)
    {
        try
        {
            return new Reply(response.StatusCode, await response.Content.ReadAsStringAsync(timeout));
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            throw new AgentRuntimeUnavailableException($"The connection to Letta broke while reading {PathOnly(path)}.", ex);
        }
    }

    // Answers with a status are returned; a 409 "busy" is retried for every method (nothing was done), 5xx and network errors only for reads.
    private async Task<HttpResponseMessage> SendWithRetriesAsync(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        var conflicts = 0;
        var transient = 0;
        while (true)
        {
            using var request = CreateRequest(method, path, body);
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            }
            catch (HttpRequestException ex) when (method == HttpMethod.Get && transient < MaxTransientRetries)
            {
                transient++;
                LogRetryingRead(logger, method.Method, PathOnly(path), ex.HttpRequestError.ToString(), transient);
                await Task.Delay(Backoff(transient), cancellationToken);
                continue;
            }
            catch (Exception ex) when (ex is HttpRequestException or ExecutionRejectedException)
            {
                throw new AgentRuntimeUnavailableException("Letta could not be reached.", ex);
            }

            if (response.StatusCode == HttpStatusCode.Conflict && conflicts < options.MaxConflictRetries && await IsBusyAsync(response, cancellationToken))
            {
                response.Dispose();
                conflicts++;
                LogRetryingBusyAgent(logger, method.Method, PathOnly(path), conflicts, options.MaxConflictRetries);
                await Task.Delay(Backoff(conflicts), cancellationToken);
                continue;
            }

            if ((int)response.StatusCode >= 500 && method == HttpMethod.Get && transient < MaxTransientRetries)
            {
                response.Dispose();
                transient++;
                LogRetryingRead(logger, method.Method, PathOnly(path), ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture), transient);
                await Task.Delay(Backoff(transient), cancellationToken);
                continue;
            }

            return response;
        }
    }

    private HttpRequestMessage CreateRequest(HttpMethod method, string path, object? body)
    {
        var request = new HttpRequestMessage(method, path);
        // Set on the request so that no default header of the HttpClient can put another User-Agent in its place.
        request.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
        if (!string.IsNullOrEmpty(options.Password))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Password);
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: Json);
        }

        return request;
    }

    private static async Task<bool> IsBusyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            return Detail(text).Contains("currently being processed", StringComparison.OrdinalIgnoreCase);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            return false;
        }
    }

    private TimeSpan Backoff(int attempt) => options.RetryDelay * Math.Pow(2, attempt - 1);

    private static T Read<T>(Reply reply, string what)
    {
        if (!reply.Ok)
        {
            throw Refused(reply, what);
        }

        try
        {
            return JsonSerializer.Deserialize<T>(reply.Body, Json) ?? throw new JsonException("null");
        }
        catch (JsonException ex)
        {
            throw new AgentRuntimeUnavailableException($"Letta answered the request to {what} with a body AiChat could not read.", ex);
        }
    }

    private static bool Succeeded(Reply reply, string what) => reply.Ok ? true : throw Refused(reply, what);

    private static AgentRuntimeUnavailableException Refused(Reply reply, string what)
    {
        var detail = Detail(reply.Body);
        return new AgentRuntimeUnavailableException(
            $"Letta refused to {what}: {(int)reply.Status} {reply.Status}{(detail.Length > 0 ? $" ({detail})" : "")}.");
    }

    // FastAPI errors are {"detail": "..."} or {"detail": [{"loc": [...], "msg": "..."}]}; LLM errors {"error": {"message": "..."}}.
    // Only these fields are read: a validation error's "input" echoes the request, which may hold a key.
    private static string Detail(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return "";
            }

            var text = root.TryGetProperty("detail", out var detail) ? detail.ValueKind switch
            {
                JsonValueKind.String => detail.GetString(),
                JsonValueKind.Array => string.Join("; ", detail.EnumerateArray().Select(ValidationMessage)),
                _ => null,
            }
            : root.TryGetProperty("error", out var error) ? error.ValueKind switch
            {
                JsonValueKind.String => error.GetString(),
                JsonValueKind.Object when error.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String => message.GetString(),
                _ => null,
            }
            : null;
            return text is null ? "" : text.Length > MaxDetailLength ? text[..MaxDetailLength] + "…" : text;
        }
        catch (JsonException)
        {
            return "";
        }
    }

    private static string ValidationMessage(JsonElement item)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            return "";
        }

        var message = item.TryGetProperty("msg", out var msg) && msg.ValueKind == JsonValueKind.String ? msg.GetString() : "invalid";
        var location = item.TryGetProperty("loc", out var loc) && loc.ValueKind == JsonValueKind.Array
            ? string.Join('.', loc.EnumerateArray().Select(part => part.ToString()))
            : null;
        return location is null ? message ?? "" : $"{location}: {message}";
    }

    private static string Escape(string segment) => Uri.EscapeDataString(segment);

    private static string PathOnly(string path) => path.Split('?', 2)[0];

    private static Uri WithTrailingSlash(Uri uri) =>
        uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");

    // Letta writes UTC times, sometimes without an offset.
    private static DateTimeOffset ParseTime(string? value) =>
        DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time)
            ? time
            : DateTimeOffset.UtcNow;

    [GeneratedRegex(@"Exceeds (?<limit>\d+) character limit \(requested (?<requested>\d+)\)", RegexOptions.IgnoreCase)]
    private static partial Regex LimitPattern();

    [LoggerMessage(Level = LogLevel.Information, Message = "Letta is busy with another request for this agent or conversation ({Method} {Path}); retry {Attempt} of {MaxAttempts}")]
    private static partial void LogRetryingBusyAgent(ILogger logger, string method, string path, int attempt, int maxAttempts);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Letta failed a read ({Method} {Path}: {Reason}); retry {Attempt}")]
    private static partial void LogRetryingRead(ILogger logger, string method, string path, string reason, int attempt);

    private sealed record Reply(HttpStatusCode Status, string Body)
    {
        public bool Ok => (int)Status is >= 200 and < 300;
    }

    private sealed record ProviderCreateBody(string Name, string ProviderType, string ApiKey, string BaseUrl);

    private sealed record ProviderBody(string Id, string? Name);

    private sealed record AgentCreateBody(
        string Name,
        string Model,
        string Embedding,
        IReadOnlyList<BlockCreateBody> MemoryBlocks,
        IReadOnlyList<string> Tags,
        bool IncludeBaseTools);

    private sealed record BlockCreateBody(string Label, string Value, int Limit, string? Description);

    private sealed record AgentBody(string Id);

    private sealed record BlockUpdateBody(string Value, int? Limit);

    private sealed record BlockBody(string Label, string? Value, int? Limit, string? Description, string? UpdatedAt, string? CreatedAt)
    {
        public MemoryBlock ToBlock() => new(Label, Value ?? "", Limit ?? 0, Description, ParseTime(UpdatedAt ?? CreatedAt));
    }

    private sealed record PassageCreateBody(string Text, IReadOnlyList<string> Tags);

    // A listed passage carries text and created_at; a search result carries content and timestamp.
    private sealed record PassageBody(string Id, string? Text, string? Content, List<string>? Tags, string? CreatedAt, string? Timestamp)
    {
        public ArchivalPassage ToPassage() => new(Id, Text ?? Content ?? "", Tags ?? [], ParseTime(CreatedAt ?? Timestamp));
    }

    private sealed record SearchBody(int? Count, List<PassageBody>? Results);

    private sealed record ContextBody(int? ContextWindowSizeCurrent, int? ContextWindowSizeMax, int? NumMessages, int? NumArchivalMemory);

    private sealed record ResetBody(bool AddDefaultInitialMessages);

    private sealed record ConversationCreateBody(string? Model);

    private sealed record ConversationBody(string Id);

    private sealed record SendBody(IReadOnlyList<SendMessageBody> Messages, bool Streaming, bool StreamTokens, bool IncludePings, string? OverrideModel);

    private sealed record SendMessageBody(string Role, string Content);
}

/// <summary>A new Letta agent: its name, model and embedding handles, starting blocks and tags.</summary>
public sealed record LettaAgentSpec(string Name, string Model, string Embedding, IReadOnlyList<MemoryBlock> Blocks, IReadOnlyList<string> Tags);

/// <summary>An agent's context window as Letta reports it.</summary>
public sealed record LettaContext(int Tokens, int Window, int Messages, int ArchivalPassages);
