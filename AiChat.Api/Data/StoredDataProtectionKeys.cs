using System.Data.Common;
using System.Xml.Linq;
using Dapper;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace AiChat.Api.Data;

/// <summary>
/// Data Protection's key ring in the store's <c>data_protection_keys</c> table, so replicas on one Postgres protect and
/// unprotect with the same keys (the equivalent of EF Core's <c>PersistKeysToDbContext</c>). Keys an earlier version
/// kept in the data folder are copied in once, when the table is still empty.
/// </summary>
public sealed class StoredDataProtectionKeys(AiChatDb db, string legacyFolder, TimeProvider time) : IXmlRepository
{
    private const string SelectAll = "SELECT xml FROM data_protection_keys ORDER BY created_at, name";

    // Data Protection calls these synchronously, and rarely: when it loads or refreshes the key ring, or adds a key.
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var connection = db.OpenAsync().AsTask().GetAwaiter().GetResult();
        var rows = connection.Query<string>(SelectAll).ToList();
        if (rows.Count == 0 && Directory.Exists(legacyFolder))
        {
            foreach (var file in Directory.EnumerateFiles(legacyFolder, "*.xml"))
            {
                Insert(connection, Path.GetFileNameWithoutExtension(file), File.ReadAllText(file));
            }

            rows = connection.Query<string>(SelectAll).ToList();
        }

        return rows.Select(xml => XElement.Parse(xml)).ToList();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        using var connection = db.OpenAsync().AsTask().GetAwaiter().GetResult();
        Insert(connection, friendlyName, element.ToString(SaveOptions.DisableFormatting));
    }

    private void Insert(DbConnection connection, string name, string xml) =>
        connection.Execute(
            "INSERT INTO data_protection_keys (name, xml, created_at) VALUES (@name, @xml, @createdAt) ON CONFLICT (name) DO NOTHING",
            new { name, xml, createdAt = time.GetUtcNow() });
}
