using System;
using System.Text;
using PSTcp.Framing;

namespace PSTcp
{
    /// <summary>
    /// Binary fields for scripts: reads integers at an offset of a byte array and builds their
    /// bytes, big-endian unless told otherwise (network order; BitConverter is little-endian on
    /// most machines), plus varints and zero-terminated strings. <c>[PSTcp.Bytes]::UInt32BE(5)</c>.
    /// </summary>
    public static class Bytes
    {
        public static ushort ReadUInt16(byte[] data, int offset, ByteOrder order = ByteOrder.BigEndian) => (ushort)Read(data, offset, 2, order);

        public static short ReadInt16(byte[] data, int offset, ByteOrder order = ByteOrder.BigEndian) => (short)Read(data, offset, 2, order);

        /// <summary>A 3-byte unsigned integer (MySQL's packet length, little-endian there).</summary>
        public static uint ReadUInt24(byte[] data, int offset, ByteOrder order = ByteOrder.BigEndian) => (uint)Read(data, offset, 3, order);

        public static uint ReadUInt32(byte[] data, int offset, ByteOrder order = ByteOrder.BigEndian) => (uint)Read(data, offset, 4, order);

        public static int ReadInt32(byte[] data, int offset, ByteOrder order = ByteOrder.BigEndian) => (int)Read(data, offset, 4, order);

        public static ulong ReadUInt64(byte[] data, int offset, ByteOrder order = ByteOrder.BigEndian) => Read(data, offset, 8, order);

        public static long ReadInt64(byte[] data, int offset, ByteOrder order = ByteOrder.BigEndian) => (long)Read(data, offset, 8, order);

        /// <summary>A base-128 varint (MQTT's remaining length, protobuf's): <paramref name="length"/> is how many bytes it took.</summary>
        public static ulong ReadVarint(byte[] data, int offset, out int length)
        {
            Check(data, offset, 1);
            ulong value = 0;
            for (int i = 0; i < 10; i++)
            {
                if (offset + i >= data.Length)
                {
                    throw new ArgumentException($"The varint at offset {offset} runs past the end of the {data.Length} bytes.", nameof(offset));
                }

                byte b = data[offset + i];
                value |= (ulong)(b & 0x7F) << (7 * i);
                if ((b & 0x80) == 0)
                {
                    length = i + 1;
                    return value;
                }
            }

            throw new ArgumentException($"The varint at offset {offset} is longer than 10 bytes.", nameof(offset));
        }

        public static ulong ReadVarint(byte[] data, int offset) => ReadVarint(data, offset, out _);

        /// <summary>The zero-terminated string at <paramref name="offset"/> (to the end when there is no NUL), decoded with <paramref name="encoding"/> (UTF-8 when null).</summary>
        public static string ReadCString(byte[] data, int offset, Encoding encoding = null)
        {
            Check(data, offset, 0);
            int end = Array.IndexOf(data, (byte)0, offset);
            if (end < 0) end = data.Length;
            return (encoding ?? ConnectionOptions.DefaultEncoding).GetString(data, offset, end - offset);
        }

        /// <summary><paramref name="count"/> bytes from <paramref name="offset"/>, as a new array.</summary>
        public static byte[] Slice(byte[] data, int offset, int count)
        {
            Check(data, offset, count);
            var slice = new byte[count];
            Buffer.BlockCopy(data, offset, slice, 0, count);
            return slice;
        }

        public static byte[] UInt16BE(ushort value) => Write(value, 2, ByteOrder.BigEndian);

        public static byte[] UInt16LE(ushort value) => Write(value, 2, ByteOrder.LittleEndian);

        public static byte[] Int16BE(short value) => Write((ulong)value, 2, ByteOrder.BigEndian);

        public static byte[] UInt24BE(uint value) => Write(Fit(value, 3), 3, ByteOrder.BigEndian);

        public static byte[] UInt24LE(uint value) => Write(Fit(value, 3), 3, ByteOrder.LittleEndian);

