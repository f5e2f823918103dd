using System.Threading.Channels;
using AiChat.Api.Agents;
using AiChat.Api.Llm;
using AiChat.Tests.Agents;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace AiChat.Tests.Llm;

/// <summary>
/// The offline model's pace (<c>Llm:Offline:WordDelay</c>): the pauses it asks of the clock, read from a clock the test
/// holds (no timing is measured), that a cancelled call stops in the middle of a pause, and where the pipeline adds it.
/// </summary>
[Trait("Category", "Llm")]
public sealed class OfflinePacingTests
{
    private static readonly TimeSpan WordDelay = TimeSpan.FromMilliseconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EveryWordAfterTheFirstWaitsTheWordDelayOnce()
    {
        var clock = new TestTimers(hold: false);
        var paced = new OfflinePacingChatClient(new OfflineChatClient(new TokenCounter()), WordDelay, clock);

        var words = await WordsAsync(paced.GetStreamingResponseAsync(Ask("как меня зовут?"), new ChatOptions(), Ct));

        Assert.Equal(["[офлайн-модель] ", "Вас ", "зовут ", "Анна. ", "Это ", "есть ", "в ", "моей ", "памяти."], words);
        Assert.Equal(Enumerable.Repeat(WordDelay, words.Count - 1), clock.Requested);
    }

    [Fact]
    public async Task ANonStreamingCallAndAToolCallAreNotPaced()
    {
        var clock = new TestTimers(hold: true);
        var paced = new OfflinePacingChatClient(new OfflineChatClient(new TokenCounter()), WordDelay, clock);

        var answer = await paced.GetResponseAsync(Ask("как меня зовут?"), new ChatOptions(), Ct);
        var tools = new ChatOptions { Tools = [AIFunctionFactory.Create(() => "", MemoryToolNames.Append), AIFunctionFactory.Create(() => "", MemoryToolNames.Replace)] };
        var call = await paced.GetStreamingResponseAsync(Ask("меня зовут Анна"), tools, Ct).ToChatResponseAsync(Ct);

        Assert.Equal("[офлайн-модель] Вас зовут Анна. Это есть в моей памяти.", answer.Text);
        Assert.Single(call.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Empty(clock.Requested);
    }

    [Fact]
    public async Task CancellingTheCallEndsItDuringAPauseWithoutWaitingItOut()
    {
        var clock = new TestTimers(hold: true);
        var paced = new OfflinePacingChatClient(new OfflineChatClient(new TokenCounter()), WordDelay, clock);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var stream = paced.GetStreamingResponseAsync(Ask("как меня зовут?"), new ChatOptions(), cancellation.Token).GetAsyncEnumerator(cancellation.Token);
        Assert.True(await stream.MoveNextAsync());
        Assert.Equal("[офлайн-модель] ", stream.Current.Text);

        var second = stream.MoveNextAsync().AsTask();
        Assert.Equal(WordDelay, await clock.Requests.ReadAsync(Ct));
        Assert.False(second.IsCompleted);
        await cancellation.CancelAsync();

        // The held timer never fires: only the cancellation can end the pause.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second);
        Assert.Single(clock.Requested);
    }

    [Fact]
    public async Task ThePipelinePacesTheOfflineModelWhenAWordDelayIsSetAndNothingElse()
    {
        await using var paced = new ApiFactory().WithSetting("Llm:Offline:WordDelay", "00:00:00.030");
        await using var unpaced = new ApiFactory();
        await using var other = new ApiFactory().WithSetting("Llm:Offline:WordDelay", "00:00:00.030")
            .WithServices(services => services.UseModel(new ScriptedChatClient((_, _, _) => ScriptedStep.Say("hello"))));

        Assert.Equal(WordDelay, paced.Services.GetRequiredService<IChatClient>().GetService<OfflinePacingChatClient>()?.WordDelay);
        Assert.Null(unpaced.Services.GetRequiredService<IChatClient>().GetService<OfflinePacingChatClient>());
        Assert.Null(other.Services.GetRequiredService<IChatClient>().GetService<OfflinePacingChatClient>());
    }

    [Theory]
    [InlineData("-00:00:00.001")]
    [InlineData("00:00:01.001")]
    public async Task AWordDelayOutsideZeroToOneSecondStopsTheApiAtStartWithTheReason(string delay)
    {
        await using var api = new ApiFactory().WithSetting("Llm:Offline:WordDelay", delay);

        var error = Assert.Throws<OptionsValidationException>(() => api.CreateClient());

        Assert.Equal(["Llm:Offline:WordDelay must be between 00:00:00 and 00:00:01."], error.Failures);
    }

    private static List<ChatMessage> Ask(string said) =>
    [
        new(ChatRole.System, ContextAssembler.SystemPrompt([new MemoryBlock("human", "Имя: Анна", 2000, null, DateTimeOffset.UnixEpoch)], summary: null)),
        new(ChatRole.User, said),
    ];

    private static async Task<List<string>> WordsAsync(IAsyncEnumerable<ChatResponseUpdate> updates)
    {
        var words = new List<string>();
        await foreach (var update in updates)
        {
            words.AddRange(update.Contents.OfType<TextContent>().Select(text => text.Text).Where(text => text.Length > 0));
        }

        return words;
    }

    /// <summary>A clock that records every timer asked of it; its timers fire at once, or when held, never (only a cancellation ends their wait).</summary>
    private sealed class TestTimers(bool hold) : TimeProvider
    {
        private readonly Channel<TimeSpan> _requests = Channel.CreateUnbounded<TimeSpan>();
        private readonly List<TimeSpan> _requested = [];

        public IReadOnlyList<TimeSpan> Requested
        {
            get
            {
                lock (_requested)
                {
                    return [.. _requested];
                }
            }
        }

        /// <summary>Each timer's due time as it is asked for: a test waits on this instead of on the clock.</summary>
        public ChannelReader<TimeSpan> Requests => _requests.Reader;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            lock (_requested)
            {
                _requested.Add(dueTime);
            }

            _requests.Writer.TryWrite(dueTime);
            if (!hold)
            {
                ThreadPool.QueueUserWorkItem(_ => callback(state));
            }

            return new NeverTimer();
        }

        private sealed class NeverTimer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
