using System.Text;
using AiChat.Api.Llm;
using Microsoft.Extensions.AI;

namespace AiChat.Api.Agents;

/// <summary>
/// What goes to the model for one step, and what was left out. <paramref name="KeepFromSeq"/> is where a summary should
/// end when the history did not fit: the oldest included message of those that fill half the room for history, so after
/// folding the older ones into the summary the next turns have room to grow before another summary is needed.
/// </summary>
public sealed record AssembledContext(
    List<ChatMessage> Messages,
    int PromptTokens,
    int IncludedHistory,
    long OldestIncludedSeq,
    bool HistoryTruncated,
    long KeepFromSeq);

/// <summary>
/// Builds the prompt within the context limit (the budget, never above the model's window): system prompt with the
/// memory blocks and the summary of older turns, then as many of the most recent messages as fit, then the user's new
/// message. Messages are counted with the real tokenizer, from the count stored with each one when there is one. Reads
/// the transcript page by page, newest first, so its cost does not grow with the length of the history.
/// </summary>
public sealed class ContextAssembler(TokenCounter tokens)
{
    public const int PageSize = 256;

    /// <summary>Room kept free for tool definitions and the framing of tool calls.</summary>
    public const int ToolReserve = 600;

    public static string SystemPrompt(IReadOnlyList<MemoryBlock> blocks, string? summary)
    {
        var prompt = new StringBuilder();
        prompt.AppendLine("You are a personal assistant with long-term memory.");
        prompt.AppendLine("Your core memory blocks are below; keep them current with core_memory_append and core_memory_replace.");
        prompt.AppendLine("Save facts worth keeping that do not fit a block with archival_memory_insert; look things up with archival_memory_search and conversation_search.");
        prompt.AppendLine("<memory_blocks>");
        foreach (var block in blocks)
        {
            prompt.AppendLine($"<{block.Label} characters=\"{block.Value.Length}/{block.Limit}\">");
            prompt.AppendLine(block.Value);
            prompt.AppendLine($"</{block.Label}>");
        }

        prompt.AppendLine("</memory_blocks>");
        if (!string.IsNullOrWhiteSpace(summary))
        {
            prompt.AppendLine("<summary_of_earlier_conversation>");
            prompt.AppendLine(summary);
            prompt.AppendLine("</summary_of_earlier_conversation>");
        }

        return prompt.ToString();
    }

    /// <param name="loadPage">Loads up to <c>limit</c> transcript messages older than <c>beforeSeq</c>, newest first.</param>
    public async Task<AssembledContext> AssembleAsync(
        IReadOnlyList<MemoryBlock> blocks,
        string? summary,
        string userMessage,
        int window,
        int maxOutputTokens,
        Func<long, int, Task<IReadOnlyList<TranscriptMessage>>> loadPage)
    {
        var budget = window - maxOutputTokens - ToolReserve;
        var system = SystemPrompt(blocks, summary);
        var systemTokens = tokens.Count(system) + TokenCounter.PerMessageOverhead;
        if (systemTokens > budget / 2 && !string.IsNullOrEmpty(summary))
        {
            // Blocks are bounded by their limits; only the summary can outgrow its share, so it is cut first.
            var cut = tokens.Truncate(summary, Math.Max(0, budget / 2 - (systemTokens - tokens.Count(summary))));
            system = SystemPrompt(blocks, cut);
            systemTokens = tokens.Count(system) + TokenCounter.PerMessageOverhead;
        }

        var current = new ChatMessage(ChatRole.User, userMessage);
        var currentTokens = tokens.Count(current);
        if (systemTokens + currentTokens > budget)
        {
            current = new ChatMessage(ChatRole.User, tokens.Truncate(userMessage, Math.Max(1, budget - systemTokens - TokenCounter.PerMessageOverhead)));
            currentTokens = tokens.Count(current);
        }

        var used = systemTokens + currentTokens;
        var half = used + (budget - used) / 2;
        var history = new List<ChatMessage>();
        long oldestIncluded = long.MaxValue;
        long keepFrom = long.MaxValue;
        var truncated = false;
        var before = long.MaxValue;
        while (!truncated)
        {
            var page = await loadPage(before, PageSize);
            foreach (var message in page)
            {
                var chat = new ChatMessage(message.Role == "assistant" ? ChatRole.Assistant : ChatRole.User, message.Content);
                var cost = message.Tokens is { } stored ? stored + TokenCounter.PerMessageOverhead : tokens.Count(chat);
                if (used + cost > budget)
                {
                    truncated = true;
                    break;
                }

                used += cost;
                history.Add(tokens.Remember(chat, cost));
                oldestIncluded = message.Seq;
                if (used <= half || keepFrom == long.MaxValue)
                {
                    keepFrom = message.Seq;
                }
            }

            if (page.Count < PageSize)
            {
                break;
            }

            before = page[^1].Seq;
        }

        history.Reverse();
        var messages = new List<ChatMessage>(history.Count + 2) { tokens.Remember(new ChatMessage(ChatRole.System, system), systemTokens) };
        messages.AddRange(history);
        messages.Add(tokens.Remember(current, currentTokens));
        return new AssembledContext(messages, used, history.Count, oldestIncluded, truncated, keepFrom);
    }
}
