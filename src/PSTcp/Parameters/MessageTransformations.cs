using System;
using System.Collections;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Lets -Delimiter keep the string/byte[] distinction: a string (or char) stays text, matched
    /// as the connection's encoding writes it; a byte[], a number or a list of numbers becomes
    /// bytes, matched as is.
    /// </summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class DelimiterTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            var value = inputData is PSObject pso ? pso.BaseObject : inputData;
            switch (value)
            {
                case null:
                    return null;
                case string text:
                    return text;
                case char c:
                    return c.ToString();
                case byte[] bytes:
                    return bytes;
                case IList list:
                    var result = new byte[list.Count];
                    for (int i = 0; i < list.Count; i++)
                    {
                        result[i] = ToByte(list[i]);
                    }

                    return result;
                default:
                    return new[] { ToByte(value) };
            }
        }

        private static byte ToByte(object item)
        {
            try
            {
                return LanguagePrimitives.ConvertTo<byte>(item is PSObject p ? p.BaseObject : item);
            }
            catch (PSInvalidCastException)
            {
                throw new ArgumentTransformationMetadataException(
                    $"'{item}' is not a byte (0 to 255). -Delimiter takes a string, or bytes such as 0 or [byte[]](13, 10).");
            }
        }
    }

    /// <summary>
    /// Keeps a byte[] given to -Message (or piped with the unary comma) as one message: without
    /// this, binding to object[] would make each byte a message of its own.
    /// </summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class MessageTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            var value = inputData is PSObject pso ? pso.BaseObject : inputData;
            // One message (a string, or a byte[]) becomes the object[] the parameter is here:
            // PowerShell's own conversion of a scalar to an array (and its per-element checks)
            // cost a Send-TcpMessage call as much as the send itself.
            return value is byte[] || value is string ? new object[] { value } : inputData;
        }
    }

    /// <summary>
    /// One line (a string) becomes the string[] -Line is, here: PowerShell's own conversion of a
    /// scalar to an array cost a `Send-TcpLine -Line x` call a fifth of its time. Anything else
    /// is left to PowerShell.
    /// </summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class LineTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData) =>
            (inputData is PSObject pso ? pso.BaseObject : inputData) is string text ? new[] { text } : inputData;
    }
}
