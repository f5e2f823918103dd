using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AiChat.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiChat.Tests.Api;

/// <summary>
/// Every error the API returns is an RFC 9457 problem with a stable code, and none shows internals. On one store: the
/// pipeline is exercised with test endpoints that read and write nothing.
/// </summary>
public sealed class ApiPipelineTests : IAsyncLifetime
{
    private readonly ApiFactory _factory = new ApiFactory().WithEndpoints(endpoints =>
    {
        endpoints.MapPost("/api/v1/test/echo", (EchoRequest request) => TypedResults.Ok(new EchoResponse(request.DisplayName, request.DisplayName.Length)));
        endpoints.MapGet("/api/v1/test/boom", IResult () => throw new InvalidOperationException("secret connection string Password=hunter2 at line 42"));
    });

    private HttpClient _client = null!;

    public ValueTask InitializeAsync()
    {
        _client = _factory.CreateClient();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => _factory.DisposeAsync();

    [Fact]
    public async Task HealthReportsEveryCheckAsJson()
    {
        var response = await _client.GetAsync("/health", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal("Healthy", json.RootElement.GetProperty("status").GetString());
        Assert.Equal("Healthy", json.RootElement.GetProperty("checks").GetProperty("store").GetProperty("status").GetString());
    }

    [Fact]
    public async Task AliveAnswersWithoutTouchingDependencies()
    {
        var response = await _client.GetAsync("/alive", TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("store", body);
    }

    [Fact]
    public async Task JsonIsSnakeCaseBothWays()
    {
        var response = await _client.PostAsync("/api/v1/test/echo", Json("""{"display_name":"Ana"}"""), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("""{"display_name":"Ana","length":3}""", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task UnknownRouteIsANotFoundProblem()
    {
        var response = await _client.GetAsync("/api/v1/nothing-here", TestContext.Current.CancellationToken);
        await AssertProblemAsync(response, HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task MalformedJsonIsABadRequestProblem()
    {
        var response = await _client.PostAsync("/api/v1/test/echo", Json("""{"display_name": "Ana" """), TestContext.Current.CancellationToken);
        await AssertProblemAsync(response, HttpStatusCode.BadRequest, "malformed_json");
    }

    [Fact]
    public async Task JsonOfTheWrongShapeIsABadRequestProblem()
    {
        var response = await _client.PostAsync("/api/v1/test/echo", Json("""{"display_name": 42}"""), TestContext.Current.CancellationToken);
        await AssertProblemAsync(response, HttpStatusCode.BadRequest, "malformed_json");
    }

    [Fact]
    public async Task ABodyThatIsNotJsonIsAnUnsupportedMediaTypeProblem()
    {
        var response = await _client.PostAsync("/api/v1/test/echo", new StringContent("display_name=Ana", Encoding.UTF8, "application/x-www-form-urlencoded"), TestContext.Current.CancellationToken);
        await AssertProblemAsync(response, HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
    }

    [Fact]
    public async Task WrongMethodIsAMethodNotAllowedProblem()
    {
        var response = await _client.DeleteAsync("/api/v1/test/echo", TestContext.Current.CancellationToken);
        await AssertProblemAsync(response, HttpStatusCode.MethodNotAllowed, "method_not_allowed");
    }

    [Fact]
    public async Task AnUnhandledErrorIsAProblemWithoutInternals()
    {
        var response = await _client.GetAsync("/api/v1/test/boom", TestContext.Current.CancellationToken);

        var body = await AssertProblemAsync(response, HttpStatusCode.InternalServerError, "internal_error");
        Assert.DoesNotContain("hunter2", body);
        Assert.DoesNotContain("InvalidOperationException", body);
        Assert.DoesNotContain(" at ", body);
    }

    [Fact]
    public async Task OpenApiDocumentIsPublished()
    {
        var document = await _client.GetFromJsonAsync<JsonElement>("/openapi/v1.json", TestContext.Current.CancellationToken);
        Assert.StartsWith("3.", document.GetProperty("openapi").GetString());
    }

    internal static async Task<string> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(body);
        Assert.Equal((int)status, json.RootElement.GetProperty("status").GetInt32());
        Assert.Equal(code, json.RootElement.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(json.RootElement.GetProperty("title").GetString()));
        return body;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private sealed record EchoRequest(string DisplayName);

    private sealed record EchoResponse(string DisplayName, int Length);
}
