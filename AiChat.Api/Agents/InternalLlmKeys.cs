using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Api.Agents;

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
        _secret = Encoding.UTF8.GetBytes(string.IsNullOrWhiteSpace(configured) ? StoredSecret(configuration, environment) : configured);
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

    private static string StoredSecret(IConfiguration configuration, IHostEnvironment environment)
    {
        var directory = configuration["Store:DataDirectory"] ?? "App_Data";
        if (!Path.IsPathRooted(directory))
        {
            directory = Path.Combine(environment.ContentRootPath, directory);
        }

        var path = Path.Combine(directory, "keys", "internal-llm.secret");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            try
            {
                using var writer = new StreamWriter(path, options);
                writer.Write(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another instance sharing the folder wrote it first.
            }
        }

        return File.ReadAllText(path).Trim();
    }
}
