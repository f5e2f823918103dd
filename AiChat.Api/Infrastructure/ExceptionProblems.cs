namespace AiChat.Api.Infrastructure;

/// <summary>The problem an exception stands for: its status, stable code and a detail safe to show.</summary>
public sealed record ProblemMapping(int Status, string Code, string Detail);

/// <summary>
/// A feature's mapping of its own exceptions onto problems, asked by the exception handler (which knows no feature).
/// Null for an exception the feature does not own.
/// </summary>
public interface IExceptionProblems
{
    ProblemMapping? Map(Exception exception);
}
