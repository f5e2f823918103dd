using AiChat.Benchmarks;

// AiChat's benchmark: the real API and gateway as processes on loopback, a stub LLM of its own, one Markdown table.
// Run: dotnet run -c Release --project AiChat.Benchmarks [-- --smoke] ; the stub LLM is this program started as "stub <port>".
return args is [StubServer.Role, var port]
    ? await StubServer.RunAsync(int.Parse(port, System.Globalization.CultureInfo.InvariantCulture))
    : await Benchmark.RunAsync(BenchmarkOptions.Parse(args), Console.Out);
