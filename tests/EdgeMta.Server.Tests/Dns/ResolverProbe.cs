// Collects resolver answers for tests: each answer completes the task of its token.
using System.Collections.Concurrent;
using EdgeMta.Server.Dns;

namespace EdgeMta.Server.Tests.Dns;

internal sealed class ResolverProbe : IDnsAnswerSink
{
    private readonly ConcurrentDictionary<int, TaskCompletionSource<DnsAnswer>> _answers = new();
    private int _delivered;
    private int _duplicates;

    /// <summary>Answers delivered a second time for one token (the contract says never).</summary>
    public int Duplicates => Volatile.Read(ref _duplicates);

    public int Delivered => Volatile.Read(ref _delivered);

    public Task<DnsAnswer> Ask(IDnsResolver resolver, string name, int token = 0)
    {
        Task<DnsAnswer> task = Slot(token).Task;
        resolver.Query(name, this, token);
        return task;
    }

    /// <summary>The answer, waited for with a bound that only a hang reaches.</summary>
    public static DnsAnswer Await(Task<DnsAnswer> task)
    {
        Assert.True(task.Wait(ServerHarness.Bound), "no answer delivered");
        return task.Result;
    }

    public void OnAnswer(int token, DnsAnswer answer)
    {
        Interlocked.Increment(ref _delivered);
        if (!Slot(token).TrySetResult(answer)) Interlocked.Increment(ref _duplicates);
    }

    private TaskCompletionSource<DnsAnswer> Slot(int token) =>
        _answers.GetOrAdd(token, _ => new TaskCompletionSource<DnsAnswer>(TaskCreationOptions.RunContinuationsAsynchronously));
}
