using System.Collections.Concurrent;

namespace AiChat.Benchmarks;

/// <summary>A user message the API accepted (its stream started): it must be in its conversation's history.</summary>
public sealed record AcceptedMessage(BenchUser User, Guid Conversation, Guid Turn, string Content);

/// <summary>An answer the client saw complete: stored under its id with exactly this text.</summary>
public sealed record CompletedAnswer(BenchUser User, Guid Conversation, Guid MessageId, string Text);

/// <summary>
/// What the soak's clients did and saw, from every user at once: requests by kind and answer, the messages the API
/// accepted, the answers seen complete, how each turn ended, and anything that broke the contract.
/// </summary>
public sealed class SoakRecord
{
    private readonly ConcurrentDictionary<(string Kind, string Answer), int> _answers = new();
    private readonly ConcurrentDictionary<string, int> _outcomes = new();

    public ConcurrentQueue<AcceptedMessage> Accepted { get; } = new();

    public ConcurrentQueue<CompletedAnswer> Completed { get; } = new();

    /// <summary>Answers no client of the API should get (a 500, a refusal the request cannot earn) and broken streams.</summary>
    public ConcurrentQueue<string> Unexpected { get; } = new();

    public IReadOnlyDictionary<(string Kind, string Answer), int> Answers => _answers;

    public IReadOnlyDictionary<string, int> Outcomes => _outcomes;

    public void Answer(string kind, string answer) => _answers.AddOrUpdate((kind, answer), 1, (_, n) => n + 1);

    public void Outcome(string outcome) => _outcomes.AddOrUpdate(outcome, 1, (_, n) => n + 1);
}
