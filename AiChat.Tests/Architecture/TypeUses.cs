using Mono.Cecil;
using Mono.Cecil.Cil;

namespace AiChat.Tests.Architecture;

/// <summary>
/// One use of a type (or of a namespace, by a <c>using</c> directive) by a type of the assembly read.
/// <see cref="Source"/> is the type the use sits in: compiler-generated closures and state machines are nested in
/// the type whose code they came from, so <see cref="SourceNamespace"/> is that type's.
/// </summary>
public sealed record TypeUse(TypeDefinition Source, string TargetAssembly, string TargetNamespace, string TargetName, string Where)
{
    /// <summary>True when only a <c>using</c> directive names the target.</summary>
    public bool IsUsing => Where.StartsWith("using ", StringComparison.Ordinal);

    public string SourceNamespace => Outermost(Source).Namespace;

    public string Example => $"{Source.FullName} → {TargetName} ({Where})";

    public static TypeReference Outermost(TypeReference type)
    {
        while (type.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }

        return type;
    }
}

/// <summary>
/// Reads every type use in a compiled assembly's metadata and IL: base types, interfaces, generic arguments and
/// constraints, fields, properties, events, method signatures and overrides, attributes (with their <c>typeof</c>
/// arguments), and method bodies (locals, catch clauses, and the types, methods and fields instructions name).
/// From the portable PDB it adds the <c>using</c> directives in scope of each method body, which are the only trace
/// of constants (inlined by the compiler) taken from another namespace.
/// </summary>
public static class TypeUses
{
    public static ModuleDefinition Read(string assemblyPath)
    {
        var resolver = new DefaultAssemblyResolver();
        foreach (var directory in new[] { Path.GetDirectoryName(assemblyPath)!, AppContext.BaseDirectory, Path.GetDirectoryName(typeof(object).Assembly.Location)!, Path.GetDirectoryName(typeof(Microsoft.AspNetCore.Builder.WebApplication).Assembly.Location)! }.Distinct())
        {
            resolver.AddSearchDirectory(directory);
        }

        return ModuleDefinition.ReadModule(assemblyPath, new ReaderParameters { AssemblyResolver = resolver, ReadSymbols = true });
    }

    public static List<TypeUse> Of(ModuleDefinition module)
    {
        var uses = new List<TypeUse>();
        foreach (var type in module.GetTypes())
        {
            new Collector(type, uses).VisitType();
        }

        return uses;
    }

    private sealed class Collector(TypeDefinition source, List<TypeUse> uses)
    {
        public void VisitType()
        {
            Attributes(source, "attribute");
            Type(source.BaseType, "base type");
            foreach (var implemented in source.Interfaces)
            {
                Type(implemented.InterfaceType, "interface");
                Attributes(implemented, "interface attribute");
            }

            GenericParameters(source, "type parameter");
            foreach (var field in source.Fields)
            {
                Type(field.FieldType, $"field {field.Name}");
                Attributes(field, $"field {field.Name}");
            }

            foreach (var property in source.Properties)
            {
                Type(property.PropertyType, $"property {property.Name}");
                Parameters(property.Parameters, $"property {property.Name}");
                Attributes(property, $"property {property.Name}");
            }

            foreach (var @event in source.Events)
            {
                Type(@event.EventType, $"event {@event.Name}");
                Attributes(@event, $"event {@event.Name}");
            }

            foreach (var method in source.Methods)
            {
                Method(method);
            }
        }

