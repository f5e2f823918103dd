using AiChat.Api.Data;

namespace AiChat.Tests.Infrastructure;

/// <summary>
/// One API per store for a whole test class, started on first use with the class's own setup: for classes whose tests
/// only read, or write data of their own, so the store-matrix costs two starts instead of two per test.
/// </summary>
public sealed class ApisPerStore : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<StoreProvider, ApiFactory> _apis = [];

    public async Task<ApiFactory> GetAsync(StoreProvider provider, PostgresServer postgres, Func<ApiFactory> create)
    {
        await _gate.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (!_apis.TryGetValue(provider, out var api))
            {
                _apis[provider] = api = await create().OnAsync(provider, postgres);
            }

            return api;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var api in _apis.Values)
        {
            await api.DisposeAsync();
        }

        _gate.Dispose();
    }
}
