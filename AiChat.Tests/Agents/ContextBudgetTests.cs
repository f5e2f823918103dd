using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace AiChat.Tests.Agents;

/// <summary>
/// The context budget (<c>Llm:ContextBudgetTokens</c>) through the public HTTP API, on SQLite and Postgres: a long
/// conversation sends a bounded prompt on every turn, its older turns are folded into the summary, and a fact said far
/// back, out of the context and the summary, is still found by the offline model's conversation_search.
/// </summary>
[Trait("Category", "Agents")]
public sealed class ContextBudgetTests(PostgresServer postgres)
{
    private const int Budget = 2_000;
    private const int MaxOutput = 256;
    private const string Fact = "4417-ZULU";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AFactFarBackOutOfTheContextIsStillFoundByConversationSearch(StoreProvider provider)
    {
        await using var api = new ApiFactory().WithSetting("Llm:ContextBudgetTokens", $"{Budget}").WithSetting("Llm:MaxOutputTokens", $"{MaxOutput}")
            .WithSetting("Chat:RateLimits:MessagesPerMinute", "100");
        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await Conversations.CreateIdAsync(client, pair.AccessToken, "trip");
        // Past the 60 characters of a message that the offline summary keeps: the fact can only come from the transcript.
        var told = await Conversations.AnswerAsync(client, pair.AccessToken, conversation,
            $"Some background before we plan the week away at the cabin by the lake: the gate code of the cabin is {Fact}.");
        var factSeq = await SeqOfAsync(api, told.GetProperty("user_message").GetProperty("id").GetGuid());

        var prompts = new List<int>();
        for (var i = 1; i <= 30; i++)
        {
            var filler = await Conversations.AnswerAsync(client, pair.AccessToken, conversation,
                $"Day {i}: I read forty pages of a long novel about sailors, storms, harbours and the lighthouse keepers of the northern coast.");
            prompts.Add(filler.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        }

        // Every one-step turn's prompt stayed within the budget less the reply's room, however long the conversation grew.
        Assert.All(prompts, tokens => Assert.InRange(tokens, 1, Budget - MaxOutput));
        var (summary, through) = await SummaryAsync(api, conversation);
        Assert.True(through >= factSeq, $"the summary covers messages up to seq {through}; the fact is at {factSeq}, so it is out of the context");
        Assert.DoesNotContain(Fact, summary);

        var found = await Conversations.AnswerAsync(client, pair.AccessToken, conversation, "What did I say about the gate code?");

        Assert.Contains(Fact, found.GetProperty("assistant_message").GetProperty("content").GetString());
        var status = await ConversationTests.GetJsonAsync(client, pair.AccessToken, "/api/v1/agent/status");
        Assert.InRange(status.GetProperty("context").GetProperty("tokens").GetInt32(), 1, Budget - MaxOutput);
    }

    [Fact]
    public async Task ABudgetBelowTheMinimumStopsTheApiAtStart()
    {
        await using var api = new ApiFactory().WithSetting("Llm:ContextBudgetTokens", "1999");

        var error = Assert.Throws<OptionsValidationException>(() => api.CreateClient());

        Assert.Equal(["Llm:ContextBudgetTokens must be at least 2,000."], error.Failures);
    }

    private static async Task<long> SeqOfAsync(ApiFactory api, Guid messageId)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        return await connection.ExecuteScalarAsync<long>("SELECT seq FROM messages WHERE id = @messageId", new { messageId });
    }

    private static async Task<(string Summary, long Through)> SummaryAsync(ApiFactory api, Guid conversationId)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        return await connection.QuerySingleAsync<(string, long)>(
            "SELECT COALESCE(summary, ''), summary_through_seq FROM conversations WHERE id = @conversationId", new { conversationId });
    }
}
