using System;
using System.Text;

namespace PSTcp.Framing
{
    /// <summary>
    /// Header + body framing (HTTP/1.1, SIP, STOMP-like): a header block ended by an empty line
    /// (CRLF CRLF or LF LF), then a body of the length one header names (Content-Length unless
    /// told otherwise; none means no body). The payload is the whole message; empty lines before
    /// it (keep-alives) belong to the frame, not to the payload.
    /// </summary>
    public sealed class HeadersFramer : Framer
    {
        private readonly byte[] _lengthHeader;
        private readonly string _headerName;

        // Search state while a message arrives: where to look on for the empty line, and once
        // found, where the header block ends and how long the body is.
        private int _scanned;
        private int _headerEnd = -1;
        private int _bodyLength;

        public HeadersFramer(string lengthHeader, int maxMessageLength)
            : base(maxMessageLength)
        {
            if (string.IsNullOrWhiteSpace(lengthHeader)) throw new ArgumentException("The length header's name can't be empty.", nameof(lengthHeader));
            _headerName = lengthHeader.Trim();
            _lengthHeader = Encoding.ASCII.GetBytes(_headerName);
        }

        public override void Reset()
        {
            _scanned = 0;
            _headerEnd = -1;
            _bodyLength = 0;
        }

        public override FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame)
        {
            frame = default;
            int lead = 0;
            while (lead < buffer.Length && (buffer[lead] == (byte)'\r' || buffer[lead] == (byte)'\n')) lead++;
            if (lead > MaxMessageLength) return FrameStatus.TooLong;
            if (_headerEnd < 0)
            {
                int end = FindEmptyLine(buffer, Math.Max(lead, _scanned));
                if (end < 0)
                {
                    if (buffer.Length - lead > MaxMessageLength + 3) return FrameStatus.TooLong;
                    return FrameStatus.NeedMoreData;
                }

                if (!TryBodyLength(buffer.Slice(lead, end - lead), out _bodyLength)) return FrameStatus.Invalid;
                _headerEnd = end;
            }

            long length = (long)_headerEnd - lead + _bodyLength;
            if (length > MaxMessageLength)
            {
                Reset();
                return FrameStatus.TooLong;
            }

            int total = _headerEnd + _bodyLength;
            frame = new Frame(lead, (int)length, total);
            if (buffer.Length < total) return FrameStatus.NeedMoreData;
            Reset();
            return FrameStatus.Frame;
        }

        /// <summary>Where the header block ends (after its empty line), searching from <paramref name="from"/>; -1 if not yet.</summary>
        private int FindEmptyLine(ReadOnlySpan<byte> buffer, int from)
        {
            int i = from;
            while (true)
            {
                int lf = buffer.Slice(i).IndexOf((byte)'\n');
                if (lf < 0)
                {
                    _scanned = buffer.Length;
                    return -1;
                }

                i += lf;
                // An LF, then LF or CR LF: the empty line.
                if (i + 1 >= buffer.Length || (buffer[i + 1] == (byte)'\r' && i + 2 >= buffer.Length))
                {
                    _scanned = i;
                    return -1;
                }

                if (buffer[i + 1] == (byte)'\n') return i + 2;
                if (buffer[i + 1] == (byte)'\r' && buffer[i + 2] == (byte)'\n') return i + 3;
                i++;
            }
        }

        private bool TryBodyLength(ReadOnlySpan<byte> headers, out int length)
        {
            length = 0;
            while (!headers.IsEmpty)
            {
                int lf = headers.IndexOf((byte)'\n');
                var line = lf < 0 ? headers : headers.Slice(0, lf);
                headers = lf < 0 ? default : headers.Slice(lf + 1);
                if (line.Length <= _lengthHeader.Length || !StartsWithIgnoreCase(line, _lengthHeader)) continue;
                var rest = line.Slice(_lengthHeader.Length);
                int colon = 0;
                while (colon < rest.Length && (rest[colon] == (byte)' ' || rest[colon] == (byte)'\t')) colon++;
                if (colon == rest.Length || rest[colon] != (byte)':') continue;
                var value = Trim(rest.Slice(colon + 1));
                long n = 0;
                if (value.IsEmpty)
                {
                    InvalidReason = $"its {_headerName} header is empty";
                    return false;
                }

                foreach (byte b in value)
                {
                    if (b < (byte)'0' || b > (byte)'9')
                    {
                        InvalidReason = $"its {_headerName} header '{Encoding.ASCII.GetString(value.ToArray())}' is not a length";
                        return false;
                    }

                    n = n * 10 + (b - '0');
                    if (n > int.MaxValue)
                    {
                        // Over any limit: the caller refuses it as too long.
                        n = int.MaxValue;
                        break;
                    }
                }

                length = (int)n;
                return true;
            }

            return true;
        }

        private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> value)
        {
            int a = 0, b = value.Length;
            while (a < b && IsSpace(value[a])) a++;
            while (b > a && IsSpace(value[b - 1])) b--;
            return value.Slice(a, b - a);
        }

        private static bool IsSpace(byte b) => b == (byte)' ' || b == (byte)'\t' || b == (byte)'\r';

        private static bool StartsWithIgnoreCase(ReadOnlySpan<byte> line, byte[] name)
        {
            for (int i = 0; i < name.Length; i++)
            {
                int a = line[i], b = name[i];
                if (a >= 'A' && a <= 'Z') a += 32;
                if (b >= 'A' && b <= 'Z') b += 32;
                if (a != b) return false;
            }

            return true;
        }
    }

    /// <summary>
    /// Start/end marker framing: each message is a start marker (none when empty), the payload,
    /// then an end marker, as HL7 MLLP's 0x0B … 0x1C 0x0D. Bytes that don't begin with the start
    /// marker are not a frame: the connection is closed.
    /// </summary>
    public sealed class MarkerFramer : Framer
    {
        private readonly byte[] _start;
        private readonly byte[] _end;
        private int _scanned;

        public MarkerFramer(byte[] startMarker, byte[] endMarker, int maxMessageLength)
            : base(maxMessageLength)
        {
            if (endMarker == null || endMarker.Length == 0) throw new ArgumentException("The end marker can't be empty.", nameof(endMarker));
            _start = startMarker ?? Array.Empty<byte>();
            _end = endMarker;
        }

        public override void Reset() => _scanned = 0;

        public override FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame)
        {
            frame = default;
            int startLength = _start.Length;
            int have = Math.Min(buffer.Length, startLength);
            if (!buffer.Slice(0, have).SequenceEqual(new ReadOnlySpan<byte>(_start, 0, have)))
            {
                InvalidReason = $"a message must begin with the start marker {Hex(_start)}, not {Hex(buffer.Slice(0, have).ToArray())}";
                return FrameStatus.Invalid;
            }

            if (have < startLength) return FrameStatus.NeedMoreData;
            int from = Math.Max(startLength, _scanned);
            int at = buffer.Slice(from).IndexOf(_end);
            if (at < 0)
            {
                _scanned = Math.Max(startLength, buffer.Length - _end.Length + 1);
                if (_scanned - startLength > MaxMessageLength) return FrameStatus.TooLong;
                return FrameStatus.NeedMoreData;
            }

            int payload = from + at - startLength;
            if (payload > MaxMessageLength) return FrameStatus.TooLong;
            _scanned = 0;
            frame = new Frame(startLength, payload, startLength + payload + _end.Length);
            return FrameStatus.Frame;
        }

        private static string Hex(byte[] bytes) => bytes.Length == 0 ? "(none)" : BitConverter.ToString(bytes).Replace('-', ' ');
    }
}
