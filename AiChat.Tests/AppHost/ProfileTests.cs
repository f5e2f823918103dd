extern alias apphost;

using apphost::AiChat.AppHost;
using Microsoft.Extensions.Configuration;

namespace AiChat.Tests.AppHost;

[Trait("Category", "AppHost")]
public sealed class ProfileTests
{
    [Theory]
    [InlineData(null, AiChatProfile.Embedded)]
    [InlineData("docker", AiChatProfile.Full)]
    [InlineData("podman", AiChatProfile.Full)]
    public void WithoutAChoiceTheContainerEngineDecides(string? engine, AiChatProfile expected)
    {
        var (profile, reason) = Profiles.Choose(Configuration(), () => engine);

        Assert.Equal(expected, profile);
        Assert.Contains(engine ?? "no container engine", reason);
    }

    [Theory]
    [InlineData("profile", "embedded", AiChatProfile.Embedded)]
    [InlineData("profile", "FULL", AiChatProfile.Full)]
    [InlineData("Parameters:profile", "full", AiChatProfile.Full)]
    [InlineData("Parameters:profile", "embedded", AiChatProfile.Embedded)]
    public void AForcedProfileWinsWithoutAskingTheEngine(string key, string value, AiChatProfile expected)
    {
        var probed = false;

        var (profile, _) = Profiles.Choose(Configuration((key, value)), () => { probed = true; return "docker"; });

        Assert.Equal(expected, profile);
        Assert.False(probed);
    }

    [Fact]
    public void TheCommandLineWinsOverTheParameter()
    {
        var (profile, _) = Profiles.Choose(Configuration(("profile", "embedded"), ("Parameters:profile", "full")), () => "docker");

        Assert.Equal(AiChatProfile.Embedded, profile);
    }

    [Fact]
    public void AnUnknownProfileIsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => Profiles.Choose(Configuration(("profile", "cloud")), () => null));
        Assert.Contains("cloud", error.Message);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AContainerClientWhoseEngineDoesNotAnswerIsNoRuntime()
    {
        var client = FakeClient(exitCode: 1);
        using var _ = new EnvironmentVariable("ASPIRE_CONTAINER_RUNTIME", client);

        Assert.Null(Profiles.ProbeContainerRuntime());
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AContainerClientWhoseEngineAnswersIsARuntime()
    {
        var client = FakeClient(exitCode: 0);
        using var _ = new EnvironmentVariable("ASPIRE_CONTAINER_RUNTIME", client);

        Assert.Equal(client, Profiles.ProbeContainerRuntime());
    }

    [Fact]
    public void AMissingContainerClientIsNoRuntime()
    {
        using var _ = new EnvironmentVariable("ASPIRE_CONTAINER_RUNTIME", "/nonexistent/docker");

        Assert.Null(Profiles.ProbeContainerRuntime());
    }

    private static IConfiguration Configuration(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, (string?)v.Value))).Build();

    // A stand-in for `docker`: answers `info` with the given exit code, as a client with or without a running engine does.
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static string FakeClient(int exitCode)
    {
        var path = Path.Combine(Path.GetTempPath(), $"fake-docker-{Guid.NewGuid():N}");
        File.WriteAllText(path, $"#!/bin/sh\n[ \"$1\" = info ] || exit 2\nexit {exitCode}\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private sealed class EnvironmentVariable : IDisposable
    {
        private readonly string _name;
        private readonly string? _previous;

        public EnvironmentVariable(string name, string value)
        {
            _name = name;
            _previous = Environment.GetEnvironmentVariable(name);
            Environment.SetEnvironmentVariable(name, value);
        }

        public void Dispose() => Environment.SetEnvironmentVariable(_name, _previous);
    }
}
