using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

/// <summary>
/// Runs turns on the server, independent of the requests that started them: a bounded queue (full → the caller answers
/// 503) feeding a fixed number of workers, each running one turn at a time with <see cref="TurnRunner"/>. A client that
/// goes away does not stop its turn; a cancel does. On shutdown it waits for running turns up to a grace period, then
/// cancels the rest, which their runners close as failed.
/// </summary>
public sealed partial class TurnQueue(TurnRunner runner, IOptions<ChatOptions> options, ILogger<TurnQueue> logger) : IHostedService
{
    private readonly Channel<TurnWork> _queue = Channel.CreateUnbounded<TurnWork>();

    // A place in the queue is taken before the turn is stored and given back when a worker picks the turn up.
    private readonly SemaphoreSlim _places = new(Math.Max(1, options.Value.QueueCapacity));

    private readonly ConcurrentDictionary<Guid, CancellationTokenSource> _running = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task[] _workers = [];

    public int Running => _running.Count;

    /// <summary>Takes a place in the queue for a turn about to be stored; false when the queue is full.</summary>
    public bool TryReserve() => !_stopping.IsCancellationRequested && _places.Wait(0);

    /// <summary>Gives back a reserved place whose turn was not stored after all.</summary>
    public void Unreserve() => _places.Release();

    /// <summary>Queues a stored turn into the place reserved for it.</summary>
    public void Enqueue(TurnWork work)
    {
        if (!_queue.Writer.TryWrite(work))
        {
            _places.Release();
            throw new InvalidOperationException("The turn queue is closed.");
        }
    }

    /// <summary>Cancels a turn running on this instance; other instances notice the stored request at their next heartbeat.</summary>
    public void Cancel(Guid turnId)
    {
        if (_running.TryGetValue(turnId, out var cancellation))
        {
            cancellation.Cancel();
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _workers = Enumerable.Range(0, Math.Max(1, options.Value.Workers)).Select(_ => Task.Run(WorkAsync, CancellationToken.None)).ToArray();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        var grace = Task.Delay(options.Value.ShutdownGrace, CancellationToken.None);
        await Task.WhenAny(Task.WhenAll(_workers), grace);
        await _stopping.CancelAsync(); // turns still running now are closed as failed by their runners
        await Task.WhenAll(_workers).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task WorkAsync()
    {
        await foreach (var work in _queue.Reader.ReadAllAsync(CancellationToken.None))
        {
            _places.Release();
            using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            _running[work.Turn.Id] = cancellation;
            try
            {
                await runner.RunAsync(work, cancellation, _stopping.Token);
            }
            catch (Exception ex)
            {
                LogTurnCrashed(logger, ex, work.Turn.Id);
            }
            finally
            {
                _running.TryRemove(work.Turn.Id, out _);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Turn {TurnId} crashed outside its runner")]
    private static partial void LogTurnCrashed(ILogger logger, Exception exception, Guid turnId);
}
