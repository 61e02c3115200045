using PSTcp.Framing;

namespace PSTcp
{
    /// <summary>Binary fields of a message's <see cref="Data"/> (big-endian unless told otherwise): <c>$m.ReadUInt32(1)</c>.</summary>
    public sealed partial class TcpMessage
    {
        public ushort ReadUInt16(int offset) => Bytes.ReadUInt16(_data, offset);

        public ushort ReadUInt16(int offset, ByteOrder byteOrder) => Bytes.ReadUInt16(_data, offset, byteOrder);

        public short ReadInt16(int offset) => Bytes.ReadInt16(_data, offset);

        public short ReadInt16(int offset, ByteOrder byteOrder) => Bytes.ReadInt16(_data, offset, byteOrder);

        public uint ReadUInt24(int offset) => Bytes.ReadUInt24(_data, offset);

        public uint ReadUInt24(int offset, ByteOrder byteOrder) => Bytes.ReadUInt24(_data, offset, byteOrder);

        public uint ReadUInt32(int offset) => Bytes.ReadUInt32(_data, offset);

        public uint ReadUInt32(int offset, ByteOrder byteOrder) => Bytes.ReadUInt32(_data, offset, byteOrder);

        public int ReadInt32(int offset) => Bytes.ReadInt32(_data, offset);

        public int ReadInt32(int offset, ByteOrder byteOrder) => Bytes.ReadInt32(_data, offset, byteOrder);

        public ulong ReadUInt64(int offset) => Bytes.ReadUInt64(_data, offset);

        public ulong ReadUInt64(int offset, ByteOrder byteOrder) => Bytes.ReadUInt64(_data, offset, byteOrder);

        public long ReadInt64(int offset) => Bytes.ReadInt64(_data, offset);

        public long ReadInt64(int offset, ByteOrder byteOrder) => Bytes.ReadInt64(_data, offset, byteOrder);

        /// <summary>The base-128 varint at <paramref name="offset"/>.</summary>
        public ulong ReadVarint(int offset) => Bytes.ReadVarint(_data, offset);

        /// <summary>The base-128 varint at <paramref name="offset"/>; <paramref name="length"/> (<c>[ref]$n</c>) gets how many bytes it took.</summary>
        public ulong ReadVarint(int offset, out int length) => Bytes.ReadVarint(_data, offset, out length);

        /// <summary>The zero-terminated string at <paramref name="offset"/>, decoded with the source's encoding.</summary>
        public string ReadCString(int offset) => Bytes.ReadCString(_data, offset, Origin?.Encoding);

        /// <summary><paramref name="count"/> bytes at <paramref name="offset"/> decoded with the source's encoding.</summary>
        public string ReadString(int offset, int count) => (Origin?.Encoding ?? ConnectionOptions.DefaultEncoding).GetString(Bytes.Slice(_data, offset, count));

        /// <summary><paramref name="count"/> bytes at <paramref name="offset"/>, as a new array.</summary>
        public byte[] ReadBytes(int offset, int count) => Bytes.Slice(_data, offset, count);
    }
}
