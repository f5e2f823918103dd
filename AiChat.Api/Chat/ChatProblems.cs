namespace AiChat.Api.Chat;

/// <summary>The problem codes of the chat feature (a busy agent is the agent feature's <c>agent_busy</c>).</summary>
public static class ChatProblems
{
    public const string MessageTooLong = "message_too_long";
    public const string IdempotencyKeyReused = "idempotency_key_reused";
    public const string ServerBusy = "server_busy";
    public const string EventsExpired = "events_expired";
    public const string TurnFinished = "turn_already_finished";
    public const string Cancelled = "cancelled";
    public const string ShuttingDown = "shutting_down";
    public const string TurnLost = "turn_lost";
    public const string AgentStreamEnded = "agent_stream_ended";
    public const string ConversationBusy = "conversation_busy";
    public const string TooManyTurns = "too_many_turns";
    public const string RateLimited = "rate_limited";
    public const string TooManyStreams = "too_many_streams";
    public const string NotLastAnswer = "not_last_answer";
    public const string RegenerateUnsupported = "regenerate_unsupported";
}
