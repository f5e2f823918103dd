namespace AiChat.Api.Auth;

public sealed class AuthOptions
{
    public const string Section = "Auth";

    public string Issuer { get; set; } = "aichat";

    public string Audience { get; set; } = "aichat-api";

    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);

    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>The ES256 signing key as PKCS#8 PEM, for several instances sharing one key; else a key file in the data folder.</summary>
    public string? SigningKeyPem { get; set; }

    /// <summary>
    /// A secret the ES256 key is derived from (HKDF-SHA256), for replicas given one generated secret (the AppHost's
    /// <c>token-signing-secret</c>); <see cref="SigningKeyPem"/> wins when both are set.
    /// </summary>
    public string? SigningKeySecret { get; set; }

    /// <summary>With Supabase only: emails that get the admin role once Supabase shows them confirmed. Built-in accounts ignore it (see <c>grant-admin</c>).</summary>
    public string[] Admins { get; set; } = [];

    public RateLimitOptions RateLimits { get; set; } = new();

    public bool IsAdmin(string email) => Admins.Any(admin => string.Equals(admin.Trim(), email.Trim(), StringComparison.OrdinalIgnoreCase));
}

public sealed class RateLimitOptions
{
    /// <summary>Register and login calls one client address may make per window.</summary>
    public int PerClientAddress { get; set; } = 60;

    /// <summary>Register and login calls for one email per window.</summary>
    public int PerEmail { get; set; } = 10;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>Supabase Auth (GoTrue): active when <c>Supabase:Url</c> is set.</summary>
public sealed class SupabaseOptions
{
    public const string Section = "Supabase";

    /// <summary>The project URL, e.g. https://&lt;ref&gt;.supabase.co (the auth API is under /auth/v1).</summary>
    public string? Url { get; set; }

    /// <summary>The anon (publishable) key, sent as <c>apikey</c> on every call.</summary>
    public string? AnonKey { get; set; }

    /// <summary>Legacy projects only: the shared HS256 secret. When unset, tokens are verified against the project's JWKS.</summary>
    public string? JwtSecret { get; set; }

    public TimeSpan JwksCacheDuration { get; set; } = TimeSpan.FromMinutes(5);

    public bool Enabled => !string.IsNullOrWhiteSpace(Url);

    public Uri AuthBaseUrl => new($"{Url!.TrimEnd('/')}/auth/v1/");

    public string Issuer => $"{Url!.TrimEnd('/')}/auth/v1";
}
