extern alias gateway;

using gateway::AiChat.Gateway;

namespace AiChat.Tests.Gateway;

/// <summary>How the gateway reads a path before deciding it names <c>/internal</c>: the most generous way any server could.</summary>
public sealed class InternalRoutesTests
{
    [Theory]
    [InlineData("/internal")]
    [InlineData("/internal/")]
    [InlineData("/internal/llm/v1/chat/completions")]
    [InlineData("/INTERNAL/llm")]
    [InlineData("/%69nternal/llm")]
    [InlineData("/%2569nternal/llm")]
    [InlineData("/%252569nternal/llm")]
    [InlineData("/internal%2Fllm")]
    [InlineData("/api/../internal/llm")]
    [InlineData("/api/%2e%2e/internal/llm")]
    [InlineData("/api/..%2Finternal/llm")]
    [InlineData("/api\\..\\internal\\llm")]
    [InlineData("//internal/llm")]
    [InlineData("/./internal/llm")]
    [InlineData("/../../internal/llm")]
    public void EverySpellingOfInternalIsInternal(string path) => Assert.True(InternalRoutes.Names(path));

    [Theory]
    [InlineData("")]
    [InlineData("/")]
    [InlineData("/api/v1/chat/message")]
    [InlineData("/api/internal/llm")]
    [InlineData("/internals")]
    [InlineData("/internal-docs")]
    [InlineData("/api/v1/internal/../chat")]
    public void OtherPathsAreNot(string path) => Assert.False(InternalRoutes.Names(path));
}
