using System;
using System.Net;
using System.Net.Sockets;

namespace PSTcp
{
    /// <summary>An address or CIDR range (<c>127.0.0.0/8</c>, <c>::1</c>, <c>10.1.2.3</c>) a peer may connect from.</summary>
    public sealed class AddressRange
    {
        private readonly byte[] _network;
        private readonly int _prefixLength;

        private AddressRange(IPAddress network, int prefixLength)
        {
            _network = network.GetAddressBytes();
            _prefixLength = prefixLength;
            Mask(_network, prefixLength);
            Network = new IPAddress(_network);
        }

        public IPAddress Network { get; }

        public int PrefixLength => _prefixLength;

        public static AddressRange Parse(string text)
        {
            if (text == null) throw new ArgumentNullException(nameof(text));
            var parts = text.Trim().Split('/');
            if (parts.Length > 2 || !IPAddress.TryParse(parts[0].Trim('[', ']'), out var address))
            {
                throw new FormatException($"'{text}' is not an IP address or CIDR range such as 10.0.0.0/8 or ::1.");
            }

            address = Normalize(address);
            int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
            int prefix = max;
            if (parts.Length == 2 && (!int.TryParse(parts[1], out prefix) || prefix < 0 || prefix > max))
            {
                throw new FormatException($"'{text}' has a prefix length outside 0..{max}.");
            }

            return new AddressRange(address, prefix);
        }

        public bool Contains(IPAddress address)
        {
            address = Normalize(address);
            var bytes = address.GetAddressBytes();
            if (bytes.Length != _network.Length) return false;
            Mask(bytes, _prefixLength);
            for (int i = 0; i < bytes.Length; i++)
            {
                if (bytes[i] != _network[i]) return false;
            }

            return true;
        }

        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; they match IPv4 ranges.
        private static IPAddress Normalize(IPAddress address) =>
            address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

        private static void Mask(byte[] bytes, int prefixLength)
        {
            for (int i = 0; i < bytes.Length; i++)
            {
                int bits = Math.Max(0, Math.Min(8, prefixLength - i * 8));
                bytes[i] &= (byte)(0xFF << (8 - bits));
            }
        }

        public override string ToString() => $"{Network}/{_prefixLength}";
    }
}
