namespace AiChat.Api.Auth;

public static class AuthProblemCodes
{
    public const string InvalidCredentials = "invalid_credentials";
    public const string InvalidRefreshToken = "invalid_refresh_token";
    public const string UserAlreadyExists = "user_already_exists";
    public const string WeakPassword = "weak_password";
    public const string EmailNotConfirmed = "email_not_confirmed";
    public const string RateLimited = "over_request_rate_limit";
    public const string ProvisioningFailed = "provisioning_failed";
    public const string IdentityProviderError = "identity_provider_error";
}
