using System.Text;
using AiChat.Api.Infrastructure;
using AiChat.Api.Users;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Api.Auth;

public static class AuthExtensions
{
    /// <summary>
    /// Credentials and tokens: the built-in provider, or Supabase Auth when <c>Supabase:Url</c> is set; JWT bearer
    /// authentication for either, personal API keys on the paths of other clients (<c>/v1</c>, <c>/mcp</c>); the admin policy; rate limits on register and login. Accounts themselves are made
    /// through the account lifecycle of <c>AddUsers</c>.
    /// </summary>
    public static IHostApplicationBuilder AddAuth(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.Configure<AuthOptions>(builder.Configuration.GetSection(AuthOptions.Section));
        services.Configure<SupabaseOptions>(builder.Configuration.GetSection(SupabaseOptions.Section));
        services.TryAddSingleton(TimeProvider.System);

        services.AddSingleton<SessionStore>();
        services.AddSingleton<ISignInSessions>(sp => sp.GetRequiredService<SessionStore>());
        services.AddSingleton<LocalAccounts>();
        services.AddSingleton<AccountResolver>();
        services.AddSingleton<AuthRateLimits>();

        var supabase = builder.Configuration.GetSection(SupabaseOptions.Section).Get<SupabaseOptions>() ?? new SupabaseOptions();
        if (supabase.Enabled)
        {
            services.AddHttpClient<SupabaseAuthClient>((sp, http) =>
            {
                var options = sp.GetRequiredService<IOptions<SupabaseOptions>>().Value;
                http.BaseAddress = options.AuthBaseUrl;
                http.DefaultRequestHeaders.Add("apikey", options.AnonKey);
            });
            services.AddSingleton<SupabaseJwks>();
            services.AddSingleton<IIdentityProvider, SupabaseIdentityProvider>();
        }
        else
        {
            services.AddSingleton<SigningKeys>();
            services.AddSingleton<BuiltInIdentityProvider>();
            services.AddSingleton<IIdentityProvider>(sp => sp.GetRequiredService<BuiltInIdentityProvider>());
        }

        services.AddAuthentication(ApiKeyAuthenticationHandler.Selector)
            .AddPolicyScheme(ApiKeyAuthenticationHandler.Selector, "Access token or API key", policy => policy.ForwardDefaultSelector = ApiKeyAuthenticationHandler.SchemeFor)
            .AddJwtBearer()
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IServiceProvider>((options, sp) => ConfigureBearer(options, sp, supabase.Enabled));

        services.AddAuthorizationBuilder()
            .AddPolicy(ApiUser.AdminPolicy, policy => policy.RequireAuthenticatedUser().RequireRole(Roles.Admin));

        services.AddRateLimiter(options => options.AddPolicy<string, ClientAddressRateLimitPolicy>(AuthRateLimits.PolicyName));

        return builder;
    }

    /// <summary>The built-in provider's public signing keys (JWK Set), for anyone verifying AiChat's access tokens.</summary>
    public static IEndpointRouteBuilder MapJsonWebKeys(this IEndpointRouteBuilder app)
    {
        app.MapGet("/.well-known/jwks.json", (HttpContext context) =>
        {
            var keys = context.RequestServices.GetService<SigningKeys>();
            return keys is null ? Results.NotFound() : Results.Json(keys.JsonWebKeySet());
        }).ExcludeFromDescription();
        return app;
    }

    private static void ConfigureBearer(JwtBearerOptions options, IServiceProvider services, bool supabase)
    {
        options.MapInboundClaims = false;
        options.RequireHttpsMetadata = false;
        var parameters = new TokenValidationParameters
        {
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            ValidateIssuerSigningKey = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ClockSkew = TimeSpan.FromSeconds(30),
            NameClaimType = AuthClaims.Subject,
            RoleClaimType = AuthClaims.Role,
        };

        if (supabase)
        {
            var settings = services.GetRequiredService<IOptions<SupabaseOptions>>().Value;
            parameters.ValidIssuer = settings.Issuer;
            parameters.ValidAudience = "authenticated";
            if (!string.IsNullOrWhiteSpace(settings.JwtSecret))
            {
                // Legacy projects: one shared secret, and only HS256 is accepted.
                parameters.IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(settings.JwtSecret));
                parameters.ValidAlgorithms = [SecurityAlgorithms.HmacSha256];
            }
            else
            {
                var jwks = services.GetRequiredService<SupabaseJwks>();
                parameters.ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256];
                parameters.IssuerSigningKeyResolver = (_, _, _, _) => jwks.Current;
                options.Events = new JwtBearerEvents { OnMessageReceived = jwks.EnsureKeyForRequestAsync };
            }
        }
        else
        {
            var authOptions = services.GetRequiredService<IOptions<AuthOptions>>().Value;
            parameters.ValidIssuer = authOptions.Issuer;
            parameters.ValidAudience = authOptions.Audience;
            // Only ES256 with AiChat's own public key: no "none", no HMAC with the public key as a secret.
            parameters.IssuerSigningKey = services.GetRequiredService<SigningKeys>().Public;
            parameters.ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256];
        }

        options.TokenValidationParameters = parameters;
        options.Events ??= new JwtBearerEvents();
        var resolver = services.GetRequiredService<AccountResolver>();
        options.Events.OnTokenValidated = resolver.OnTokenValidatedAsync;
    }
}
