using AiChat.Api.Chat;

namespace AiChat.Tests.Chat;

/// <summary>The excerpt's HTML and the Postgres headline's ellipses, without a store.</summary>
[Trait("Category", "Chat")]
public sealed class SearchSnippetTests
{
    private const char Open = SearchSnippet.MarkStart;
    private const char Close = SearchSnippet.MarkEnd;

    [Fact]
    public void TheTextIsEscapedAndEachMarkIsAMarkTag() =>
        Assert.Equal("a &lt;i&gt;&amp;&lt;/i&gt; <mark>word</mark> é…", SearchSnippet.ToHtml($"a <i>&</i> {Open}word{Close} é…"));

    [Theory]
    [InlineData("x\u0002a\u0002b\u0003c", "x<mark>ab</mark>c")]
    [InlineData("a\u0003b", "ab")]
    [InlineData("\u0002open to the end", "<mark>open to the end</mark>")]
    [InlineData("\u0002\u0003", "<mark></mark>")]
    public void StrayMarksNeverUnbalanceTheTags(string marked, string html) => Assert.Equal(html, SearchSnippet.ToHtml(marked));

    [Theory]
    [InlineData("one two three", "one two three", "one two three")]
    [InlineData("one two three four", "two three", "…two three…")]
    [InlineData("one two three", "two three", "…two three")]
    [InlineData("one two three  ", "one two", "one two…")]
    [InlineData("a <b> c", "a \u0001b\u0004 c", "a <b> c")]
    [InlineData("zero a <b> word c", "\u0001b\u0004 \u0002word\u0003 c", "…<b> \u0002word\u0003 c")]
    [InlineData(" <i>word</i>! ", "i\u0004\u0002word\u0003\u0001/i", "<i>\u0002word\u0003</i>!")]
    [InlineData("(one) two, three", "two", "…two…")]
    public void AHeadlineSaysWhereItWasCutAsSnippetDoes(string content, string headline, string excerpt) =>
        Assert.Equal(excerpt, SearchSnippet.FromHeadline(headline, content));
}
