using AiChat.Api.Agents;

namespace AiChat.Tests.Agents;

/// <summary>What is kept of a model's answer to a title request.</summary>
[Trait("Category", "Agents")]
public sealed class TitleWriterTests
{
    [Theory]
    [InlineData("Trip to Lisbon", "Trip to Lisbon")]
    [InlineData("  \"Trip to Lisbon.\"  ", "Trip to Lisbon")]
    [InlineData("“Trip to Lisbon”", "Trip to Lisbon")]
    [InlineData("Title: 'Trip to Lisbon'", "Trip to Lisbon")]
    [InlineData("**Title:** Trip to Lisbon", "Trip to Lisbon")]
    [InlineData("# Trip   to\tLisbon!", "Trip to Lisbon")]
    [InlineData("\n\nTrip to Lisbon\nThis conversation is about a trip.", "Trip to Lisbon")]
    [InlineData("Why is the sky blue?", "Why is the sky blue?")]
    public void AnAnswerBecomesOneCleanLine(string answer, string title)
    {
        Assert.Equal(title, TitleWriter.Clean(answer));
    }

    [Fact]
    public void ALongAnswerIsCutAtAWordWithinTheLimit()
    {
        var title = TitleWriter.Clean("Planning a two week trip through Portugal with stops in Lisbon, Porto and the Algarve coast");

        Assert.Equal("Planning a two week trip through Portugal with stops in", title);
        Assert.True(title!.Length <= TitleWriter.MaxChars);
        Assert.Equal(new string('x', TitleWriter.MaxChars), TitleWriter.Clean(new string('x', 100)));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(" \n \"\" \n")]
    [InlineData("Title:")]
    public void AnAnswerWithNothingInItIsNoTitle(string? answer)
    {
        Assert.Null(TitleWriter.Clean(answer));
    }
}
