// Entry point for every benchmark: `dotnet run -c Release --project perf/EdgeMta.Benchmarks -- --filter '*'`.
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
