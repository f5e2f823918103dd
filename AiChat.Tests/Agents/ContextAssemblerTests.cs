using AiChat.Api.Agents;
using AiChat.Api.Llm;
using Microsoft.Extensions.AI;

namespace AiChat.Tests.Agents;

/// <summary>Context assembly: bounded by the window whatever the history, newest messages first, the summary in the prompt.</summary>
[Trait("Category", "Agents")]
public sealed class ContextAssemblerTests
{
    private static readonly TokenCounter Tokens = new();
    private static readonly IReadOnlyList<MemoryBlock> Blocks =
    [
        new("persona", "I am a helpful assistant.", 5000, null, DateTimeOffset.UtcNow),
        new("human", "Name: Ana\nLikes: tea", 5000, null, DateTimeOffset.UtcNow),
    ];

    [Theory]
    [InlineData(10, 2_000)]
    [InlineData(10, 128_000)]
    [InlineData(100_000, 2_000)]
    [InlineData(100_000, 8_000)]
    [InlineData(100_000, 128_000)]
    public async Task TheContextNeverExceedsTheWindow(int historyLength, int window)
    {
        var history = History(historyLength);
        var pages = 0;

        var context = await new ContextAssembler(Tokens).AssembleAsync(Blocks, "Earlier: Ana planned a trip to Lisbon.", "What should I pack?", window, 500,
            (before, limit) => { pages++; return Task.FromResult(Page(history, before, limit)); });

        var counted = Tokens.Count(context.Messages);
        Assert.Equal(counted, context.PromptTokens);
        Assert.True(counted + 500 + ContextAssembler.ToolReserve <= window, $"{counted} prompt tokens in a {window}-token window");
        Assert.Equal("What should I pack?", context.Messages[^1].Text);
        Assert.Equal(ChatRole.System, context.Messages[0].Role);
        Assert.Contains("Earlier: Ana planned a trip to Lisbon.", context.Messages[0].Text);
        Assert.Contains("Name: Ana", context.Messages[0].Text);
        Assert.True(context.IncludedHistory > 0);
        // Reading stops once the window is full: the cost does not grow with the history.
        Assert.True(pages <= window / 100 + 2, $"{pages} pages read");
        Assert.Equal(historyLength > context.IncludedHistory, context.HistoryTruncated);
    }

    [Fact]
    public async Task TheMostRecentMessagesAreKeptInOrder()
    {
        var history = History(1_000);

        var context = await new ContextAssembler(Tokens).AssembleAsync(Blocks, null, "next", 3_000, 500,
            (before, limit) => Task.FromResult(Page(history, before, limit)));

        var kept = context.Messages.Skip(1).SkipLast(1).Select(m => m.Text).ToList();
        var expected = history.TakeLast(kept.Count).Select(m => m.Content).ToList();
        Assert.Equal(expected, kept);
        Assert.Equal(history[^kept.Count].Seq, context.OldestIncludedSeq);
    }

    [Fact]
    public async Task AShortHistoryIsIncludedWhole()
    {
        var history = History(10);

        var context = await new ContextAssembler(Tokens).AssembleAsync(Blocks, null, "next", 128_000, 1_000,
            (before, limit) => Task.FromResult(Page(history, before, limit)));

        Assert.Equal(10, context.IncludedHistory);
        Assert.False(context.HistoryTruncated);
        Assert.Equal(12, context.Messages.Count);
    }

    [Fact]
    public async Task AnOversizedSummaryIsCutToFit()
    {
        var summary = string.Join(" ", Enumerable.Repeat("Ana told me about her garden and her cats.", 2_000));

        var context = await new ContextAssembler(Tokens).AssembleAsync(Blocks, summary, "hi", 4_000, 500,
            (_, _) => Task.FromResult<IReadOnlyList<TranscriptMessage>>([]));

        Assert.True(context.PromptTokens + 500 + ContextAssembler.ToolReserve <= 4_000);
        Assert.Contains("Ana told me about her garden", context.Messages[0].Text);
    }

    [Fact]
    public async Task StoredCountsAreReadInsteadOfTokenisingTheHistoryAgain()
    {
        // Counts as stored with each message: deliberately ten times the real count, so using them shows.
        var history = History(40).Select(m => m with { Tokens = Tokens.Count(m.Content) * 10 }).ToList();

        var context = await new ContextAssembler(Tokens).AssembleAsync(Blocks, null, "next", 128_000, 500,
            (before, limit) => Task.FromResult(Page(history, before, limit)));

        var system = Tokens.Count(context.Messages[0].Text) + TokenCounter.PerMessageOverhead;
        var current = Tokens.Count(context.Messages[^1]);
        Assert.Equal(system + current + history.Sum(m => m.Tokens!.Value + TokenCounter.PerMessageOverhead), context.PromptTokens);
        // The counts are remembered with the messages: counting the prompt again (as metering does) gives the same figure.
        Assert.Equal(context.PromptTokens, Tokens.Count(context.Messages));
    }

    [Fact]
    public async Task WhenTheHistoryDoesNotFitTheMessagesToKeepFillHalfTheRoomForHistory()
    {
        var history = History(1_000);

        var context = await new ContextAssembler(Tokens).AssembleAsync(Blocks, null, "next", 3_000, 500,
            (before, limit) => Task.FromResult(Page(history, before, limit)));

        Assert.True(context.HistoryTruncated);
        var room = 3_000 - 500 - ContextAssembler.ToolReserve - Tokens.Count(context.Messages[0]) - Tokens.Count(context.Messages[^1]);
        var kept = history.Where(m => m.Seq >= context.KeepFromSeq).Sum(m => Tokens.Count(m.Content) + TokenCounter.PerMessageOverhead);
        var next = history.Single(m => m.Seq == context.KeepFromSeq - 1);
        Assert.InRange(kept, 1, room / 2);
        // The next older message would not have fitted in the half: the kept run is as long as it can be.
        Assert.True(kept + Tokens.Count(next.Content) + TokenCounter.PerMessageOverhead > room / 2);
        Assert.True(context.KeepFromSeq > context.OldestIncludedSeq);
    }

    [Fact]
    public void TokensAreCountedWithTheRealTokenizer()
    {
        // o200k_base: "Hello, world!" is 4 tokens.
        Assert.Equal(4, Tokens.Count("Hello, world!"));
        Assert.Equal(0, Tokens.Count(""));
    }

    internal static List<TranscriptMessage> History(int count) =>
        Enumerable.Range(1, count)
            .Select(i => new TranscriptMessage(i, Guid.NewGuid(), i % 2 == 1 ? "user" : "assistant", $"Message {i}: " + (i % 7 == 0 ? "a somewhat longer message about the weather, books and travel plans" : "hello"), DateTimeOffset.UtcNow))
            .ToList();

    internal static IReadOnlyList<TranscriptMessage> Page(List<TranscriptMessage> history, long before, int limit)
    {
        // Newest first, strictly older than `before`: what the store's keyset query returns.
        var end = before == long.MaxValue ? history.Count : (int)before - 1;
        var start = Math.Max(0, end - limit);
        var page = history.GetRange(start, end - start);
        page.Reverse();
        return page;
    }
}
