using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>Lets -Encoding take names ('utf8', 'ascii', 'latin1', …), code pages or Encoding objects.</summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class EncodingTransformationAttribute : ArgumentTransformationAttribute
    {
        internal static readonly string[] Names =
            { "utf8", "utf8NoBOM", "utf8BOM", "ascii", "latin1", "unicode", "bigendianunicode", "utf32", "bigendianutf32" };

        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            var value = inputData is PSObject pso ? pso.BaseObject : inputData;
            switch (value)
            {
                case Encoding encoding:
                    return encoding;
                case int codePage:
                    return Encoding.GetEncoding(codePage);
                case string name:
                    return FromName(name);
                default:
                    return inputData;
            }
        }

        internal static Encoding FromName(string name)
        {
            switch (name.ToLowerInvariant())
            {
                case "utf8":
                case "utf-8":
                case "utf8nobom":
                case "default":
                    return ConnectionOptions.DefaultEncoding;
                case "utf8bom":
                    return new UTF8Encoding(true);
                case "ascii":
                    return Encoding.ASCII;
                case "latin1":
                case "iso-8859-1":
                    return Encoding.GetEncoding(28591);
                case "unicode":
                case "utf-16":
                    return Encoding.Unicode;
                case "bigendianunicode":
                    return Encoding.BigEndianUnicode;
                case "utf32":
                    return Encoding.UTF32;
                case "bigendianutf32":
                    return new UTF32Encoding(true, true);
                default:
                    try
                    {
                        return int.TryParse(name, out var codePage) ? Encoding.GetEncoding(codePage) : Encoding.GetEncoding(name);
                    }
                    catch (ArgumentException)
                    {
                        throw new ArgumentTransformationMetadataException(
                            $"'{name}' is not an encoding. Use one of: {string.Join(", ", Names)}, a code page number or an Encoding object.");
                    }
            }
        }
    }

    /// <summary>Lets -Server take a TcpServer, its Id or its Name.</summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class ServerTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData) =>
            ObjectLookup.TransformEach(inputData, value => ObjectLookup.Resolve(value, "server", TcpRegistry.FindServer, TcpRegistry.Servers, s => s.Name));
    }

    /// <summary>Lets -Connection take a TcpConnection, its Id or its Name.</summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class ConnectionTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData) =>
            ObjectLookup.TransformEach(inputData, value => ObjectLookup.Resolve(value, "connection", TcpRegistry.FindConnection, TcpRegistry.Clients, c => c.Name));
    }

    /// <summary>Turns ids and names into the objects they name, for the transformation attributes.</summary>
    internal static class ObjectLookup
    {
        public static object Resolve<T>(object value, string noun, Func<int, T> byId, IEnumerable<T> all, Func<T, string> nameOf)
            where T : class
        {
            switch (value)
            {
                case T item:
                    return item;
                case int id:
                    return byId(id) ?? throw NotFound($"No {noun} has Id {id}.");
                case string text when int.TryParse(text, out var id):
                    return byId(id) ?? throw NotFound($"No {noun} has Id {id}.");
                case string name:
                    var matches = all.Where(x => string.Equals(nameOf(x), name, StringComparison.OrdinalIgnoreCase)).ToList();
                    if (matches.Count == 1) return matches[0];
                    throw NotFound(matches.Count == 0 ? $"No {noun} is named '{name}'." : $"Several {noun}s are named '{name}'; use -Id.");
                default:
                    return value;
            }
        }

        public static object TransformEach(object inputData, Func<object, object> resolve)
        {
            var value = inputData is PSObject pso ? pso.BaseObject : inputData;
            if (value is IList list && !(value is string))
            {
                var result = new List<object>(list.Count);
                foreach (var item in list)
                {
                    result.Add(resolve(item is PSObject p ? p.BaseObject : item));
                }

                return result.ToArray();
            }

            return resolve(value);
        }

        private static Exception NotFound(string message) => new ArgumentTransformationMetadataException(message);
    }
}
