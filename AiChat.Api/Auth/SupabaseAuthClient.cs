using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace AiChat.Api.Auth;

/// <summary>Supabase Auth (GoTrue) over its REST API; every call carries the project's <c>apikey</c>.</summary>
public sealed class SupabaseAuthClient(HttpClient http)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public Task<SupabaseReply> SignUpAsync(string email, string password, string? name, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, "signup", new SignUpBody(email, password, name is null ? null : new Metadata(name)), null, cancellationToken);

    public Task<SupabaseReply> SignInWithPasswordAsync(string email, string password, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, "token?grant_type=password", new PasswordBody(email, password), null, cancellationToken);

    public Task<SupabaseReply> RefreshAsync(string refreshToken, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, "token?grant_type=refresh_token", new RefreshBody(refreshToken), null, cancellationToken);

    public Task<SupabaseReply> LogoutAsync(string accessToken, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, "logout?scope=local", null, accessToken, cancellationToken);

    public async Task<string> GetJwksAsync(CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(".well-known/jwks.json", cancellationToken);
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsStringAsync(cancellationToken);
    }

    private async Task<SupabaseReply> SendAsync(HttpMethod method, string path, object? body, string? bearer, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: Json);
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new IdentityProviderUnavailableException("Supabase Auth did not answer.", ex);
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                var payload = string.IsNullOrWhiteSpace(text) ? null : JsonSerializer.Deserialize<Payload>(text, Json);
                return new SupabaseReply((int)response.StatusCode, payload?.AccessToken is null ? null : payload.ToSession(), payload?.ToUser(), null);
            }

            var error = TryRead<ErrorBody>(text);
            var code = error?.ErrorCode
                ?? (response.Headers.TryGetValues("x-sb-error-code", out var values) ? values.FirstOrDefault() : null)
                ?? "unexpected_failure";
            return new SupabaseReply((int)response.StatusCode, null, null, new SupabaseError(code, error?.Msg ?? error?.Message, error?.WeakPassword?.Reasons ?? []));
        }
    }

    private static T? TryRead<T>(string text) where T : class
    {
        try
        {
            return string.IsNullOrWhiteSpace(text) ? null : JsonSerializer.Deserialize<T>(text, Json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record SignUpBody(string Email, string Password, Metadata? Data);

    private sealed record Metadata(string Name);

    private sealed record PasswordBody(string Email, string Password);

    private sealed record RefreshBody(string RefreshToken);

    private sealed record ErrorBody(string? ErrorCode, string? Msg, string? Message, WeakPasswordBody? WeakPassword);

    private sealed record WeakPasswordBody(string[]? Reasons);

    private sealed record UserBody(string? Id, string? Email, DateTimeOffset? EmailConfirmedAt, Dictionary<string, JsonElement>? UserMetadata);

    // A session has tokens and a nested user; signup with confirmation on returns the user object itself.
    private sealed record Payload(string? AccessToken, string? RefreshToken, int? ExpiresIn, UserBody? User, string? Id, string? Email)
    {
        public SupabaseSession ToSession() => new(AccessToken!, RefreshToken ?? "", ExpiresIn ?? 3600, ToUser()!);

        public SupabaseUser? ToUser()
        {
            var user = User ?? (Id is null ? null : new UserBody(Id, Email, null, null));
            if (user?.Id is null || !Guid.TryParse(user.Id, out var id))
            {
                return null;
            }

            var name = user.UserMetadata?.TryGetValue("name", out var value) == true && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
            return new SupabaseUser(id, user.Email ?? "", name, user.EmailConfirmedAt is not null);
        }
    }
}

/// <summary>A Supabase user; <paramref name="EmailConfirmed"/> from the server's <c>email_confirmed_at</c> (user metadata in a token is the user's to edit).</summary>
public sealed record SupabaseUser(Guid Id, string Email, string? Name, bool EmailConfirmed);

public sealed record SupabaseSession(string AccessToken, string RefreshToken, int ExpiresIn, SupabaseUser User);

public sealed record SupabaseError(string Code, string? Message, string[] Reasons);

public sealed record SupabaseReply(int Status, SupabaseSession? Session, SupabaseUser? User, SupabaseError? Error);
