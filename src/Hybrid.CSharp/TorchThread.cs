using System.Collections.Concurrent;

namespace Hybrid.CSharp;

/// <summary>
/// The one thread on which the facade does all its torch work: a work queue served in order by a dedicated
/// background thread. Work queued from several threads runs one item after another, so each run (seeded at its
/// start) gives the same result as when it runs alone; work queued from the torch thread itself runs inline.
/// </summary>
internal static class TorchThread
{
    private static readonly BlockingCollection<Action> Queue = new();
    private static readonly Thread Worker = Start();

    private static Thread Start()
    {
        var thread = new Thread(Serve) { IsBackground = true, Name = "Hybrid torch thread" };
        thread.Start();
        return thread;
    }

    private static void Serve()
    {
        foreach (var work in Queue.GetConsumingEnumerable())
            work();
    }

    /// <summary>True on the torch thread.</summary>
    internal static bool IsCurrent => Thread.CurrentThread == Worker;

    /// <summary>Queues <paramref name="work"/> on the torch thread; the task ends with its result or its exception
    /// (an <see cref="OperationCanceledException"/> too, with its message).</summary>
    internal static Task<T> RunAsync<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Queue.Add(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        return done.Task;
    }

    /// <summary>Runs <paramref name="work"/> on the torch thread and waits for it (inline when already on it);
    /// its exception is rethrown as it was raised.</summary>
    internal static T Run<T>(Func<T> work) => IsCurrent ? work() : RunAsync(work).GetAwaiter().GetResult();

    /// <summary>Runs <paramref name="work"/> on the torch thread and waits for it (inline when already on it).</summary>
    internal static void Run(Action work) =>
        Run(() =>
        {
            work();
            return true;
        });
}
