namespace AiChat.Api.Billing;

/// <summary>The problem codes of the budget endpoints (a refused LLM call's <c>budget_exceeded</c> is the LLM feature's).</summary>
public static class BillingProblems
{
    public const string LimitAboveGrant = "limit_above_grant";
}
