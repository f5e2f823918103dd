using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using AiChat.Api.Data;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Api.Auth;

/// <summary>
/// The ES256 key that signs the built-in provider's access tokens: a PEM or a secret to derive it from in
/// configuration (what replicas share), or created on first start as a PEM file in the data folder that only this
/// process's user may read.
/// </summary>
public sealed class SigningKeys
{
    public SigningKeys(IOptions<AuthOptions> options, IConfiguration configuration, IHostEnvironment environment, ILogger<SigningKeys> logger)
    {
        var ecdsa = ECDsa.Create();
        var pem = options.Value.SigningKeyPem;
        if (string.IsNullOrWhiteSpace(pem) && !string.IsNullOrWhiteSpace(options.Value.SigningKeySecret))
        {
            pem = DerivedKeyPem(options.Value.SigningKeySecret);
        }

        if (string.IsNullOrWhiteSpace(pem))
        {
            (pem, var created) = DataFolder.ReadOrCreateSecret(configuration, environment, "token-signing-es256.pem", NewKeyPem);
            if (created)
            {
                logger.LogInformation("Created a new token signing key file in the data folder");
            }
        }

        ecdsa.ImportFromPem(pem);
        if (ecdsa.KeySize != 256)
        {
            throw new InvalidOperationException("The token signing key must be a P-256 (ES256) key.");
        }

        var publicParameters = ecdsa.ExportParameters(includePrivateParameters: false);
        var keyId = Base64UrlEncoder.Encode(SHA256.HashData([.. publicParameters.Q.X!, .. publicParameters.Q.Y!]))[..16];
        Private = new ECDsaSecurityKey(ecdsa) { KeyId = keyId };
        Public = new ECDsaSecurityKey(ECDsa.Create(publicParameters)) { KeyId = keyId };
    }

    public ECDsaSecurityKey Private { get; }

    public ECDsaSecurityKey Public { get; }

    public SigningCredentials Credentials => new(Private, SecurityAlgorithms.EcdsaSha256);

    /// <summary>The public key as a JWK Set, for <c>/.well-known/jwks.json</c>.</summary>
    public object JsonWebKeySet()
    {
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(Public);
        return new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = jwk.Kid, alg = "ES256", use = "sig" } } };
    }

    /// <summary>
    /// The P-256 private key whose scalar is HKDF-SHA256 of the secret: every instance given the secret signs with the
    /// same key. A scalar outside [1, n-1] (odds about 2^-32) takes the next counter.
    /// </summary>
    public static string DerivedKeyPem(string secret)
    {
        if (secret.Length < 32)
        {
            throw new InvalidOperationException("Auth:SigningKeySecret must be at least 32 characters.");
        }

        // The order n of P-256's base point.
        var order = BigInteger.Parse("0FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", NumberStyles.HexNumber);
        for (var counter = 0; ; counter++)
        {
            var scalar = HKDF.DeriveKey(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(secret), 32, info: Encoding.UTF8.GetBytes($"aichat token signing key es256/{counter}"));
            var value = new BigInteger(scalar, isUnsigned: true, isBigEndian: true);
            if (value.IsZero || value >= order)
            {
                continue;
            }

            using var ecdsa = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = scalar });
            return ecdsa.ExportPkcs8PrivateKeyPem();
        }
    }

    private static string NewKeyPem()
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return ecdsa.ExportPkcs8PrivateKeyPem();
    }
}
