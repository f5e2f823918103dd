namespace AiChat.Tests.Architecture.Samples.Uses;

// Each type uses the Used namespace in exactly one way (and names it relative to the enclosing namespace, so no using
// directive is in scope); the reader must see every one of them.
public class BaseTypeSample : Used.Base;

public class InterfaceSample : Used.IMarker;

public class GenericArgumentSample : List<Used.Thing>;

public class GenericConstraintSample<T>
    where T : Used.Thing;

public class FieldSample
{
    public Used.Thing? Field;
}

public class ArrayFieldSample
{
    public Used.Thing[]? Field;
}

public class PropertySample
{
    public Used.Thing? Property => null;
}

public class EventSample
{
    public event Used.Handler? Happened
    {
        add { }
        remove { }
    }
}

public class ParameterSample
{
    public void Take(Used.Thing thing) => GC.KeepAlive(thing);
}

public class ReturnTypeSample
{
    public Used.Thing? Give() => null;
}

public class GenericMethodConstraintSample
{
    public void Take<T>(T value)
        where T : Used.IMarker => GC.KeepAlive(value);
}

[Used.Mark]
public class AttributeSample;

[System.Diagnostics.DebuggerTypeProxy(typeof(Used.Thing))]
public class TypeofInAttributeSample;

public class ParameterAttributeSample
{
    public void Take([Used.Mark] int value) => GC.KeepAlive(value);
}

public class ConstructionSample
{
    public object Make() => new Used.Thing();
}

public class StaticCallSample
{
    public int Call() => Used.Thing.Count();
}

public class StaticFieldSample
{
    public object Read() => Used.Thing.Shared;
}

public class TypeofSample
{
    public Type Name() => typeof(Used.Thing);
}

public class CastSample
{
    public bool Test(object value) => value is Used.Thing;
}

public class DefaultValueSample
{
    public object Make() => default(Used.Value);
}

public class CatchSample
{
    public int Guard(Func<int> run)
    {
        try
        {
            return run();
        }
        catch (Used.Failure)
        {
            return 0;
        }
    }
}

public class GenericMethodArgumentSample
{
    public object Make() => Activator.CreateInstance<Used.Thing>();
}

public class MethodGroupSample
{
    public Func<int> Make() => Used.Thing.Count;
}

public class LambdaSample
{
    public Func<object> Make() => () => new Used.Thing();
}

public class ClosureSample
{
    public Func<int> Make(int offset) => () => Used.Thing.Count() + offset;
}

public class LocalFunctionSample
{
    public int Run()
    {
        return Local();

        static int Local() => Used.Thing.Count();
    }
}

public class AsyncSample
{
    public async Task<int> RunAsync()
    {
        await Task.Yield();
        return Used.Thing.Count();
    }
}

public class IteratorSample
{
    public IEnumerable<int> Run()
    {
        yield return Used.Thing.Count();
    }
}

public class NestedTypeSample
{
    public class Inner : Used.Base;
}
