namespace AiChat.Api.Agents;

/// <summary>A stored transcript message as the agent sees it.</summary>
/// <summary>A message of a transcript as the context reads it; <paramref name="Tokens"/> is its text's stored token count (null for rows older than the count).</summary>
public sealed record TranscriptMessage(long Seq, Guid Id, string Role, string Content, DateTimeOffset CreatedAt, int? Tokens = null);

/// <summary>A message found by a search over all of the user's conversations, with the conversation it is in.</summary>
public sealed record TranscriptHit(Guid ConversationId, string? ConversationTitle, Guid Id, string Role, string Content, DateTimeOffset CreatedAt);

/// <summary>
/// What an agent reads of the user's transcripts, which Chat owns and implements: the recent messages of a conversation
/// that go into its context, a full-text search over all conversations, and where one ends now.
/// </summary>
public interface ITranscript
{
    /// <summary>
    /// A page of a conversation's remembered transcript, newest first, after <paramref name="afterSeq"/> and strictly
    /// older than <paramref name="beforeSeq"/>, current user and assistant messages with text only; the running turn's
    /// messages and the user message it answers are left out (the runtime adds the user's message itself). With
    /// <paramref name="countsOnly"/> a message with a stored count comes without its text (to measure a context, not send it).
    /// </summary>
    Task<IReadOnlyList<TranscriptMessage>> RecentAsync(Guid conversationId, Guid currentTurnId, Guid? answeredMessageId, long afterSeq, long beforeSeq, int limit, CancellationToken cancellationToken, bool countsOnly = false);

    /// <summary>Full-text search over all of the user's conversations (the conversation_search tool), best matches first.</summary>
    Task<IReadOnlyList<TranscriptHit>> SearchAsync(Guid userId, string query, int limit, CancellationToken cancellationToken);

    /// <summary>The position of the conversation's newest message (0 when there is none).</summary>
    Task<long> LastSeqAsync(Guid conversationId, CancellationToken cancellationToken);
}
