using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
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

    /// <summary>
    /// Lets every TimeSpan parameter take seconds as a bare number (5, 0.5, '5'), a number with
    /// a unit ('250ms', '5s', '2m', '1h', '1d') or a TimeSpan string ('00:00:05'); without it
    /// PowerShell reads 5 as five ticks. Values out of range are not refused here: a binding
    /// error can't carry the InvalidArgument id, so TcpCmdlet checks the bound values (zero,
    /// under a millisecond, overflow) before the cmdlet runs. Overflow becomes MaxValue so that
    /// check sees it.
    /// </summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class TimeSpanTransformationAttribute : ArgumentTransformationAttribute
    {
        /// <summary>Zero has a meaning for this parameter (IdleTimeout: never).</summary>
        public bool AllowZero { get; set; }

        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            var value = inputData is PSObject pso ? pso.BaseObject : inputData;
            switch (value)
            {
                case TimeSpan span:
                    return span;
                case object number when IsNumber(number):
                    return FromSeconds(Convert.ToDouble(number, CultureInfo.InvariantCulture));
                case string text:
                    return Parse(text);
                default:
                    return inputData;
            }
        }

        /// <summary>Any of .NET's numeric types, integral or not: each means seconds.</summary>
        private static bool IsNumber(object value)
        {
            var code = Type.GetTypeCode(value.GetType());
            return code >= TypeCode.SByte && code <= TypeCode.Decimal;
        }

        private static readonly (string Suffix, double Seconds)[] Units =
        {
            ("ms", 0.001), ("s", 1), ("sec", 1), ("m", 60), ("min", 60), ("h", 3600), ("d", 86400),
        };

        internal static TimeSpan Parse(string text)
        {
            var trimmed = text.Trim();
            if (TryNumber(trimmed, 1, out var plain)) return plain;
            foreach (var (suffix, seconds) in Units)
            {
                if (trimmed.Length > suffix.Length
                    && trimmed.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                    && TryNumber(trimmed.Substring(0, trimmed.Length - suffix.Length).TrimEnd(), seconds, out var span))
                {
                    return span;
                }
            }

            // '00:00:05', '1.02:03:04'; a bare '5' never gets here (TimeSpan.Parse reads it as days).
            if (trimmed.IndexOf(':') >= 0 && TimeSpan.TryParse(trimmed, CultureInfo.InvariantCulture, out var parsed))
            {
                return parsed;
            }

            throw new ArgumentTransformationMetadataException(
                $"'{text}' is not a time. Use seconds (5, 0.5), a number with a unit ('250ms', '5s', '2m', '1h') or 'hh:mm:ss' ('00:00:05').");
        }

        private static bool TryNumber(string text, double unitSeconds, out TimeSpan span)
        {
            span = default;
            if (text.Length == 0 || !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }

            span = FromSeconds(number * unitSeconds);
            return true;
        }

        /// <summary>Seconds to a TimeSpan; out of range saturates, for TcpCmdlet to refuse.</summary>
        internal static TimeSpan FromSeconds(double seconds)
        {
            if (double.IsNaN(seconds))
            {
                throw new ArgumentTransformationMetadataException("NaN is not a time.");
            }

            double ticks = Math.Round(seconds * TimeSpan.TicksPerSecond);
            if (ticks >= TimeSpan.MaxValue.Ticks) return TimeSpan.MaxValue;
            if (ticks <= TimeSpan.MinValue.Ticks) return TimeSpan.MinValue;
            return TimeSpan.FromTicks((long)ticks);
        }
    }

    /// <summary>
    /// Lets -Direction take Toxiproxy's words too: Upstream (what clients send, toward the
    /// target) is ClientToTarget, Downstream (what the target answers) is TargetToClient.
    /// </summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class FaultDirectionTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            var value = inputData is PSObject ps ? ps.BaseObject : inputData;
            if (value is string text)
            {
                if (string.Equals(text.Trim(), "Upstream", StringComparison.OrdinalIgnoreCase)) return TcpFaultDirection.ClientToTarget;
                if (string.Equals(text.Trim(), "Downstream", StringComparison.OrdinalIgnoreCase)) return TcpFaultDirection.TargetToClient;
            }

            return inputData;
        }
    }

    /// <summary>Lets -Server take a TcpServer, its Id or its Name.</summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class ServerTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData) =>
            ObjectLookup.TransformEach(inputData, value => ObjectLookup.Resolve(value, "server", TcpRegistry.FindServer, () => TcpRegistry.Servers, s => s.Name));
    }

    /// <summary>Lets -Connection take a TcpConnection, its Id or its Name.</summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class ConnectionTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData) =>
            ObjectLookup.TransformEach(inputData, value => ObjectLookup.Resolve(value, "connection", TcpRegistry.FindConnection, () => TcpRegistry.Clients, c => c.Name));
    }

    /// <summary>Turns ids and names into the objects they name, for the transformation attributes.</summary>
    internal static class ObjectLookup
    {
        // The registry is listed only for a name: listing it takes every lock of its dictionary,
        // which cost a call that passes the object itself (the common case) a tenth of its time.
        public static object Resolve<T>(object value, string noun, Func<int, T> byId, Func<IEnumerable<T>> all, Func<T, string> nameOf)
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
                    var matches = all().Where(x => string.Equals(nameOf(x), name, StringComparison.OrdinalIgnoreCase)).ToList();
                    if (matches.Count == 1) return matches[0];
                    if (matches.Count == 0) return value;
                    throw NotFound($"Several {noun}s are named '{name}'; use -Id.");
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
