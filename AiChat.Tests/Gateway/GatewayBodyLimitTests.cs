using System.Net;
using System.Text;
using System.Text.Json;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiChat.Tests.Gateway;

/// <summary>
/// The gateway's own request body limit (<c>Gateway:MaxRequestBodyBytes</c>, 1 MiB like the API's): a 3 MB body is
/// answered by the gateway with 413 <c>payload_too_large</c>, never 502, and never reaches the API's handler.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class GatewayBodyLimitTests : IAsyncLifetime
{
    private const int ThreeMegabytes = 3 * 1024 * 1024;
    private const string GatewayDetail = "A request body has at most 1048576 bytes.";

    private int _echoes;
    private RunningSystem _system = null!;

    public ValueTask InitializeAsync()
    {
        _system = RunningSystem.Start(new ApiFactory().WithEndpoints(endpoints =>
            endpoints.MapPost("/api/v1/test/echo", (JsonElement body) =>
            {
                Interlocked.Increment(ref _echoes);
                return TypedResults.Ok(body);
            })));
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await _system.DisposeAsync();

    [Fact]
    public async Task ABodyWhoseContentLengthIsOverTheLimitIsRefusedByTheGateway()
    {
        using var client = _system.GatewayClient();
        var body = new ByteArrayContent(JsonBody(ThreeMegabytes));
        body.Headers.ContentType = new("application/json");

        var response = await client.PostAsync("/api/v1/test/echo", body, TestContext.Current.CancellationToken);

        await AssertGatewayRefusedAsync(response);
    }

    [Fact]
    public async Task AChunkedBodyThatGrowsOverTheLimitIsRefusedByTheGateway()
    {
        using var client = _system.GatewayClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/test/echo") { Content = new ChunkedContent(JsonBody(ThreeMegabytes)) };
        request.Headers.TransferEncodingChunked = true;

        var response = await client.SendAsync(request, TestContext.Current.CancellationToken);

        await AssertGatewayRefusedAsync(response);
    }

    [Fact]
    public async Task ABodyUnderTheLimitStillGoesThrough()
    {
        using var client = _system.GatewayClient();
        var body = new ByteArrayContent(JsonBody(512 * 1024));
        body.Headers.ContentType = new("application/json");

        var response = await client.PostAsync("/api/v1/test/echo", body, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, Volatile.Read(ref _echoes));
    }

    private async Task AssertGatewayRefusedAsync(HttpResponseMessage response)
    {
        var body = await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "payload_too_large");
        using var problem = JsonDocument.Parse(body);
        Assert.Equal(GatewayDetail, problem.RootElement.GetProperty("detail").GetString());
        Assert.StartsWith("https://", problem.RootElement.GetProperty("type").GetString());
        Assert.Matches("^[0-9a-f]{32}$", problem.RootElement.GetProperty("trace_id").GetString());
        Assert.Equal(GatewayTests.ContentSecurityPolicy, Assert.Single(response.Headers.GetValues("Content-Security-Policy")));
        Assert.Equal(0, Volatile.Read(ref _echoes));
    }

    /// <summary>A JSON document of about <paramref name="size"/> bytes.</summary>
    private static byte[] JsonBody(int size) => Encoding.UTF8.GetBytes($$"""{"text":"{{new string('x', size - 12)}}"}""");

    /// <summary>A body of unknown length, sent in 64 KiB chunks as a client streaming an upload would.</summary>
    private sealed class ChunkedContent : HttpContent
    {
        private readonly byte[] _bytes;

        public ChunkedContent(byte[] bytes)
        {
            _bytes = bytes;
            Headers.ContentType = new("application/json");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            for (var offset = 0; offset < _bytes.Length; offset += 64 * 1024)
            {
                await stream.WriteAsync(_bytes.AsMemory(offset, Math.Min(64 * 1024, _bytes.Length - offset)));
                await stream.FlushAsync();
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
