namespace AiChat.Api.Agents;

/// <summary>A stored transcript message as the agent sees it.</summary>
public sealed record TranscriptMessage(long Seq, Guid Id, string Role, string Content, DateTimeOffset CreatedAt);

/// <summary>
/// What an agent reads of the user's transcript, which Chat owns and implements: the recent messages that go into the
/// context, how many there are, a full-text search, and where the transcript ends now.
/// </summary>
public interface ITranscript
{
    /// <summary>
    /// A page of the remembered transcript, newest first, after <paramref name="afterSeq"/> and strictly older than
    /// <paramref name="beforeSeq"/>, user and assistant messages with text only; the running turn's messages are left out
    /// (the runtime adds the user's new message itself).
    /// </summary>
    Task<IReadOnlyList<TranscriptMessage>> RecentAsync(Guid userId, Guid currentTurnId, long afterSeq, long beforeSeq, int limit, CancellationToken cancellationToken);

    Task<int> CountAsync(Guid userId, long afterSeq, CancellationToken cancellationToken);

    /// <summary>Full-text search over the user's whole transcript (the conversation_search tool), best matches first.</summary>
    Task<IReadOnlyList<TranscriptMessage>> SearchAsync(Guid userId, string query, int limit, CancellationToken cancellationToken);

    /// <summary>The position of the user's newest message (0 when there is none).</summary>
    Task<long> LastSeqAsync(Guid userId, CancellationToken cancellationToken);
}
