using AiChat.Benchmarks;

// AiChat's benchmark: the real API and gateway as processes on loopback, a stub LLM of its own, one Markdown table.
// Run: dotnet run -c Release --project AiChat.Benchmarks [-- --smoke] ; the stub LLM is this program started as "stub <port>".
// The soak: dotnet run -c Release --project AiChat.Benchmarks -- soak --minutes 10 [--store postgres].
return args switch
{
    [StubServer.Role, var port, .. var flags] => await StubServer.RunAsync(int.Parse(port, System.Globalization.CultureInfo.InvariantCulture), flags.Contains(StubServer.FaultsFlag)),
    [Soak.Command, .. var options] => await Soak.RunAsync(SoakOptions.Parse(options), Console.Out),
    _ => await Benchmark.RunAsync(BenchmarkOptions.Parse(args), Console.Out),
};
