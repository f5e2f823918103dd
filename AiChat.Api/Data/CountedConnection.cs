using System.Data;
using System.Data.Common;

namespace AiChat.Api.Data;

/// <summary>
/// A provider connection that counts the commands run on it into <see cref="StoreMetrics"/>. Everything else is the
/// provider's own: the commands, parameters, readers and transactions it creates are the provider's, wrapped only
/// where a wrapper must stand in (so a command knows its counter and a transaction knows its connection).
/// </summary>
internal sealed class CountedConnection : DbConnection
{
    private readonly StoreMetrics _metrics;

    public CountedConnection(DbConnection inner, StoreMetrics metrics)
    {
        Inner = inner;
        _metrics = metrics;
        // Nothing unmanaged here: the provider connection has its own finalizer, so this one need not be queued.
        GC.SuppressFinalize(this);
    }

    public DbConnection Inner { get; }

    [System.Diagnostics.CodeAnalysis.AllowNull]
    public override string ConnectionString
    {
        get => Inner.ConnectionString;
        set => Inner.ConnectionString = value;
    }

    public override int ConnectionTimeout => Inner.ConnectionTimeout;

    public override string Database => Inner.Database;

    public override string DataSource => Inner.DataSource;

    public override string ServerVersion => Inner.ServerVersion;

    public override ConnectionState State => Inner.State;

    public override bool CanCreateBatch => Inner.CanCreateBatch;

    protected override DbProviderFactory? DbProviderFactory => DbProviderFactories.GetFactory(Inner);

    public override event StateChangeEventHandler? StateChange
    {
        add => Inner.StateChange += value;
        remove => Inner.StateChange -= value;
    }

    public override void Open() => Inner.Open();

    public override Task OpenAsync(CancellationToken cancellationToken) => Inner.OpenAsync(cancellationToken);

    public override void Close() => Inner.Close();

    public override Task CloseAsync() => Inner.CloseAsync();

    public override void ChangeDatabase(string databaseName) => Inner.ChangeDatabase(databaseName);

    public override Task ChangeDatabaseAsync(string databaseName, CancellationToken cancellationToken = default) =>
        Inner.ChangeDatabaseAsync(databaseName, cancellationToken);

    public override void EnlistTransaction(System.Transactions.Transaction? transaction) => Inner.EnlistTransaction(transaction);

    public override DataTable GetSchema() => Inner.GetSchema();

    public override DataTable GetSchema(string collectionName) => Inner.GetSchema(collectionName);

    public override DataTable GetSchema(string collectionName, string?[] restrictionValues) => Inner.GetSchema(collectionName, restrictionValues);

    public override Task<DataTable> GetSchemaAsync(CancellationToken cancellationToken = default) => Inner.GetSchemaAsync(cancellationToken);

    public override Task<DataTable> GetSchemaAsync(string collectionName, CancellationToken cancellationToken = default) =>
        Inner.GetSchemaAsync(collectionName, cancellationToken);

    public override Task<DataTable> GetSchemaAsync(string collectionName, string?[] restrictionValues, CancellationToken cancellationToken = default) =>
        Inner.GetSchemaAsync(collectionName, restrictionValues, cancellationToken);

    protected override DbCommand CreateDbCommand() => new CountedCommand(Inner.CreateCommand(), _metrics);

    protected override DbBatch CreateDbBatch() => new CountedBatch(Inner.CreateBatch(), this, _metrics);

    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel) =>
        new CountedTransaction(Inner.BeginTransaction(isolationLevel), this, _metrics);

    protected override async ValueTask<DbTransaction> BeginDbTransactionAsync(IsolationLevel isolationLevel, CancellationToken cancellationToken) =>
        new CountedTransaction(await Inner.BeginTransactionAsync(isolationLevel, cancellationToken), this, _metrics);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => Inner.DisposeAsync();

    internal static DbConnection? Unwrap(DbConnection? connection) => connection is CountedConnection counted ? counted.Inner : connection;
}

