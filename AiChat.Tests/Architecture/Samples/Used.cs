namespace AiChat.Tests.Architecture.Samples.Used;

// The types the samples in Uses reach for, each sample in one way only.
public class Base;

public interface IMarker;

public class Thing
{
    public static readonly Thing Shared = new();

    public static int Count() => 1;
}

public struct Value;

public sealed class Failure : Exception;

public delegate void Handler();

[AttributeUsage(AttributeTargets.All)]
public sealed class MarkAttribute : Attribute;

public static class Constants
{
    public const int Answer = 42;
}
