using System;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace PSTcp
{
    /// <summary>An address or CIDR range (<c>127.0.0.0/8</c>, <c>::1</c>, <c>10.1.2.3</c>) a peer may connect from.</summary>
    /// <remarks>
    /// Only canonical text is taken: an IPv4 address is a dotted quad of decimal octets without
    /// leading zeros (the platform parser reads <c>010</c> as octal 8, and <c>1</c> or
    /// <c>0x7f.1</c> as addresses; Go refuses them since CVE-2021-29923). IPv4 and IPv6 meet:
    /// an IPv4 peer seen by a dual-stack listener (<c>::ffff:a.b.c.d</c>) is matched as IPv4, an
    /// IPv6 range contains the IPv4 addresses whose mapped form it contains (so <c>::/0</c>
    /// admits everyone), and <c>::ffff:a.b.c.d/n</c> (n of 96 or more) is the IPv4 range <c>a.b.c.d/(n-96)</c>.
    /// </remarks>
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
            var addressText = parts[0].Trim('[', ']');
            if (parts.Length > 2 || !IPAddress.TryParse(addressText, out var address))
            {
                throw new FormatException($"'{text}' is not an IP address or CIDR range such as 10.0.0.0/8 or ::1.");
            }

            if (!IsCanonical(addressText))
            {
                throw new ArgumentException(
                    $"'{text}' is not a canonical address: write IPv4 as four decimal octets without leading zeros (010 would be read as octal by some parsers, 8 by others).", nameof(text));
            }

            int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
            int prefix = max;
            if (parts.Length == 2 && (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix < 0 || prefix > max))
            {
                throw new FormatException($"'{text}' has a prefix length outside 0..{max}.");
            }

            if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv4MappedToIPv6 && prefix >= 96)
            {
                // ::ffff:10.0.0.0/104 is the IPv4 range 10.0.0.0/8.
                return new AddressRange(address.MapToIPv4(), prefix - 96);
            }

            return new AddressRange(address, prefix);
        }

        /// <summary>
        /// Whether an address's text is canonical where it matters: every dotted IPv4 part
        /// (alone, or at the end of an IPv6 address) is four decimal octets 0..255 without a
        /// leading zero. IPv6 hex groups may have leading zeros (they are unambiguous).
        /// </summary>
        public static bool IsCanonical(string text)
        {
            if (string.IsNullOrEmpty(text)) return false;
            int colon = text.LastIndexOf(':');
            if (colon < 0 && text.IndexOf('.') < 0) return false; // "1", "0x7f": not a dotted quad
            if (text.IndexOf('.') < 0) return true; // IPv6 without an embedded IPv4 address
            var dotted = text.Substring(colon + 1);
            var octets = dotted.Split('.');
            if (octets.Length != 4) return false;
            foreach (var octet in octets)
            {
                if (octet.Length < 1 || octet.Length > 3 || (octet.Length > 1 && octet[0] == '0')) return false;
                foreach (char c in octet)
                {
                    if (c < '0' || c > '9') return false;
                }

                if (int.Parse(octet, CultureInfo.InvariantCulture) > 255) return false;
            }

            return true;
        }

        public bool Contains(IPAddress address)
        {
            address = Normalize(address);
            var bytes = address.GetAddressBytes();
            if (bytes.Length == 4 && _network.Length == 16)
            {
                // An IPv6 range contains the IPv4 addresses whose mapped form (::ffff:a.b.c.d) it contains: ::/0 admits all.
                bytes = address.MapToIPv6().GetAddressBytes();
            }

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
