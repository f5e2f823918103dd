using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Proof;

/// <summary>Who sends a request of the matrix.</summary>
public enum Caller { Anonymous, Owner, Admin }

/// <summary>
/// A malformed request: where it goes, as whom, with what body, and the exact problem it must get. The body is raw
/// bytes, so it can be anything a client could send (broken JSON, invalid UTF-8, a megabyte of text).
/// </summary>
public sealed record BadRequestCase(string Name, string Method, string Path, Caller Caller, HttpStatusCode Status, string Code, Func<HttpContent?>? Body = null, (string Name, string Value)? Header = null)
{
    public HttpRequestMessage Build(SeededApi api)
    {
        var request = new HttpRequestMessage(new HttpMethod(Method), api.Resolve(Path)) { Content = Body?.Invoke() };
        var token = Caller switch { Caller.Owner => api.Owner.AccessToken, Caller.Admin => api.Admin.AccessToken, _ => null };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        request.Headers.Accept.ParseAdd("application/json");
        if (Header is { } header)
        {
            request.Headers.TryAddWithoutValidation(header.Name, header.Value);
        }

        return request;
    }
}

/// <summary>
/// The bad-input matrix: malformed requests to every endpoint, on SQLite and Postgres (one seeded API per store). Every
/// one is answered with a 4xx problem document carrying the exact code, never a 5xx, and leaves every table as it was.
/// </summary>
[Trait("Category", "Proof")]
public sealed class BadInputMatrixTests(PostgresServer postgres, SeededApis apis) : IClassFixture<SeededApis>
{
    private const string Injection = "' OR 1=1; DROP TABLE users; --";

    private static readonly HttpStatusCode Bad = HttpStatusCode.BadRequest;
    private static readonly HttpStatusCode Invalid = HttpStatusCode.UnprocessableEntity;
    private static readonly HttpStatusCode Missing = HttpStatusCode.NotFound;

    public static readonly IReadOnlyList<BadRequestCase> All = BuildCases();

    public static TheoryData<StoreProvider, string> Cases() => TestStore.OnEachProvider(All.Select(@case => @case.Name));

