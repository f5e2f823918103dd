using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AiChat.Tests.Agents;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;

namespace AiChat.Tests.Fakes.SelfChecks;

/// <summary>Self-checks of FakeLetta's conversations against <c>contracts/letta-conversations.md</c>, over raw HTTP.</summary>
[Trait("Category", "FakeSelfCheck")]
public sealed class LettaConversationFakeSelfCheckTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheFakeCreatesAConversationOnlyForAKnownAgentNamedInTheQuery()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = Http(rig.Letta);

        using var missing = await http.PostAsJsonAsync("v1/conversations/", new { }, Ct);
        using var unknown = await http.PostAsync($"v1/conversations/?agent_id=agent-{Guid.NewGuid()}", null, Ct);
        using var badModel = await http.PostAsJsonAsync($"v1/conversations/?agent_id={agent.ExternalId}", new { model = "no-slash" }, Ct);
        using var created = await http.PostAsync($"v1/conversations/?agent_id={agent.ExternalId}", null, Ct);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, missing.StatusCode);
        Assert.Contains("'query', 'agent_id'", (await BodyAsync(missing)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal((HttpStatusCode.NotFound, "Agent not found"), (unknown.StatusCode, (await BodyAsync(unknown)).GetProperty("detail").GetString()));
        Assert.Equal(HttpStatusCode.BadRequest, badModel.StatusCode);
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var conversation = await BodyAsync(created);
        Assert.Equal(
            ["created_by_id", "last_updated_by_id", "created_at", "updated_at", "id", "agent_id", "summary", "in_context_message_ids",
                "isolated_block_ids", "model", "model_settings", "last_message_at"],
            conversation.EnumerateObject().Select(p => p.Name));
        Assert.Matches("^conv-[0-9a-f-]{36}$", conversation.GetProperty("id").GetString());
        Assert.Equal(agent.ExternalId, conversation.GetProperty("agent_id").GetString());
        Assert.Equal(0, conversation.GetProperty("in_context_message_ids").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, conversation.GetProperty("model").ValueKind);
        Assert.Single(rig.Letta.Conversations);
    }

    [Fact]
    public async Task TheFakeListsGetsAndPatchesConversationsAsTheContractSays()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = Http(rig.Letta);
        var billing = await CreateAsync(http, agent.ExternalId!, new { summary = "Billing thread" });
        var trip = await CreateAsync(http, agent.ExternalId!, new { summary = "Trip", model = $"aichat-{agent.UserId:N}/gpt-4o-mini" });

        var newestFirst = await BodyAsync(await http.GetAsync($"v1/conversations/?agent_id={agent.ExternalId}", Ct));
        var oldestFirst = await BodyAsync(await http.GetAsync($"v1/conversations?agent_id={agent.ExternalId}&order=asc&limit=1", Ct));
        var afterCursor = await BodyAsync(await http.GetAsync($"v1/conversations/?agent_id={agent.ExternalId}&after={trip}", Ct));
        var searched = await BodyAsync(await http.GetAsync($"v1/conversations/?summary_search=Bill", Ct));
        var fetched = await BodyAsync(await http.GetAsync($"v1/conversations/{billing}", Ct));
        using var patched = await http.PatchAsJsonAsync($"v1/conversations/{trip}", new { summary = "Lisbon trip", model = (string?)null }, Ct);
        using var byDefault = await http.GetAsync("v1/conversations/default", Ct);

        Assert.Equal([trip, billing], Ids(newestFirst));
        Assert.Equal([billing], Ids(oldestFirst));
        Assert.Equal([billing], Ids(afterCursor));
        Assert.Equal([billing], Ids(searched));
        Assert.Equal(1, fetched.GetProperty("in_context_message_ids").GetArrayLength()); // the compiled system message
        var updated = await BodyAsync(patched);
        Assert.Equal(("Lisbon trip", $"aichat-{agent.UserId:N}/gpt-4o-mini"), (updated.GetProperty("summary").GetString(), updated.GetProperty("model").GetString()));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, byDefault.StatusCode);
    }

    [Fact]
    public async Task TheFakeDeletesAConversationSoftlyAndASecondDeleteIsNotFound()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = Http(rig.Letta);
        var id = await CreateAsync(http, agent.ExternalId!, new { });

        using var deleted = await http.DeleteAsync($"v1/conversations/{id}", Ct);
        using var again = await http.DeleteAsync($"v1/conversations/{id}", Ct);
        using var get = await http.GetAsync($"v1/conversations/{id}", Ct);
        using var send = await SendAsync(http, id, "hello?");

        Assert.Equal((HttpStatusCode.OK, "null"), (deleted.StatusCode, await deleted.Content.ReadAsStringAsync(Ct)));
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, send.StatusCode);
        Assert.Equal(0, (await BodyAsync(await http.GetAsync("v1/conversations/", Ct))).GetArrayLength());
        Assert.True(rig.Letta.Conversation(id)!.Deleted);
    }

    [Fact]
    public async Task TheFakeStreamsAConversationsAnswerAfterAPingAndKeepsItsHistoryApartFromTheAgents()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = Http(rig.Letta);
        var id = await CreateAsync(http, agent.ExternalId!, new { });

        using var response = await SendAsync(http, id, "Hi there");
        var frames = await FramesAsync(response);

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var run = Assert.Single(rig.Letta.Runs);
        Assert.Equal(("ping", run.Id), (Type(frames[0]), RunId(frames[0])));
        Assert.Equal(["reasoning_message", "assistant_message"], frames.Skip(1).Select(Type).Where(t => t.EndsWith("_message", StringComparison.Ordinal)).Distinct());
        Assert.All(frames.Skip(1).Where(f => Type(f).EndsWith("_message", StringComparison.Ordinal)), f => Assert.Equal(run.Id, RunId(f)));
        Assert.Equal(["stop_reason", "usage_statistics", "[DONE]"], frames.TakeLast(3).Select(Type));
        Assert.Equal(new FakeLetta.Run(run.Id, agent.ExternalId!, id, "completed"), run);
        Assert.Equal([("user", "Hi there"), ("assistant", ChatCompletionsResponder.DefaultText)], rig.Letta.Conversation(id)!.Messages);
        Assert.Empty(rig.Letta.Agent(agent.ExternalId!)!.Messages);
    }

    [Fact]
    public async Task TheFakeRefusesASecondSendToABusyConversationAtOnceButAnotherConversationAnswersMeanwhile()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = Http(rig.Letta);
        var first = await CreateAsync(http, agent.ExternalId!, new { });
        var second = await CreateAsync(http, agent.ExternalId!, new { });
        rig.Llm.Hold();

        using var running = await SendAsync(http, first, "one");
        await ChatTests.WaitForAsync(() => Task.FromResult(rig.Llm.Waiting == 1 ? (object)true : null));
        using var refused = await SendAsync(http, first, "two");
        using var other = await SendAsync(http, second, "three");
        await ChatTests.WaitForAsync(() => Task.FromResult(rig.Llm.Waiting == 2 ? (object)true : null));
        rig.Llm.Release();

        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var busy = await BodyAsync(refused);
        var holder = rig.Letta.Runs[0].Id;
        Assert.Equal(
            $"CONFLICT: Cannot send a new message: Another request (run_id={holder}) is currently being processed for this conversation. Please wait for it to complete.",
            busy.GetProperty("detail").GetString());
        Assert.Equal(holder, busy.GetProperty("run_id").GetString());
        Assert.Equal("[DONE]", Type((await FramesAsync(running))[^1]));
        Assert.Equal("[DONE]", Type((await FramesAsync(other))[^1]));
        Assert.Equal(["completed", "completed"], rig.Letta.Runs.Select(r => r.Status));
        Assert.Equal(2, rig.Letta.Conversation(first)!.Messages.Count);
    }

    [Fact]
    public async Task TheFakesCancelStopsTheRunWithTheCancelledStopReasonAndIs409WhenNothingRuns()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = Http(rig.Letta);
        var id = await CreateAsync(http, agent.ExternalId!, new { });
        using var idle = await http.PostAsync($"v1/conversations/{id}/cancel", null, Ct);
        rig.Llm.Hold();

        using var running = await SendAsync(http, id, "a long one");
        await ChatTests.WaitForAsync(() => Task.FromResult(rig.Llm.Waiting == 1 ? (object)true : null));
        using var cancel = await http.PostAsync($"v1/conversations/{id}/cancel", null, Ct);
        var frames = await FramesAsync(running);

        Assert.Equal((HttpStatusCode.Conflict, $"CONFLICT: No active runs to cancel for conversation {id}"), (idle.StatusCode, (await BodyAsync(idle)).GetProperty("detail").GetString()));
        var run = Assert.Single(rig.Letta.Runs);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Equal("cancelled", (await BodyAsync(cancel)).GetProperty(run.Id).GetString());
        Assert.Equal("cancelled", run.Status);
        Assert.Equal("""{"message_type": "stop_reason", "stop_reason": "cancelled"}""", frames[^1]);
        rig.Llm.Release();
        using var next = await SendAsync(http, id, "a short one");
        Assert.Equal("[DONE]", Type((await FramesAsync(next))[^1]));
    }

    [Fact]
    public async Task TheFakesRunGoesOnWhenItsClientLeavesAndKeepsTheConversationBusy()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = Http(rig.Letta);
        var id = await CreateAsync(http, agent.ExternalId!, new { });
        rig.Llm.Hold();

        var left = await SendAsync(http, id, "I will not wait");
        await ChatTests.WaitForAsync(() => Task.FromResult(rig.Llm.Waiting == 1 ? (object)true : null));
        left.Dispose();
        using var refused = await SendAsync(http, id, "again");
        rig.Llm.Release();
        await ChatTests.WaitForAsync(() => Task.FromResult(rig.Letta.Runs[0].Status == "completed" ? (object)true : null));

        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Equal([("user", "I will not wait"), ("assistant", ChatCompletionsResponder.DefaultText)], rig.Letta.Conversation(id)!.Messages);
    }

    [Fact]
    public async Task TheFakeCompilesAConversationsSystemMessageWhenItIsMadeAndOnRecompileOnly()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = Http(rig.Letta);
        var id = await CreateAsync(http, agent.ExternalId!, new { });

        await rig.Client.UpdateBlockAsync(agent.ExternalId!, "human", "Name: Ana", null, Ct);
        var stale = rig.Letta.Conversation(id)!.SystemPrompt;
        using var dryRun = await http.PostAsync($"v1/conversations/{id}/recompile?dry_run=true", null, Ct);
        var afterDryRun = rig.Letta.Conversation(id)!.SystemPrompt;
        using var recompiled = await http.PostAsync($"v1/conversations/{id}/recompile", null, Ct);

        Assert.DoesNotContain("Name: Ana", stale, StringComparison.Ordinal);
        Assert.Contains("Name: Ana", (await BodyAsync(dryRun)).GetString(), StringComparison.Ordinal);
        Assert.Equal(stale, afterDryRun);
        Assert.Equal((await BodyAsync(recompiled)).GetString(), rig.Letta.Conversation(id)!.SystemPrompt);
        Assert.Contains("Name: Ana", rig.Letta.Conversation(id)!.SystemPrompt, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheFakeRefusesAModelHandleItsProviderDoesNotOfferAndAgentDirectModeUnderConversations()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = Http(rig.Letta);
        var id = await CreateAsync(http, agent.ExternalId!, new { model = $"aichat-{agent.UserId:N}/gpt-5-unlisted" });

        using var unresolved = await SendAsync(http, id, "hi");
        using var agentDirect = await SendAsync(http, "default", "hi");

        Assert.Equal(HttpStatusCode.NotFound, unresolved.StatusCode);
        Assert.Equal($"NOT_FOUND: Handle aichat-{agent.UserId:N}/gpt-5-unlisted not found, must be one of []", (await BodyAsync(unresolved)).GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.NotImplemented, agentDirect.StatusCode);
        Assert.Empty(rig.Letta.Runs);
    }

    internal static HttpClient Http(FakeLetta letta)
    {
        var http = new HttpClient { BaseAddress = letta.Url };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", letta.Password);
        return http;
    }

    private static async Task<string> CreateAsync(HttpClient http, string agentId, object body)
    {
        using var response = await http.PostAsJsonAsync($"v1/conversations/?agent_id={agentId}", body, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await BodyAsync(response)).GetProperty("id").GetString()!;
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient http, string conversationId, string text) =>
        http.SendAsync(
            new HttpRequestMessage(HttpMethod.Post, $"v1/conversations/{conversationId}/messages")
            {
                Content = new StringContent(
                    JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = text } }, streaming = true, stream_tokens = true }),
                    Encoding.UTF8,
                    "application/json"),
            },
            HttpCompletionOption.ResponseHeadersRead,
            Ct);

    private static async Task<JsonElement> BodyAsync(HttpResponseMessage response) => await response.Content.ReadFromJsonAsync<JsonElement>(Ct);

    // The data of every frame, to the end of the stream.
    private static async Task<List<string>> FramesAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        return text.Split('\n').Where(line => line.StartsWith("data: ", StringComparison.Ordinal)).Select(line => line[6..]).ToList();
    }

    private static string Type(string frame) =>
        frame == "[DONE]" ? frame : JsonDocument.Parse(frame).RootElement.GetProperty("message_type").GetString()!;

    private static string? RunId(string frame) =>
        JsonDocument.Parse(frame).RootElement.TryGetProperty("run_id", out var id) ? id.GetString() : null;

    private static List<string?> Ids(JsonElement list) => list.EnumerateArray().Select(c => c.GetProperty("id").GetString()).ToList();
}