        private void Method(MethodDefinition method)
        {
            var signature = $"signature of {method.Name}";
            Type(method.ReturnType, signature);
            Attributes(method, $"attribute on {method.Name}");
            Attributes(method.MethodReturnType, $"attribute on {method.Name}");
            Parameters(method.Parameters, signature);
            GenericParameters(method, signature);
            foreach (var overridden in method.Overrides)
            {
                MethodReference(overridden, signature);
            }

            if (!method.HasBody)
            {
                return;
            }

            var body = $"body of {method.Name}";
            foreach (var variable in method.Body.Variables)
            {
                Type(variable.VariableType, body);
            }

            foreach (var handler in method.Body.ExceptionHandlers)
            {
                Type(handler.CatchType, body);
            }

            foreach (var instruction in method.Body.Instructions)
            {
                switch (instruction.Operand)
                {
                    case TypeReference type:
                        Type(type, body);
                        break;
                    case MethodReference called:
                        MethodReference(called, body);
                        break;
                    case FieldReference field:
                        Type(field.DeclaringType, body);
                        Type(field.FieldType, body);
                        break;
                    case CallSite site:
                        Type(site.ReturnType, body);
                        Parameters(site.Parameters, body);
                        break;
                }
            }

            for (var import = method.DebugInformation?.Scope?.Import; import is not null; import = import.Parent)
            {
                foreach (var target in import.Targets)
                {
                    if (target.Type is not null)
                    {
                        Type(target.Type, $"using in {method.Name}");
                    }
                    else if (!string.IsNullOrEmpty(target.Namespace))
                    {
                        uses.Add(new TypeUse(source, target.AssemblyReference?.Name ?? "", target.Namespace, $"using {target.Namespace}", $"using in {method.Name}"));
                    }
                }
            }
        }

        private void MethodReference(MethodReference method, string where)
        {
            Type(method.DeclaringType, where);
            Type(method.ReturnType, where);
            Parameters(method.Parameters, where);
            if (method is GenericInstanceMethod generic)
            {
                foreach (var argument in generic.GenericArguments)
                {
                    Type(argument, where);
                }
            }
        }

        private void Parameters(IEnumerable<ParameterDefinition> parameters, string where)
        {
            foreach (var parameter in parameters)
            {
                Type(parameter.ParameterType, where);
                Attributes(parameter, where);
            }
        }

        private void GenericParameters(IGenericParameterProvider provider, string where)
        {
            foreach (var parameter in provider.GenericParameters)
            {
                Attributes(parameter, where);
                foreach (var constraint in parameter.Constraints)
                {
                    Type(constraint.ConstraintType, where);
                    Attributes(constraint, where);
                }
            }
        }

        private void Attributes(ICustomAttributeProvider provider, string where)
        {
            if (!provider.HasCustomAttributes)
            {
                return;
            }

            foreach (var attribute in provider.CustomAttributes)
            {
                MethodReference(attribute.Constructor, where);
                foreach (var argument in attribute.ConstructorArguments)
                {
                    Argument(argument, where);
                }

                foreach (var named in attribute.Fields.Concat(attribute.Properties))
                {
                    Argument(named.Argument, where);
                }
            }
        }

        private void Argument(CustomAttributeArgument argument, string where)
        {
            Type(argument.Type, where);
            switch (argument.Value)
            {
                case TypeReference type:
                    Type(type, where);
                    break;
                case CustomAttributeArgument boxed:
                    Argument(boxed, where);
                    break;
                case CustomAttributeArgument[] array:
                    foreach (var element in array)
                    {
                        Argument(element, where);
                    }

                    break;
            }
        }

        private void Type(TypeReference? type, string where)
        {
            switch (type)
            {
                case null or GenericParameter:
                    return;
                case GenericInstanceType generic:
                    Type(generic.ElementType, where);
                    foreach (var argument in generic.GenericArguments)
                    {
                        Type(argument, where);
                    }

                    return;
                case FunctionPointerType pointer:
                    Type(pointer.ReturnType, where);
                    Parameters(pointer.Parameters, where);
                    return;
                case IModifierType modified:
                    Type(modified.ModifierType, where);
                    Type(modified.ElementType, where);
                    return;
                case TypeSpecification specification:
                    Type(specification.ElementType, where);
                    return;
            }

            var outermost = TypeUse.Outermost(type);
            if (outermost.Namespace.Length == 0 && outermost.Name.StartsWith('<'))
            {
                return; // the compiler's own helpers (anonymous types, collection literals, data blocks): their arguments were visited
            }

            var assembly = type.Scope switch
            {
                ModuleDefinition own => own.Assembly.Name.Name,
                AssemblyNameReference reference => reference.Name,
                var other => other.Name,
            };
            uses.Add(new TypeUse(source, assembly, outermost.Namespace, type.FullName, where));
        }
    }
}