/// <summary>A provider command that counts each execution (one statement text, one round trip on Postgres).</summary>
internal sealed class CountedCommand : DbCommand
{
    private readonly DbCommand _inner;
    private readonly StoreMetrics _metrics;
    private DbTransaction? _transaction;

    public CountedCommand(DbCommand inner, StoreMetrics metrics)
    {
        _inner = inner;
        _metrics = metrics;
        GC.SuppressFinalize(this);
    }

    [System.Diagnostics.CodeAnalysis.AllowNull]
    public override string CommandText
    {
        get => _inner.CommandText;
        set => _inner.CommandText = value;
    }

    public override int CommandTimeout
    {
        get => _inner.CommandTimeout;
        set => _inner.CommandTimeout = value;
    }

    public override CommandType CommandType
    {
        get => _inner.CommandType;
        set => _inner.CommandType = value;
    }

    public override bool DesignTimeVisible
    {
        get => _inner.DesignTimeVisible;
        set => _inner.DesignTimeVisible = value;
    }

    public override UpdateRowSource UpdatedRowSource
    {
        get => _inner.UpdatedRowSource;
        set => _inner.UpdatedRowSource = value;
    }

    // The provider's connection, not the wrapper: Dapper picks provider features by the command's connection type
    // (on Npgsql a list parameter is sent as one array instead of being expanded).
    protected override DbConnection? DbConnection
    {
        get => _inner.Connection;
        set => _inner.Connection = CountedConnection.Unwrap(value);
    }

    protected override DbParameterCollection DbParameterCollection => _inner.Parameters;

    protected override DbTransaction? DbTransaction
    {
        get => _transaction ?? _inner.Transaction;
        set
        {
            _transaction = value;
            _inner.Transaction = CountedTransaction.Unwrap(value);
        }
    }

    public override void Cancel() => _inner.Cancel();

    public override void Prepare() => _inner.Prepare();

    public override Task PrepareAsync(CancellationToken cancellationToken = default) => _inner.PrepareAsync(cancellationToken);

    protected override DbParameter CreateDbParameter() => _inner.CreateParameter();

    public override int ExecuteNonQuery()
    {
        _metrics.CommandExecuted();
        return _inner.ExecuteNonQuery();
    }

