using System.Security.Cryptography;
using System.Text;
using AiChat.Api.Data;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Api.Llm;

/// <summary>
/// The per-user credential an agent runtime uses to call AiChat's metered LLM endpoint (<c>/internal/llm/v1</c>):
/// whoever presents it is charged to that user.
/// </summary>
public interface IInternalLlmKeys
{
    string KeyFor(Guid userId);

    /// <summary>The user a key belongs to, or null when the key is not one AiChat issued.</summary>
    Guid? UserFor(string key);
}

/// <summary>
/// Per-user keys for AiChat's metered LLM endpoint: <c>aichat-llm-{user}.{HMAC-SHA256(secret, user)}</c>.
/// Nothing is stored per user, a key cannot be forged without the secret, and it names the user it is charged to.
/// The secret is <c>InternalLlm:Secret</c> (the AppHost sets it), else a random one kept in the data folder.
/// </summary>
public sealed class InternalLlmKeys : IInternalLlmKeys
{
    private const string Prefix = "aichat-llm-";
    private readonly byte[] _secret;

    public InternalLlmKeys(IConfiguration configuration, IHostEnvironment environment)
    {
        var configured = configuration["InternalLlm:Secret"];
        _secret = Encoding.UTF8.GetBytes(string.IsNullOrWhiteSpace(configured) ? DataFolder.ReadOrCreateSecret(configuration, environment, "internal-llm.secret", NewSecret).Content.Trim() : configured);
    }

    public string KeyFor(Guid userId) => $"{Prefix}{userId:N}.{Sign(userId)}";

    public Guid? UserFor(string key)
    {
        if (!key.StartsWith(Prefix, StringComparison.Ordinal) || key.Length != Prefix.Length + 32 + 1 + 43)
        {
            return null;
        }

        var dot = key.IndexOf('.', Prefix.Length);
        if (dot < 0 || !Guid.TryParseExact(key[Prefix.Length..dot], "N", out var userId))
        {
            return null;
        }

        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(key[(dot + 1)..]), Encoding.ASCII.GetBytes(Sign(userId))) ? userId : null;
    }

    private string Sign(Guid userId) => Base64UrlEncoder.Encode(HMACSHA256.HashData(_secret, userId.ToByteArray()));

    private static string NewSecret() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
}