    [Fact]
    public void TheMatrixHasAtLeastEightyDistinctCases()
    {
        Assert.True(All.Count >= 80, $"{All.Count} cases");
        Assert.Equal(All.Count, All.Select(c => c.Name).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AMalformedRequestIsAProblemAndChangesNothing(StoreProvider provider, string name)
    {
        var api = await apis.GetAsync(provider, postgres);
        var @case = All.Single(c => c.Name == name);
        var before = await api.SettledFingerprintAsync();

        using var request = @case.Build(api);
        using var response = await api.Client.SendAsync(request, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.True(@case.Status == response.StatusCode, $"{@case.Name}: expected {(int)@case.Status}, got {(int)response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(body);
        Assert.Equal((int)@case.Status, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Equal(@case.Code, problem.RootElement.GetProperty("code").GetString());
        SeededApi.AssertUnchanged(before, await api.FingerprintAsync());
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static StringContent JsonOf(object value) => Json(JsonSerializer.Serialize(value));

    private static ByteArrayContent Bytes(byte[] bytes, string mediaType = "application/json")
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return content;
    }

    // {"<field>":"ok<0xFF 0xFE>"}: not UTF-8.
    private static ByteArrayContent InvalidUtf8(string field) =>
        Bytes([.. Encoding.UTF8.GetBytes($"{{\"{field}\":\"ok"), 0xFF, 0xFE, .. Encoding.UTF8.GetBytes("\"}")]);

    private static StringContent Nested(string field, int depth) => Json($"{{\"{field}\":{new string('[', depth)}{new string(']', depth)}}}");

    private static StringContent Huge(string field, int chars) => Json($"{{\"{field}\":\"{new string('a', chars)}\"}}");

    private static List<BadRequestCase> BuildCases()
    {
        var cases = new List<BadRequestCase>();
        void Add(string name, string method, string path, Caller caller, HttpStatusCode status, string code, Func<HttpContent?>? body = null, (string, string)? header = null) =>
            cases.Add(new BadRequestCase(name, method, path, caller, status, code, body, header));

        string Email() => Accounts.NewEmail("bad");
        const string Password = "pw-long-enough-1";

        // Text rules: NUL, other C0 controls and lone surrogates in every text field of every body.
        var textFields = new (string Name, string Method, string Path, Caller Caller, Func<string, object> Body)[]
        {
            ("register email", "POST", "/api/v1/auth/register", Caller.Anonymous, t => new { email = "a" + t + "@example.com", password = Password }),
            ("register password", "POST", "/api/v1/auth/register", Caller.Anonymous, t => new { email = Email(), password = Password + t }),
            ("register name", "POST", "/api/v1/auth/register", Caller.Anonymous, t => new { email = Email(), password = Password, name = "Ana" + t }),
            ("login email", "POST", "/api/v1/auth/login", Caller.Anonymous, t => new { email = "a" + t + "@example.com", password = Password }),
            ("login password", "POST", "/api/v1/auth/login", Caller.Anonymous, t => new { email = Email(), password = Password + t }),
            ("refresh token", "POST", "/api/v1/auth/refresh", Caller.Anonymous, t => new { refresh_token = "token" + t }),
            ("profile name", "PATCH", "/api/v1/user/profile", Caller.Owner, t => new { name = "Ana" + t }),
            ("conversation title", "POST", "/api/v1/conversations", Caller.Owner, t => new { title = "Trip" + t }),
            ("conversation model", "POST", "/api/v1/conversations", Caller.Owner, t => new { model = "aichat-offline" + t }),
            ("conversation new title", "PATCH", "/api/v1/conversations/{conversation}", Caller.Owner, t => new { title = "Trip" + t }),
            ("message content", "POST", "/api/v1/conversations/{conversation}/messages", Caller.Owner, t => new { content = "hi" + t + "there" }),
            ("chat message content", "POST", "/api/v1/chat/message", Caller.Owner, t => new { content = "hi" + t + "there" }),
            ("memory label", "POST", "/api/v1/agent/memory", Caller.Owner, t => new { blocks = new[] { new { label = "human" + t, value = "Ana" } } }),
            ("memory value", "POST", "/api/v1/agent/memory", Caller.Owner, t => new { blocks = new[] { new { label = "human", value = "Ana" + t } } }),
            ("passage content", "POST", "/api/v1/agent/memory/archival", Caller.Owner, t => new { content = "cello" + t }),
            ("reset scope", "POST", "/api/v1/agent/reset", Caller.Owner, t => new { scope = "memory" + t }),
            ("grant duration", "PUT", "/api/v1/admin/users/{owner}/budget", Caller.Admin, t => new { max_budget_usd = 5, duration = "1w" + t }),
        };
        foreach (var (field, method, path, caller, body) in textFields)
        {
            Add($"NUL in {field}", method, path, caller, Bad, "invalid_text", () => JsonOf(body("\u0000")));
        }

        Add("BEL in message content", "POST", "/api/v1/conversations/{conversation}/messages", Caller.Owner, Bad, "invalid_text", () => JsonOf(new { content = "ding\u0007" }));
        Add("ESC in conversation title", "POST", "/api/v1/conversations", Caller.Owner, Bad, "invalid_text", () => JsonOf(new { title = "\u001b[31mred" }));
        Add("unit separator in profile name", "PATCH", "/api/v1/user/profile", Caller.Owner, Bad, "invalid_text", () => JsonOf(new { name = "A\u001fB" }));
        Add("vertical tab in passage", "POST", "/api/v1/agent/memory/archival", Caller.Owner, Bad, "invalid_text", () => Json("""{"content":"a\u000Bb"}"""));
        Add("lone surrogate in message", "POST", "/api/v1/chat/message", Caller.Owner, Bad, "malformed_json", () => Json("""{"content":"half \uD800 a pair"}"""));
        Add("lone low surrogate in memory value", "POST", "/api/v1/agent/memory", Caller.Owner, Bad, "malformed_json", () => Json("""{"blocks":[{"label":"human","value":"\uDC00"}]}"""));

        // Text rules in queries and paths.
        Add("NUL in search query", "GET", "/api/v1/search?query=a%00b", Caller.Owner, Bad, "invalid_text");
        Add("NUL in archival query", "GET", "/api/v1/agent/memory/archival?query=cello%00", Caller.Owner, Bad, "invalid_text");
        Add("NUL in change label filter", "GET", "/api/v1/agent/memory/changes?label=human%00", Caller.Owner, Bad, "invalid_text");
        Add("NUL in history cursor", "GET", "/api/v1/chat/history?before=%00", Caller.Owner, Bad, "invalid_text");
        Add("NUL in a query name", "GET", "/api/v1/conversations?a%00b=1", Caller.Owner, Bad, "invalid_text");
        Add("ESC in a path id", "DELETE", "/api/v1/agent/memory/archival/abc%1Bdef", Caller.Owner, Bad, "invalid_text");
        Add("BEL in a change id", "POST", "/api/v1/agent/memory/changes/%07/revert", Caller.Owner, Bad, "invalid_text");
        Add("ESC in usage group_by", "GET", "/api/v1/user/usage?group_by=day%1B", Caller.Owner, Bad, "invalid_text");

        // Invalid JSON and invalid UTF-8.
        foreach (var (name, method, path, caller) in new[]
        {
            ("register", "POST", "/api/v1/auth/register", Caller.Anonymous),
            ("login", "POST", "/api/v1/auth/login", Caller.Anonymous),
            ("refresh", "POST", "/api/v1/auth/refresh", Caller.Anonymous),
            ("profile", "PATCH", "/api/v1/user/profile", Caller.Owner),
            ("create conversation", "POST", "/api/v1/conversations", Caller.Owner),
            ("update conversation", "PATCH", "/api/v1/conversations/{conversation}", Caller.Owner),
            ("message", "POST", "/api/v1/conversations/{conversation}/messages", Caller.Owner),
            ("chat message", "POST", "/api/v1/chat/message", Caller.Owner),
            ("memory", "POST", "/api/v1/agent/memory", Caller.Owner),
            ("passage", "POST", "/api/v1/agent/memory/archival", Caller.Owner),
            ("reset", "POST", "/api/v1/agent/reset", Caller.Owner),
            ("personal limit", "POST", "/api/v1/user/budget", Caller.Owner),
            ("grant budget", "PUT", "/api/v1/admin/users/{owner}/budget", Caller.Admin),
        })
        {
            Add($"broken JSON to {name}", method, path, caller, Bad, "malformed_json", () => Json("""{[ "unterminated"""));
        }

        Add("invalid UTF-8 in message", "POST", "/api/v1/conversations/{conversation}/messages", Caller.Owner, Bad, "malformed_json", () => InvalidUtf8("content"));
        Add("invalid UTF-8 in register", "POST", "/api/v1/auth/register", Caller.Anonymous, Bad, "malformed_json", () => InvalidUtf8("email"));
        Add("invalid UTF-8 in passage", "POST", "/api/v1/agent/memory/archival", Caller.Owner, Bad, "malformed_json", () => InvalidUtf8("content"));
        Add("invalid UTF-8 in title", "PATCH", "/api/v1/conversations/{conversation}", Caller.Owner, Bad, "malformed_json", () => InvalidUtf8("title"));
        Add("a JSON array for an object", "POST", "/api/v1/chat/message", Caller.Owner, Bad, "malformed_json", () => Json("""["hi"]"""));
        Add("a bare JSON string for an object", "POST", "/api/v1/auth/login", Caller.Anonymous, Bad, "malformed_json", () => Json("\"hi\""));
        Add("trailing garbage after the object", "POST", "/api/v1/agent/memory/archival", Caller.Owner, Bad, "malformed_json", () => Json("""{"content":"a"} {"content":"b"}"""));

        // Wrong types.
        Add("number for message content", "POST", "/api/v1/conversations/{conversation}/messages", Caller.Owner, Bad, "malformed_json", () => Json("""{"content":42}"""));
        Add("object for email", "POST", "/api/v1/auth/register", Caller.Anonymous, Bad, "malformed_json", () => Json("""{"email":{"a":1},"password":"pw-long-enough-1"}"""));
        Add("string for archived", "PATCH", "/api/v1/conversations/{conversation}", Caller.Owner, Bad, "malformed_json", () => Json("""{"archived":"yes"}"""));
        Add("string for blocks", "POST", "/api/v1/agent/memory", Caller.Owner, Bad, "malformed_json", () => Json("""{"blocks":"human=Ana"}"""));
        Add("array for title", "POST", "/api/v1/conversations", Caller.Owner, Bad, "malformed_json", () => Json("""{"title":["a"]}"""));
        Add("boolean for limit", "POST", "/api/v1/user/budget", Caller.Owner, Bad, "malformed_json", () => Json("""{"personal_limit_usd":true}"""));
        Add("number for refresh token", "POST", "/api/v1/auth/refresh", Caller.Anonymous, Bad, "malformed_json", () => Json("""{"refresh_token":12345678}"""));
        Add("number for scope", "POST", "/api/v1/agent/reset", Caller.Owner, Bad, "malformed_json", () => Json("""{"scope":1}"""));

        // Unknown fields are refused, naming the field.
        Add("unknown role at register", "POST", "/api/v1/auth/register", Caller.Anonymous, Bad, "unknown_field", () => JsonOf(new { email = Email(), password = Password, role = "admin" }));
        Add("unknown field at login", "POST", "/api/v1/auth/login", Caller.Anonymous, Bad, "unknown_field", () => JsonOf(new { email = Email(), password = Password, remember = true }));
        Add("unknown email at profile", "PATCH", "/api/v1/user/profile", Caller.Owner, Bad, "unknown_field", () => JsonOf(new { name = "Ana", email = "x@example.com" }));
        Add("unknown user_id at message", "POST", "/api/v1/conversations/{conversation}/messages", Caller.Owner, Bad, "unknown_field", () => JsonOf(new { content = "hi", user_id = Guid.NewGuid() }));
        Add("misspelt personal limit", "POST", "/api/v1/user/budget", Caller.Owner, Bad, "unknown_field", () => JsonOf(new { personal_limit = 1 }));
        Add("unknown field at conversation", "POST", "/api/v1/conversations", Caller.Owner, Bad, "unknown_field", () => JsonOf(new { title = "a", is_default = true }));
        Add("unknown field in a block", "POST", "/api/v1/agent/memory", Caller.Owner, Bad, "unknown_field", () => JsonOf(new { blocks = new[] { new { label = "human", value = "Ana", limit = 99999 } } }));
        Add("unknown max budget at personal limit", "POST", "/api/v1/user/budget", Caller.Owner, Bad, "unknown_field", () => JsonOf(new { max_budget_usd = 1000 }));

        // Empty and huge bodies, deep nesting.
        Add("empty body to register", "POST", "/api/v1/auth/register", Caller.Anonymous, Bad, "bad_request", () => Json(""));
        Add("empty body to message", "POST", "/api/v1/chat/message", Caller.Owner, Bad, "bad_request", () => Json(""));
        Add("no body to memory", "POST", "/api/v1/agent/memory", Caller.Owner, Bad, "bad_request");
        Add("empty object to message", "POST", "/api/v1/conversations/{conversation}/messages", Caller.Owner, Invalid, "validation_failed", () => Json("{}"));
        Add("null content", "POST", "/api/v1/chat/message", Caller.Owner, Invalid, "validation_failed", () => Json("""{"content":null}"""));
        Add("blank content", "POST", "/api/v1/chat/message", Caller.Owner, Invalid, "validation_failed", () => Json("""{"content":"   "}"""));
        Add("empty passage", "POST", "/api/v1/agent/memory/archival", Caller.Owner, Invalid, "validation_failed", () => Json("""{"content":""}"""));
        Add("message over the character limit", "POST", "/api/v1/conversations/{conversation}/messages", Caller.Owner, HttpStatusCode.RequestEntityTooLarge, "message_too_long", () => Huge("content", 100_000));
        Add("two megabytes of name", "POST", "/api/v1/auth/register", Caller.Anonymous, HttpStatusCode.RequestEntityTooLarge, "payload_too_large", () => Huge("name", 2 * 1024 * 1024));
        Add("a title of 10000 characters", "POST", "/api/v1/conversations", Caller.Owner, Invalid, "validation_failed", () => Huge("title", 10_000));
        Add("a block value over its limit", "POST", "/api/v1/agent/memory", Caller.Owner, Invalid, "memory_limit_exceeded", () => JsonOf(new { blocks = new[] { new { label = "human", value = new string('v', 50_000) } } }));
        Add("deep nesting in message", "POST", "/api/v1/chat/message", Caller.Owner, Bad, "malformed_json", () => Nested("content", 500));
        Add("deep nesting in blocks", "POST", "/api/v1/agent/memory", Caller.Owner, Bad, "malformed_json", () => Nested("blocks", 500));

        // Negative, NaN and huge numbers.
        Add("negative personal limit", "POST", "/api/v1/user/budget", Caller.Owner, Invalid, "validation_failed", () => Json("""{"personal_limit_usd":-1}"""));
        Add("NaN personal limit", "POST", "/api/v1/user/budget", Caller.Owner, Bad, "malformed_json", () => Json("""{"personal_limit_usd":NaN}"""));
        Add("NaN as a string", "POST", "/api/v1/user/budget", Caller.Owner, Bad, "malformed_json", () => Json("""{"personal_limit_usd":"NaN"}"""));
        Add("1e400 personal limit", "POST", "/api/v1/user/budget", Caller.Owner, Bad, "malformed_json", () => Json("""{"personal_limit_usd":1e400}"""));
        Add("personal limit above the grant", "POST", "/api/v1/user/budget", Caller.Owner, HttpStatusCode.Forbidden, "limit_above_grant", () => Json("""{"personal_limit_usd":1e20}"""));
        Add("negative grant", "PUT", "/api/v1/admin/users/{owner}/budget", Caller.Admin, Invalid, "validation_failed", () => Json("""{"max_budget_usd":-5}"""));
        Add("huge grant", "PUT", "/api/v1/admin/users/{owner}/budget", Caller.Admin, Invalid, "validation_failed", () => Json("""{"max_budget_usd":79228162514264337593543950335}"""));
        Add("unknown grant period", "PUT", "/api/v1/admin/users/{owner}/budget", Caller.Admin, Invalid, "validation_failed", () => Json("""{"max_budget_usd":5,"duration":"2w"}"""));
        Add("negative history limit", "GET", "/api/v1/chat/history?limit=-5", Caller.Owner, Invalid, "validation_failed");
        Add("zero message limit", "GET", "/api/v1/conversations/{conversation}/messages?limit=0", Caller.Owner, Invalid, "validation_failed");
        Add("NaN conversation limit", "GET", "/api/v1/conversations?limit=NaN", Caller.Owner, Bad, "bad_request");
        Add("limit beyond int", "GET", "/api/v1/search?query=a&limit=99999999999999999999", Caller.Owner, Bad, "bad_request");
        Add("limit in exponent form", "GET", "/api/v1/agent/memory/archival?limit=1e3", Caller.Owner, Bad, "bad_request");
        Add("search limit too big", "GET", "/api/v1/search?query=a&limit=100000", Caller.Owner, Invalid, "validation_failed");
        Add("changes limit negative", "GET", "/api/v1/agent/memory/changes?limit=-1", Caller.Owner, Invalid, "validation_failed");
        Add("admin users limit zero", "GET", "/api/v1/admin/users?limit=0", Caller.Admin, Invalid, "validation_failed");
        Add("archived not a boolean", "GET", "/api/v1/conversations?archived=maybe", Caller.Owner, Bad, "bad_request");

        // Injection strings in ids and cursors; queries that are not dates or choices.
        Add("injection as a conversation id", "GET", $"/api/v1/conversations/{Uri.EscapeDataString(Injection)}", Caller.Owner, Missing, "not_found");
        Add("injection as a passage id", "DELETE", $"/api/v1/agent/memory/archival/{Uri.EscapeDataString(Injection)}", Caller.Owner, Missing, "not_found");
        Add("injection as a change id", "POST", $"/api/v1/agent/memory/changes/{Uri.EscapeDataString(Injection)}/revert", Caller.Owner, Missing, "not_found");
        Add("injection as a turn id", "GET", $"/api/v1/chat/turns/{Uri.EscapeDataString(Injection)}/events", Caller.Owner, Missing, "not_found");
        Add("injection as a user id", "PUT", $"/api/v1/admin/users/{Uri.EscapeDataString(Injection)}/budget", Caller.Admin, Missing, "not_found", () => Json("""{"max_budget_usd":5}"""));
        Add("injection as a history cursor", "GET", $"/api/v1/chat/history?before={Uri.EscapeDataString(Injection)}", Caller.Owner, Invalid, "validation_failed");
        Add("injection as a conversations cursor", "GET", $"/api/v1/conversations?before={Uri.EscapeDataString(Injection)}", Caller.Owner, Invalid, "validation_failed");
        Add("injection as a messages cursor", "GET", $"/api/v1/conversations/{{conversation}}/messages?before={Uri.EscapeDataString(Injection)}", Caller.Owner, Invalid, "validation_failed");
        Add("injection as a search cursor", "GET", $"/api/v1/search?query=a&before={Uri.EscapeDataString(Injection)}", Caller.Owner, Invalid, "validation_failed");
        Add("injection as a changes cursor", "GET", $"/api/v1/agent/memory/changes?before={Uri.EscapeDataString(Injection)}", Caller.Owner, Invalid, "validation_failed");
        Add("injection as an admin cursor", "GET", $"/api/v1/admin/users?after={Uri.EscapeDataString(Injection)}", Caller.Admin, Invalid, "validation_failed");
        Add("a cursor of another endpoint", "GET", $"/api/v1/chat/history?before={Uri.EscapeDataString(Convert.ToBase64String(Encoding.UTF8.GetBytes("c:1")))}", Caller.Owner, Invalid, "validation_failed");
        Add("injection as a usage date", "GET", $"/api/v1/user/usage?from={Uri.EscapeDataString(Injection)}", Caller.Owner, Bad, "bad_request");
        Add("injection as group_by", "GET", $"/api/v1/user/usage?group_by={Uri.EscapeDataString(Injection)}", Caller.Owner, Invalid, "validation_failed");
        Add("usage range backwards", "GET", "/api/v1/user/usage?from=2026-02-01&to=2026-01-01", Caller.Owner, Invalid, "validation_failed");
        Add("injection as a reset scope", "POST", "/api/v1/agent/reset", Caller.Owner, Invalid, "validation_failed", () => JsonOf(new { scope = Injection }));
        Add("injection as a model", "POST", "/api/v1/conversations", Caller.Owner, Invalid, "unknown_model", () => JsonOf(new { model = Injection }));
        Add("injection as login email", "POST", "/api/v1/auth/login", Caller.Anonymous, Invalid, "validation_failed", () => JsonOf(new { email = Injection, password = Password }));
        Add("injection as refresh token", "POST", "/api/v1/auth/refresh", Caller.Anonymous, HttpStatusCode.Unauthorized, "invalid_refresh_token", () => JsonOf(new { refresh_token = Injection }));
        Add("search without a query", "GET", "/api/v1/search", Caller.Owner, Invalid, "validation_failed");
        Add("search query too long", "GET", $"/api/v1/search?query={new string('q', 5000)}", Caller.Owner, Invalid, "validation_failed");
        Add("unknown conversation", "PATCH", $"/api/v1/conversations/{Guid.NewGuid()}", Caller.Owner, Missing, "not_found", () => JsonOf(new { title = "x" }));
        Add("regenerate an unknown message", "POST", $"/api/v1/conversations/{{conversation}}/messages/{Guid.NewGuid()}/regenerate", Caller.Owner, Missing, "not_found");
        Add("alternatives of an unknown message", "GET", $"/api/v1/conversations/{{conversation}}/messages/{Guid.NewGuid()}/alternatives", Caller.Owner, Missing, "not_found");
        Add("cancel an unknown turn", "POST", $"/api/v1/chat/turns/{Guid.NewGuid()}/cancel", Caller.Owner, Missing, "not_found");
        Add("grant admin to an unknown account", "POST", $"/api/v1/admin/users/{Guid.NewGuid()}/admin", Caller.Admin, Missing, "not_found");
        Add("a Last-Event-ID that is not a number", "GET", "/api/v1/chat/turns/{turn}/events", Caller.Owner, Invalid, "validation_failed", header: ("Last-Event-ID", "seven"));

        // Headers and content types.
        Add("an overlong header", "GET", "/api/v1/conversations", Caller.Owner, HttpStatusCode.RequestHeaderFieldsTooLarge, "header_too_large", header: ("X-Padding", new string('p', 20_000)));
        Add("an overlong bearer token", "GET", "/api/v1/auth/me", Caller.Anonymous, HttpStatusCode.RequestHeaderFieldsTooLarge, "header_too_large", header: ("Authorization", "Bearer " + new string('t', 20_000)));
        Add("a bearer token that is not a JWT", "GET", "/api/v1/auth/me", Caller.Anonymous, HttpStatusCode.Unauthorized, "unauthorized", header: ("Authorization", "Bearer " + Injection));
        Add("an Idempotency-Key over 200 characters", "POST", "/api/v1/chat/message", Caller.Owner, Invalid, "validation_failed", () => JsonOf(new { content = "hi" }), ("Idempotency-Key", new string('k', 300)));
        Add("text/plain to message", "POST", "/api/v1/chat/message", Caller.Owner, HttpStatusCode.UnsupportedMediaType, "unsupported_media_type", () => new StringContent("""{"content":"hi"}""", Encoding.UTF8, "text/plain"));
        Add("form data to register", "POST", "/api/v1/auth/register", Caller.Anonymous, HttpStatusCode.UnsupportedMediaType, "unsupported_media_type", () => new FormUrlEncodedContent([new("email", "a@example.com"), new("password", Password)]));
        Add("xml to memory", "POST", "/api/v1/agent/memory", Caller.Owner, HttpStatusCode.UnsupportedMediaType, "unsupported_media_type", () => new StringContent("<blocks/>", Encoding.UTF8, "application/xml"));
        Add("no content type to passage", "POST", "/api/v1/agent/memory/archival", Caller.Owner, HttpStatusCode.UnsupportedMediaType, "unsupported_media_type", () => new ByteArrayContent(Encoding.UTF8.GetBytes("""{"content":"a"}""")));
        Add("a wrong method on export", "POST", "/api/v1/user/export", Caller.Owner, HttpStatusCode.MethodNotAllowed, "method_not_allowed");
        Add("a wrong method on models", "DELETE", "/api/v1/models", Caller.Owner, HttpStatusCode.MethodNotAllowed, "method_not_allowed");
        return cases;
    }
}
