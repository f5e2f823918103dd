using AiChat.Api.Chat;
using Microsoft.Extensions.Configuration;

namespace AiChat.Tests.Chat;

/// <summary>The turn queue is sized from the machine unless configured.</summary>
[Trait("Category", "Chat")]
public sealed class ChatOptionsTests
{
    [Fact]
    public void WorkersAndQueueCapacityDefaultToMultiplesOfTheCoreCount()
    {
        var options = Bind([]);

        Assert.Equal(Environment.ProcessorCount * ChatOptions.WorkersPerCore, options.Workers);
        Assert.Equal(Environment.ProcessorCount * ChatOptions.WorkersPerCore * ChatOptions.QueuedPerWorker, options.QueueCapacity);
    }

    [Theory]
    [InlineData(1, 32, 128)]
    [InlineData(2, 64, 256)]
    [InlineData(16, 512, 2048)]
    [InlineData(0, 32, 128)]
    public void TheDefaultsScaleWithTheCores(int cores, int workers, int queue)
    {
        Assert.Equal(workers, ChatOptions.DefaultWorkers(cores));
        Assert.Equal(queue, ChatOptions.DefaultQueueCapacity(cores));
    }

    [Fact]
    public void ConfiguredWorkersAndQueueCapacityWin()
    {
        var options = Bind(new() { ["Chat:Workers"] = "3", ["Chat:QueueCapacity"] = "5" });

        Assert.Equal((3, 5), (options.Workers, options.QueueCapacity));
    }

    private static ChatOptions Bind(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection(ChatOptions.Section).Get<ChatOptions>() ?? new ChatOptions();
}
