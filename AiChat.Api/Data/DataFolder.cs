namespace AiChat.Api.Data;

/// <summary>The API's data folder (<c>Store:DataDirectory</c>): the SQLite file and the keys the API creates for itself.</summary>
public static class DataFolder
{
    public static string Resolve(IConfiguration configuration, IHostEnvironment environment)
    {
        var directory = configuration[$"{StoreOptions.Section}:{nameof(StoreOptions.DataDirectory)}"] ?? new StoreOptions().DataDirectory;
        return Path.IsPathRooted(directory) ? directory : Path.Combine(environment.ContentRootPath, directory);
    }

    /// <summary>
    /// The content of a secret file in the folder's <c>keys</c> directory, created on first use with <paramref name="create"/>
    /// and readable by this process's user only. Instances sharing the folder race safely: the first writer wins.
    /// </summary>
    public static (string Content, bool Created) ReadOrCreateSecret(IConfiguration configuration, IHostEnvironment environment, string fileName, Func<string> create)
    {
        var path = Path.Combine(Resolve(configuration, environment), "keys", fileName);
        var created = false;
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            try
            {
                using var writer = new StreamWriter(path, options);
                writer.Write(create());
                created = true;
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another instance sharing the folder wrote it first; use theirs.
            }
        }

        return (File.ReadAllText(path), created);
    }
}