    public override Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken)
    {
        _metrics.CommandExecuted();
        return _inner.ExecuteNonQueryAsync(cancellationToken);
    }

    public override object? ExecuteScalar()
    {
        _metrics.CommandExecuted();
        return _inner.ExecuteScalar();
    }

    public override Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken)
    {
        _metrics.CommandExecuted();
        return _inner.ExecuteScalarAsync(cancellationToken);
    }

    protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior)
    {
        _metrics.CommandExecuted();
        return _inner.ExecuteReader(behavior);
    }

    protected override Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken)
    {
        _metrics.CommandExecuted();
        return _inner.ExecuteReaderAsync(behavior, cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => _inner.DisposeAsync();
}

/// <summary>
/// A provider batch that counts each execution as one command (one round trip, however many statements it holds).
/// </summary>
internal sealed class CountedBatch(DbBatch inner, CountedConnection connection, StoreMetrics metrics) : DbBatch
{
    private DbConnection? _connection = connection;
    private DbTransaction? _transaction;

    protected override DbBatchCommandCollection DbBatchCommands => inner.BatchCommands;

    public override int Timeout
    {
        get => inner.Timeout;
        set => inner.Timeout = value;
    }

    protected override DbConnection? DbConnection
    {
        get => _connection;
        set
        {
            _connection = value;
            inner.Connection = CountedConnection.Unwrap(value);
        }
    }

    protected override DbTransaction? DbTransaction
    {
        get => _transaction ?? inner.Transaction;
        set
        {
            _transaction = value;
            inner.Transaction = CountedTransaction.Unwrap(value);
        }
    }

    public override void Cancel() => inner.Cancel();

    public override void Prepare() => inner.Prepare();

    public override Task PrepareAsync(CancellationToken cancellationToken = default) => inner.PrepareAsync(cancellationToken);

    protected override DbBatchCommand CreateDbBatchCommand() => inner.CreateBatchCommand();

    public override int ExecuteNonQuery()
    {
        metrics.CommandExecuted();
        return inner.ExecuteNonQuery();
    }

    public override Task<int> ExecuteNonQueryAsync(CancellationToken cancellationToken = default)
    {
        metrics.CommandExecuted();
        return inner.ExecuteNonQueryAsync(cancellationToken);
    }

    public override object? ExecuteScalar()
    {
        metrics.CommandExecuted();
        return inner.ExecuteScalar();
    }

    public override Task<object?> ExecuteScalarAsync(CancellationToken cancellationToken = default)
    {
        metrics.CommandExecuted();
        return inner.ExecuteScalarAsync(cancellationToken);
    }

    protected override DbDataReader ExecuteDbDataReader(CommandBehavior behavior)
    {
        metrics.CommandExecuted();
        return inner.ExecuteReader(behavior);
    }

    protected override Task<DbDataReader> ExecuteDbDataReaderAsync(CommandBehavior behavior, CancellationToken cancellationToken)
    {
        metrics.CommandExecuted();
        return inner.ExecuteReaderAsync(behavior, cancellationToken);
    }

    public override void Dispose() => inner.Dispose();

    public override ValueTask DisposeAsync() => inner.DisposeAsync();
}

/// <summary>
/// A provider transaction that answers with the counted connection and counts its commit, rollback and savepoint
/// statements (each is a round trip on Postgres; Npgsql sends BEGIN with the first command, so that one is not counted).
/// </summary>
internal sealed class CountedTransaction(DbTransaction inner, CountedConnection connection, StoreMetrics metrics) : DbTransaction
{
    public DbTransaction Inner { get; } = inner;

    protected override DbConnection? DbConnection => Inner.Connection is null ? null : connection;

    public override IsolationLevel IsolationLevel => Inner.IsolationLevel;

    public override bool SupportsSavepoints => Inner.SupportsSavepoints;

    public override void Commit()
    {
        metrics.CommandExecuted();
        Inner.Commit();
    }

    public override Task CommitAsync(CancellationToken cancellationToken = default)
    {
        metrics.CommandExecuted();
        return Inner.CommitAsync(cancellationToken);
    }

    public override void Rollback()
    {
        metrics.CommandExecuted();
        Inner.Rollback();
    }

    public override Task RollbackAsync(CancellationToken cancellationToken = default)
    {
        metrics.CommandExecuted();
        return Inner.RollbackAsync(cancellationToken);
    }

    public override void Save(string savepointName)
    {
        metrics.CommandExecuted();
        Inner.Save(savepointName);
    }

    public override Task SaveAsync(string savepointName, CancellationToken cancellationToken = default)
    {
        metrics.CommandExecuted();
        return Inner.SaveAsync(savepointName, cancellationToken);
    }

    public override void Rollback(string savepointName)
    {
        metrics.CommandExecuted();
        Inner.Rollback(savepointName);
    }

    public override Task RollbackAsync(string savepointName, CancellationToken cancellationToken = default)
    {
        metrics.CommandExecuted();
        return Inner.RollbackAsync(savepointName, cancellationToken);
    }

    public override void Release(string savepointName)
    {
        metrics.CommandExecuted();
        Inner.Release(savepointName);
    }

    public override Task ReleaseAsync(string savepointName, CancellationToken cancellationToken = default)
    {
        metrics.CommandExecuted();
        return Inner.ReleaseAsync(savepointName, cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => Inner.DisposeAsync();

    internal static DbTransaction? Unwrap(DbTransaction? transaction) => transaction is CountedTransaction counted ? counted.Inner : transaction;
}