        public static byte[] UInt32BE(uint value) => Write(value, 4, ByteOrder.BigEndian);

        public static byte[] UInt32LE(uint value) => Write(value, 4, ByteOrder.LittleEndian);

        public static byte[] Int32BE(int value) => Write((ulong)value, 4, ByteOrder.BigEndian);

        public static byte[] Int32LE(int value) => Write((ulong)value, 4, ByteOrder.LittleEndian);

        public static byte[] UInt64BE(ulong value) => Write(value, 8, ByteOrder.BigEndian);

        public static byte[] UInt64LE(ulong value) => Write(value, 8, ByteOrder.LittleEndian);

        public static byte[] Int64BE(long value) => Write((ulong)value, 8, ByteOrder.BigEndian);

        /// <summary>A base-128 varint: 7 bits a byte, least significant first, the high bit on all but the last.</summary>
        public static byte[] Varint(ulong value)
        {
            var buffer = new byte[10];
            int n = LengthPrefixFramer.WriteVarint(buffer, value);
            return Slice(buffer, 0, n);
        }

        /// <summary><paramref name="text"/> in UTF-8 (or <paramref name="encoding"/>) with a NUL after it.</summary>
        public static byte[] CString(string text, Encoding encoding = null)
        {
            var bytes = (encoding ?? ConnectionOptions.DefaultEncoding).GetBytes(text ?? string.Empty);
            Array.Resize(ref bytes, bytes.Length + 1);
            return bytes;
        }

        /// <summary>The bytes of every part, one after the other: byte arrays as they are, a number from 0 to 255 as one byte, text in UTF-8, arrays of those in order.</summary>
        public static byte[] Join(params object[] parts)
        {
            var output = new System.IO.MemoryStream();
            foreach (var part in parts ?? Array.Empty<object>())
            {
                switch (part)
                {
                    case null: break;
                    case byte[] bytes: output.Write(bytes, 0, bytes.Length); break;
                    case byte b: output.WriteByte(b); break;
                    case int n when n >= 0 && n <= 255: output.WriteByte((byte)n); break;
                    case long n when n >= 0 && n <= 255: output.WriteByte((byte)n); break;
                    case string text:
                        var encoded = ConnectionOptions.DefaultEncoding.GetBytes(text);
                        output.Write(encoded, 0, encoded.Length);
                        break;
                    case System.Collections.IEnumerable items:
                        var list = new System.Collections.Generic.List<object>();
                        foreach (var item in items) list.Add(item);
                        var joined = Join(list.ToArray());
                        output.Write(joined, 0, joined.Length);
                        break;
                    default:
                        throw new ArgumentException($"Join takes byte[], numbers from 0 to 255 (a byte each) and string parts, not {part.GetType().Name} ('{part}'): build integers with UInt32BE and the like.", nameof(parts));
                }
            }

            return output.ToArray();
        }

        private static ulong Fit(uint value, int size)
        {
            if (value >= 1u << (8 * size)) throw new ArgumentOutOfRangeException(nameof(value), $"{value} doesn't fit {size} bytes.");
            return value;
        }

        private static byte[] Write(ulong value, int size, ByteOrder order)
        {
            var bytes = new byte[size];
            LengthPrefixFramer.WriteLength(bytes, value, order == ByteOrder.BigEndian);
            return bytes;
        }

        private static ulong Read(byte[] data, int offset, int size, ByteOrder order)
        {
            Check(data, offset, size);
            return LengthPrefixFramer.ReadLength(new ReadOnlySpan<byte>(data, offset, size), order == ByteOrder.BigEndian);
        }

        private static void Check(byte[] data, int offset, int size)
        {
            if (data == null) throw new ArgumentNullException(nameof(data));
            if (offset < 0 || size < 0 || offset > data.Length - size)
            {
                throw new ArgumentOutOfRangeException(nameof(offset), $"{size} byte(s) at offset {offset} are past the end of the {data.Length} bytes.");
            }
        }
    }
}
