using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Api.Auth;

/// <summary>
/// Supabase's signing keys, fetched from its JWKS and cached for a few minutes; a token signed with a key id
/// the cache does not know triggers a refetch (at most one every few seconds), so a key rotation is picked up at once.
/// </summary>
public sealed partial class SupabaseJwks(IServiceProvider services, IOptions<SupabaseOptions> options, TimeProvider time, ILogger<SupabaseJwks> logger)
{
    private static readonly TimeSpan MinRefetchInterval = TimeSpan.FromSeconds(5);
    private readonly SemaphoreSlim _fetch = new(1, 1);
    private IReadOnlyList<SecurityKey> _keys = [];
    private DateTimeOffset _fetchedAt = DateTimeOffset.MinValue;

    public IReadOnlyList<SecurityKey> Current => _keys;

    public int Fetches { get; private set; }

    public async Task EnsureKeyForRequestAsync(MessageReceivedContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        string? kid;
        try
        {
            kid = new JsonWebToken(header["Bearer ".Length..].Trim()).Kid;
        }
        catch (ArgumentException)
        {
            return; // not a JWT: the bearer handler will refuse it
        }

        await EnsureAsync(kid, context.HttpContext.RequestAborted);
    }

    public async Task EnsureAsync(string? kid, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var stale = now - _fetchedAt > options.Value.JwksCacheDuration;
        var unknown = kid is not null && _keys.All(k => k.KeyId != kid);
        if (!stale && !(unknown && now - _fetchedAt > MinRefetchInterval))
        {
            return;
        }

        await _fetch.WaitAsync(cancellationToken);
        try
        {
            if (_fetchedAt > now)
            {
                return; // another request refreshed while this one waited
            }

            var json = await services.GetRequiredService<SupabaseAuthClient>().GetJwksAsync(cancellationToken);
            _keys = new JsonWebKeySet(json).GetSigningKeys().ToArray();
            _fetchedAt = time.GetUtcNow();
            Fetches++;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or ArgumentException && !cancellationToken.IsCancellationRequested)
        {
            LogFetchFailed(logger, ex);
        }
        finally
        {
            _fetch.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Fetching Supabase's signing keys failed; keeping the cached ones")]
    private static partial void LogFetchFailed(ILogger logger, Exception exception);
}
