using System;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PSTcp
{
    /// <summary>A parsed PROXY protocol header: who the proxy says the client is.</summary>
    public sealed class ProxyHeader
    {
        internal ProxyHeader(ProxyProtocolVersion version, bool isLocal, IPEndPoint source, IPEndPoint destination)
        {
            Version = version;
            IsLocal = isLocal;
            Source = source;
            Destination = destination;
        }

        public ProxyProtocolVersion Version { get; }

        /// <summary>
        /// The header names no client (v2 LOCAL, v1 UNKNOWN, v2 AF_UNSPEC or AF_UNIX): a proxy's own
        /// health check. Keep the socket's real peer address; <see cref="Source"/> is null.
        /// </summary>
        public bool IsLocal { get; }

        /// <summary>The client's address as the proxy saw it; null when <see cref="IsLocal"/>.</summary>
        public IPEndPoint Source { get; }

        /// <summary>The address the client connected to on the proxy; null when <see cref="IsLocal"/>.</summary>
        public IPEndPoint Destination { get; }

        public override string ToString() => IsLocal ? $"{Version} LOCAL" : $"{Version} {Source} -> {Destination}";
    }

    public enum ProxyParseStatus
    {
        /// <summary>Everything so far is a proper prefix of a header: read more and call again.</summary>
        Incomplete,
        Valid,
        Invalid,
    }

    /// <summary>
    /// Parser and writer for HAProxy's PROXY protocol (haproxy.org/download/2.9/doc/proxy-protocol.txt),
    /// v1 (one text line) and v2 (binary). Pure functions over bytes: the receive loop feeds what it
    /// has read so far, a header split across reads answers Incomplete until it is whole.
    /// </summary>
    public static class ProxyProtocol
    {
        /// <summary>The longest v1 header, "\r\n" included (the specification's figure).</summary>
        public const int MaxV1Length = 107;

        /// <summary>
        /// The longest header accepted, v2 TLVs included. v2's length field allows 16 + 65535 bytes, but
        /// the address block is at most 216 bytes and the TLVs proxies send (AWS's VPC endpoint id,
        /// Azure's link id, ALPN, authority, SSL details) take a few hundred; 4 KiB leaves room for them
        /// while keeping what an unauthenticated peer makes us buffer small. Longer headers are Invalid.
        /// </summary>
        public const int MaxHeaderLength = 4096;

        private const int V2FixedLength = 16;

        private static readonly byte[] V1Prefix = Encoding.ASCII.GetBytes("PROXY ");

        private static readonly byte[] V2Signature =
            { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

        /// <summary>
        /// Parses the header at the start of <paramref name="data"/>. Valid: <paramref name="header"/> is set
        /// and <paramref name="consumed"/> bytes belong to it (the rest is the connection's payload).
        /// Incomplete: no verdict yet. Invalid: <paramref name="error"/> says why; close the connection.
        /// </summary>
        public static ProxyParseStatus TryParse(ReadOnlySpan<byte> data, out ProxyHeader header, out int consumed, out string error)
        {
            header = null;
            consumed = 0;
            error = null;
            if (data.IsEmpty) return ProxyParseStatus.Incomplete;
            if (data[0] == V1Prefix[0]) return ParseV1(data, out header, out consumed, out error);
            if (data[0] == V2Signature[0]) return ParseV2(data, out header, out consumed, out error);
            error = "The connection does not start with a PROXY protocol header.";
            return ProxyParseStatus.Invalid;
        }

        private static bool MatchesPrefix(ReadOnlySpan<byte> data, byte[] expected) =>
            data.Slice(0, Math.Min(data.Length, expected.Length)).SequenceEqual(expected.AsSpan(0, Math.Min(data.Length, expected.Length)));

        private static ProxyParseStatus Fail(string message, out string error)
        {
            error = message;
            return ProxyParseStatus.Invalid;
        }

        // ---- v1: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" ----

        private static ProxyParseStatus ParseV1(ReadOnlySpan<byte> data, out ProxyHeader header, out int consumed, out string error)
        {
            header = null;
            consumed = 0;
            error = null;
            if (!MatchesPrefix(data, V1Prefix)) return Fail("The connection does not start with a PROXY protocol header.", out error);

            int limit = Math.Min(data.Length, MaxV1Length);
            int newline = data.Slice(0, limit).IndexOf((byte)'\n');
            var line = newline < 0 ? data.Slice(0, limit) : data.Slice(0, newline);

            // Reject garbage as soon as it shows, not only at the newline or the length limit.
            for (int i = 0; i < line.Length; i++)
            {
                byte b = line[i];
                // CR is allowed only last: before the LF, or as the last byte read so far.
                if ((b < 0x20 || b > 0x7E) && !(b == '\r' && i == line.Length - 1))
                {
                    return Fail($"The PROXY v1 header has an invalid byte 0x{b:X2} at offset {i}.", out error);
                }
            }

            if (line.Length > V1Prefix.Length)
            {
                var rest = line.Slice(V1Prefix.Length);
                int space = rest.IndexOf((byte)' ');
                var word = space < 0 ? rest : rest.Slice(0, space);
                if (word.Length > 0 && word[word.Length - 1] == '\r') word = word.Slice(0, word.Length - 1);
                bool wordDone = space >= 0 || newline >= 0;
                if (!IsProtocolWord(word, wordDone))
                {
                    return Fail($"The PROXY v1 header names an unknown protocol '{Ascii(word)}'.", out error);
                }
            }

            if (newline < 0)
            {
                return data.Length >= MaxV1Length
                    ? Fail($"The PROXY v1 header has no line end within {MaxV1Length} bytes.", out error)
                    : ProxyParseStatus.Incomplete;
            }

            if (newline == 0 || data[newline - 1] != '\r') return Fail("The PROXY v1 header does not end with CR LF.", out error);

            var text = Ascii(data.Slice(V1Prefix.Length, newline - 1 - V1Prefix.Length));
            consumed = newline + 1;
            var parts = text.Split(' ');
            if (parts[0] == "UNKNOWN")
            {
                // The specification: everything after UNKNOWN is ignored.
                header = new ProxyHeader(ProxyProtocolVersion.V1, true, null, null);
                return ProxyParseStatus.Valid;
            }

            if (parts.Length != 5) return Fail($"The PROXY v1 header '{text}' does not have 5 fields.", out error);
            var family = parts[0] == "TCP4" ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
            if (!TryParseV1Address(parts[1], family, out var sourceAddress)
                || !TryParseV1Address(parts[2], family, out var destinationAddress)
                || !TryParsePort(parts[3], out int sourcePort)
                || !TryParsePort(parts[4], out int destinationPort))
            {
                return Fail($"The PROXY v1 header '{text}' has an invalid {parts[0]} address or port.", out error);
            }

            header = new ProxyHeader(ProxyProtocolVersion.V1, false,
                new IPEndPoint(sourceAddress, sourcePort), new IPEndPoint(destinationAddress, destinationPort));
            return ProxyParseStatus.Valid;
        }

        private static bool IsProtocolWord(ReadOnlySpan<byte> word, bool complete)
        {
            foreach (var candidate in new[] { "TCP4", "TCP6", "UNKNOWN" })
            {
                if (complete ? word.Length == candidate.Length : word.Length <= candidate.Length)
                {
                    bool same = true;
                    for (int i = 0; i < word.Length && same; i++) same = word[i] == candidate[i];
                    if (same) return true;
                }
            }

            return false;
        }

        private static bool TryParseV1Address(string text, AddressFamily family, out IPAddress address)
        {
            address = null;
            if (text.Length == 0) return false;
            if (family == AddressFamily.InterNetwork)
            {
                // IPAddress.TryParse takes "1" or "0x7f.1"; the specification wants a dotted quad.
                var octets = text.Split('.');
                if (octets.Length != 4) return false;
                foreach (var octet in octets)
                {
                    // No leading zero: 012 would be octal 10 to some parsers, 12 to others (CVE-2021-29923).
                    if (octet.Length < 1 || octet.Length > 3 || !AllDigits(octet) || (octet.Length > 1 && octet[0] == '0')
                        || int.Parse(octet, CultureInfo.InvariantCulture) > 255) return false;
                }
            }
            else
            {
                foreach (char c in text)
                {
                    if (!(Uri.IsHexDigit(c) || c == ':' || c == '.')) return false;
                }

                if (!AddressRange.IsCanonical(text)) return false;
            }

            return IPAddress.TryParse(text, out address) && address.AddressFamily == family;
        }

        private static bool TryParsePort(string text, out int port)
        {
            port = 0;
            return text.Length >= 1 && text.Length <= 5 && AllDigits(text)
                && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port <= 65535;
        }

        private static bool AllDigits(string text)
        {
            foreach (char c in text)
            {
                if (c < '0' || c > '9') return false;
            }

            return true;
        }

        private static string Ascii(ReadOnlySpan<byte> bytes) => Encoding.ASCII.GetString(bytes.ToArray());

        // ---- v2: 12-byte signature, version/command, family/transport, length, addresses, TLVs ----

        private static ProxyParseStatus ParseV2(ReadOnlySpan<byte> data, out ProxyHeader header, out int consumed, out string error)
        {
            header = null;
            consumed = 0;
            error = null;
            if (!MatchesPrefix(data, V2Signature)) return Fail("The connection does not start with a PROXY protocol header.", out error);
            if (data.Length <= 12) return ProxyParseStatus.Incomplete;

            int version = data[12] >> 4, command = data[12] & 0x0F;
            if (version != 2) return Fail($"The PROXY v2 header has version {version}, not 2.", out error);
            if (command > 1) return Fail($"The PROXY v2 header has an unknown command {command}.", out error);
            if (data.Length <= 13) return ProxyParseStatus.Incomplete;

            int family = data[13] >> 4, transport = data[13] & 0x0F;
            if (family > 3 || transport > 2) return Fail($"The PROXY v2 header has an unknown address family/transport 0x{data[13]:X2}.", out error);
            if (data.Length < V2FixedLength) return ProxyParseStatus.Incomplete;

            int length = (data[14] << 8) | data[15];
            if (V2FixedLength + length > MaxHeaderLength)
            {
                return Fail($"The PROXY v2 header is {V2FixedLength + length} bytes long, over the {MaxHeaderLength}-byte limit.", out error);
            }

            int addressLength = command == 0 ? 0 : family == 1 ? 12 : family == 2 ? 36 : family == 3 ? 216 : 0;
            if (length < addressLength) return Fail($"The PROXY v2 header's {length}-byte address block is too short for its family.", out error);
            if (data.Length < V2FixedLength + length) return ProxyParseStatus.Incomplete;

            var block = data.Slice(V2FixedLength, length);

            // LOCAL: the proxy's own connection (health checks); UNSPEC and UNIX name no IP client.
            // The specification has the receiver skip such blocks unread.
            if (command == 0 || family == 0 || family == 3)
            {
                consumed = V2FixedLength + length;
                header = new ProxyHeader(ProxyProtocolVersion.V2, true, null, null);
                return ProxyParseStatus.Valid;
            }

            if (!TlvsWellFormed(block.Slice(addressLength))) return Fail("The PROXY v2 header's TLVs overrun its length.", out error);
            consumed = V2FixedLength + length;
            int size = family == 1 ? 4 : 16;
            var source = new IPAddress(block.Slice(0, size).ToArray());
            var destination = new IPAddress(block.Slice(size, size).ToArray());
            int sourcePort = (block[2 * size] << 8) | block[2 * size + 1];
            int destinationPort = (block[2 * size + 2] << 8) | block[2 * size + 3];
            header = new ProxyHeader(ProxyProtocolVersion.V2, false,
                new IPEndPoint(source, sourcePort), new IPEndPoint(destination, destinationPort));
            return ProxyParseStatus.Valid;
        }

        // Each TLV: type (1 byte), length (2 bytes, big-endian), value. Their content is skipped.
        private static bool TlvsWellFormed(ReadOnlySpan<byte> tlvs)
        {
            while (!tlvs.IsEmpty)
            {
                if (tlvs.Length < 3) return false;
                int length = (tlvs[1] << 8) | tlvs[2];
                if (tlvs.Length < 3 + length) return false;
                tlvs = tlvs.Slice(3 + length);
            }

            return true;
        }

        /// <summary>
        /// A header saying <paramref name="source"/> connected to <paramref name="destination"/>. With a null
        /// source it names no client (v1 UNKNOWN, v2 LOCAL). An IPv4 and an IPv6 end point together are
        /// written as IPv6 (IPv4-mapped); IPv4-mapped pairs are written as IPv4.
        /// </summary>
        public static byte[] Write(ProxyProtocolVersion version, IPEndPoint source, IPEndPoint destination)
        {
            if (version != ProxyProtocolVersion.V1 && version != ProxyProtocolVersion.V2)
            {
                throw new ArgumentOutOfRangeException(nameof(version), "Write needs PROXY protocol version V1 or V2.");
            }

            if (source == null || destination == null)
            {
                return version == ProxyProtocolVersion.V1
                    ? Encoding.ASCII.GetBytes("PROXY UNKNOWN\r\n")
                    : Concat(V2Signature, new byte[] { 0x20, 0x00, 0x00, 0x00 });
            }

            var from = Normalize(source.Address);
            var to = Normalize(destination.Address);
            if (from.AddressFamily != to.AddressFamily)
            {
                from = from.MapToIPv6();
                to = to.MapToIPv6();
            }

            bool v4 = from.AddressFamily == AddressFamily.InterNetwork;
            if (version == ProxyProtocolVersion.V1)
            {
                return Encoding.ASCII.GetBytes(string.Format(CultureInfo.InvariantCulture, "PROXY {0} {1} {2} {3} {4}\r\n",
                    v4 ? "TCP4" : "TCP6", from, to, source.Port, destination.Port));
            }

            var fromBytes = from.GetAddressBytes();
            var toBytes = to.GetAddressBytes();
            int length = fromBytes.Length * 2 + 4;
            var fixedPart = new byte[] { 0x21, (byte)(v4 ? 0x11 : 0x21), (byte)(length >> 8), (byte)length };
            var ports = new[] { (byte)(source.Port >> 8), (byte)source.Port, (byte)(destination.Port >> 8), (byte)destination.Port };
            return Concat(V2Signature, fixedPart, fromBytes, toBytes, ports);
        }

        // IPv4-mapped addresses become IPv4; an IPv6 scope id is dropped (it means nothing to the peer).
        private static IPAddress Normalize(IPAddress address)
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6)
            {
                return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : new IPAddress(address.GetAddressBytes());
            }

            return address;
        }

        private static byte[] Concat(params byte[][] parts)
        {
            int total = 0;
            foreach (var part in parts) total += part.Length;
            var result = new byte[total];
            int offset = 0;
            foreach (var part in parts)
            {
                Buffer.BlockCopy(part, 0, result, offset, part.Length);
                offset += part.Length;
            }

            return result;
        }
    }
}
