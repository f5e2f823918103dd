using AiChat.Api.Llm;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.FileProviders;

namespace AiChat.Tests.Llm;

[Trait("Category", "Agents")]
public sealed class InternalLlmKeyTests
{
    [Fact]
    public void AKeyNamesItsUserAndOnlyItsUser()
    {
        var keys = Keys("secret-one");
        var ana = Guid.NewGuid();
        var bob = Guid.NewGuid();

        Assert.Equal(ana, keys.UserFor(keys.KeyFor(ana)));
        Assert.Equal(bob, keys.UserFor(keys.KeyFor(bob)));
        Assert.NotEqual(keys.KeyFor(ana), keys.KeyFor(bob));
    }

    [Fact]
    public void AForgedOrForeignKeyNamesNobody()
    {
        var keys = Keys("secret-one");
        var ana = Guid.NewGuid();
        var genuine = keys.KeyFor(ana);
        var bob = Guid.NewGuid();

        Assert.Null(keys.UserFor(Keys("another-secret").KeyFor(ana)));
        Assert.Null(keys.UserFor(genuine.Replace(ana.ToString("N"), bob.ToString("N"))));
        Assert.Null(keys.UserFor(genuine[..^1] + (genuine[^1] == 'A' ? 'B' : 'A')));
        Assert.Null(keys.UserFor("sk-anything"));
        Assert.Null(keys.UserFor(""));
    }

    [Fact]
    public void WithoutAConfiguredSecretOneIsKeptInTheDataFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"aichat-keys-{Guid.NewGuid():N}");
        var user = Guid.NewGuid();

        var first = Keys(null, folder).KeyFor(user);
        var second = Keys(null, folder).KeyFor(user);

        Assert.Equal(first, second);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(folder, "keys", "internal-llm.secret")));
        }

        Directory.Delete(folder, recursive: true);
    }

    private static InternalLlmKeys Keys(string? secret, string? folder = null) => new(
        new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["InternalLlm:Secret"] = secret,
            ["Store:DataDirectory"] = folder ?? Path.GetTempPath(),
        }).Build(),
        new Environment());

    private sealed class Environment : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Testing";

        public string ApplicationName { get; set; } = "tests";

        public string ContentRootPath { get; set; } = Path.GetTempPath();

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
