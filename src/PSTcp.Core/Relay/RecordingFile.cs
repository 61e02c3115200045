using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;

namespace PSTcp
{
    /// <summary>Which side of a recorded connection sent a message or ended it.</summary>
    public enum RecordedSide { Client, Target, Relay }

    /// <summary>How a recorded connection ended: a FIN with nothing more from the other side, a FIN after which the other side went on, or a reset.</summary>
    public enum RecordedEndKind { Close, HalfClose, Reset }

    /// <summary>
    /// Start-TcpRelay -RecordMode: Once records when the file does not exist and otherwise
    /// replays it; All records every connection; None only replays; NewEpisodes replays what the
    /// file has and records (appends) the rest.
    /// </summary>
    public enum RecordMode { Once, All, NewEpisodes, None }

    /// <summary>One message of a recorded connection: who sent it, when (ms after the connection began), and its bytes.</summary>
    public sealed class RecordedMessage
    {
        public RecordedMessage(RecordedSide from, double at, byte[] data)
        {
            From = from;
            At = at;
            Data = data ?? Array.Empty<byte>();
        }

        public RecordedSide From { get; }

        /// <summary>Milliseconds after the connection was accepted.</summary>
        public double At { get; }

        public byte[] Data { get; internal set; }

        /// <summary>The line number in the file it was read from (0 when recorded here).</summary>
        internal int Line { get; set; }
    }

    /// <summary>How a recorded connection ended.</summary>
    public sealed class RecordedEnd
    {
        public RecordedEnd(RecordedSide by, RecordedEndKind how, double at)
        {
            By = by;
            How = how;
            At = at;
        }

        public RecordedSide By { get; }

        public RecordedEndKind How { get; }

        public double At { get; }

        public override string ToString() => $"{How} by {By}";
    }

    /// <summary>One recorded connection: its messages both ways, in order, and its end.</summary>
    public sealed class RecordedConnection
    {
        public int Id { get; set; }

        public DateTimeOffset Started { get; set; }

        /// <summary>The client's address, for a reader of the file.</summary>
        public string Client { get; set; }

        public List<RecordedMessage> Messages { get; } = new List<RecordedMessage>();

        /// <summary>Null when the connection was still open when it was written.</summary>
        public RecordedEnd End { get; set; }

        /// <summary>The first message, when the client sent it; null when the target spoke first or nobody spoke.</summary>
        internal RecordedMessage FirstClientMessage => Messages.Count > 0 && Messages[0].From == RecordedSide.Client ? Messages[0] : null;
    }

    /// <summary>
    /// A recording file: the connections a relay saw, as JSON a person can read and edit. A
    /// message's bytes are its "text" (UTF-8) when they are text, else "base64"; both round-trip
    /// byte for byte.
    /// </summary>
    public sealed class TcpRecording
    {
        public const int FormatVersion = 1;

        public string Target { get; set; }

        public List<RecordedConnection> Connections { get; } = new List<RecordedConnection>();

        /// <summary>Reads a recording file; a malformed one is a <see cref="TcpErrorKind.RecordingInvalid"/> naming the problem and where.</summary>
        public static TcpRecording Load(string path)
        {
            string json;
            try
            {
                json = File.ReadAllText(path, new UTF8Encoding(false, true));
            }
            catch (DecoderFallbackException e)
            {
                throw new TcpException(TcpErrorKind.RecordingInvalid, $"The recording {path} is not UTF-8 text: {e.Message}", e);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new TcpException(TcpErrorKind.RecordingInvalid, $"The recording {path} can't be read: {e.Message}", e);
            }

            return Parse(json, path);
        }

        /// <summary>Parses the JSON of a recording; <paramref name="name"/> names it in errors.</summary>
        public static TcpRecording Parse(string json, string name = "recording")
        {
            var reader = new RecordingJsonReader(json, name);
            var root = reader.ReadDocument();
            var recording = new TcpRecording();
            var top = reader.AsObject(root, "the file");
            var version = reader.Optional(top, "version");
            if (version != null && reader.AsNumber(version, "version") != FormatVersion)
            {
                throw reader.Error(version, $"version {reader.AsNumber(version, "version")} is not supported (this PSTcp reads version {FormatVersion})");
            }

            var target = reader.Optional(top, "target");
            if (target != null && target.Value != null) recording.Target = reader.AsString(target, "target");
            var connections = reader.AsArray(reader.Required(top, "connections", "the file"), "connections");
            int index = 0;
            foreach (var item in connections)
            {
                index++;
                string where = $"connection {index}";
                var c = reader.AsObject(item, where);
                var connection = new RecordedConnection { Id = index };
                var id = reader.Optional(c, "id");
                if (id != null) connection.Id = (int)reader.AsNumber(id, where + " id");
                var client = reader.Optional(c, "client");
                if (client != null && client.Value != null) connection.Client = reader.AsString(client, where + " client");
                var started = reader.Optional(c, "started");
                if (started != null && started.Value != null)
                {
                    if (!DateTimeOffset.TryParse(reader.AsString(started, where + " started"), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var when))
                    {
                        throw reader.Error(started, $"{where}: \"started\" is not a date and time");
                    }

                    connection.Started = when;
                }

                int m = 0;
                double last = 0;
                foreach (var messageNode in reader.AsArray(reader.Required(c, "messages", where), where + " messages"))
                {
                    m++;
                    string mwhere = $"{where}, message {m}";
                    var message = reader.AsObject(messageNode, mwhere);
                    var from = ParseSide(reader, reader.Required(message, "from", mwhere), mwhere, allowRelay: false);
                    var atNode = reader.Optional(message, "at");
                    double at = atNode == null ? last : reader.AsNumber(atNode, mwhere + " at");
                    if (at < 0) throw reader.Error(atNode, $"{mwhere}: \"at\" must not be negative");
                    last = at;
                    var text = reader.Optional(message, "text");
                    var base64 = reader.Optional(message, "base64");
                    if ((text == null) == (base64 == null))
                    {
                        throw reader.Error(messageNode, $"{mwhere}: give its bytes as either \"text\" or \"base64\"");
                    }

                    byte[] data;
                    if (text != null)
                    {
                        data = Encoding.UTF8.GetBytes(reader.AsString(text, mwhere + " text"));
                    }
                    else
                    {
                        try
                        {
                            data = Convert.FromBase64String(reader.AsString(base64, mwhere + " base64"));
                        }
                        catch (FormatException)
                        {
                            throw reader.Error(base64, $"{mwhere}: \"base64\" is not valid base64");
                        }
                    }

                    connection.Messages.Add(new RecordedMessage(from, at, data) { Line = messageNode.Line });
                }

                var end = reader.Optional(c, "end");
                if (end != null && end.Value != null)
                {
                    var e = reader.AsObject(end, where + " end");
                    var by = ParseSide(reader, reader.Required(e, "by", where + " end"), where + " end", allowRelay: true);
                    var howNode = reader.Required(e, "how", where + " end");
                    if (!Enum.TryParse(reader.AsString(howNode, where + " end how"), true, out RecordedEndKind how) || !Enum.IsDefined(typeof(RecordedEndKind), how))
                    {
                        throw reader.Error(howNode, $"{where}: end \"how\" must be Close, HalfClose or Reset");
                    }

                    var atNode = reader.Optional(e, "at");
                    connection.End = new RecordedEnd(by, how, atNode == null ? last : reader.AsNumber(atNode, where + " end at"));
                }

                recording.Connections.Add(connection);
            }

            return recording;
        }

        private static RecordedSide ParseSide(RecordingJsonReader reader, JsonNode node, string where, bool allowRelay)
        {
            var text = reader.AsString(node, where);
            if (string.Equals(text, "Client", StringComparison.OrdinalIgnoreCase)) return RecordedSide.Client;
            if (string.Equals(text, "Target", StringComparison.OrdinalIgnoreCase)) return RecordedSide.Target;
            if (allowRelay && string.Equals(text, "Relay", StringComparison.OrdinalIgnoreCase)) return RecordedSide.Relay;
            throw reader.Error(node, $"{where}: \"{text}\" is not a side: use \"Client\" or \"Target\"" + (allowRelay ? " (or \"Relay\")" : string.Empty));
        }

        /// <summary>The recording as indented JSON, one message per line.</summary>
        public string ToJson()
        {
            var b = new StringBuilder();
            b.Append("{\n  \"version\": ").Append(FormatVersion).Append(",\n");
            b.Append("  \"target\": ");
            JsonText.AppendString(b, Target);
            b.Append(",\n  \"connections\": [");
            for (int i = 0; i < Connections.Count; i++)
            {
                var c = Connections[i];
                b.Append(i == 0 ? "\n" : ",\n");
                b.Append("    {\n      \"id\": ").Append(c.Id.ToString(CultureInfo.InvariantCulture));
                b.Append(",\n      \"started\": ");
                JsonText.AppendString(b, c.Started == default ? null : c.Started.ToString("o", CultureInfo.InvariantCulture));
                b.Append(",\n      \"client\": ");
                JsonText.AppendString(b, c.Client);
                b.Append(",\n      \"messages\": [");
                for (int m = 0; m < c.Messages.Count; m++)
                {
                    var message = c.Messages[m];
                    b.Append(m == 0 ? "\n" : ",\n");
                    b.Append("        { \"from\": \"").Append(message.From).Append("\", \"at\": ").Append(Ms(message.At));
                    if (JsonText.IsReadableText(message.Data))
                    {
                        b.Append(", \"text\": ");
                        JsonText.AppendString(b, Encoding.UTF8.GetString(message.Data));
                    }
                    else
                    {
                        b.Append(", \"base64\": \"").Append(Convert.ToBase64String(message.Data)).Append('"');
                    }

                    b.Append(" }");
                }

                b.Append(c.Messages.Count == 0 ? "],\n" : "\n      ],\n");
                b.Append("      \"end\": ");
                if (c.End == null)
                {
                    b.Append("null");
                }
                else
                {
                    b.Append("{ \"by\": \"").Append(c.End.By).Append("\", \"how\": \"").Append(c.End.How).Append("\", \"at\": ").Append(Ms(c.End.At)).Append(" }");
                }

                b.Append("\n    }");
            }

            b.Append(Connections.Count == 0 ? "]\n}\n" : "\n  ]\n}\n");
            return b.ToString();
        }

        /// <summary>Writes the file safely: to a temporary file beside it, then renamed over it, so a reader never sees half a file.</summary>
        public void Save(string path)
        {
            var full = Path.GetFullPath(path);
            var temp = Path.Combine(Path.GetDirectoryName(full) ?? ".", "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp");
            File.WriteAllText(temp, ToJson(), new UTF8Encoding(false));
            try
            {
                if (File.Exists(full))
                {
                    File.Replace(temp, full, null);
                }
                else
                {
                    File.Move(temp, full);
                }
            }
            catch
            {
                try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
                throw;
            }
        }

        private static string Ms(double ms) => Math.Round(ms, 1).ToString("0.0", CultureInfo.InvariantCulture);
    }

    /// <summary>JSON string writing, and what counts as text in a recording.</summary>
    internal static class JsonText
    {
        private static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        /// <summary>Valid UTF-8 without control characters other than tab, CR and LF: shown as text.</summary>
        public static bool IsReadableText(byte[] data)
        {
            foreach (var b in data)
            {
                if ((b < 0x20 && b != (byte)'\t' && b != (byte)'\r' && b != (byte)'\n') || b == 0x7F) return false;
            }

            try
            {
                Strict.GetString(data);
                return true;
            }
            catch (DecoderFallbackException)
            {
                return false;
            }
        }

        public static void AppendString(StringBuilder b, string value)
        {
            if (value == null)
            {
                b.Append("null");
                return;
            }

            b.Append('"');
            foreach (var ch in value)
            {
                switch (ch)
                {
                    case '"': b.Append("\\\""); break;
                    case '\\': b.Append("\\\\"); break;
                    case '\n': b.Append("\\n"); break;
                    case '\r': b.Append("\\r"); break;
                    case '\t': b.Append("\\t"); break;
                    default:
                        if (ch < 0x20 || ch == 0x7F || ch == '\u2028' || ch == '\u2029')
                        {
                            b.Append("\\u").Append(((int)ch).ToString("x4", CultureInfo.InvariantCulture));
                        }
                        else
                        {
                            b.Append(ch);
                        }

                        break;
                }
            }

            b.Append('"');
        }

        /// <summary>Bytes shown to a person in an error: text with \r, \n and \xNN escapes, cut at <paramref name="max"/> bytes.</summary>
        public static string Show(byte[] data, int offset, int count, int max = 120)
        {
            var b = new StringBuilder("\"");
            int shown = Math.Min(count, max);
            for (int i = 0; i < shown; i++)
            {
                byte c = data[offset + i];
                switch (c)
                {
                    case (byte)'\r': b.Append("\\r"); break;
                    case (byte)'\n': b.Append("\\n"); break;
                    case (byte)'\t': b.Append("\\t"); break;
                    case (byte)'"': b.Append("\\\""); break;
                    case (byte)'\\': b.Append("\\\\"); break;
                    default:
                        if (c < 0x20 || c >= 0x7F) b.Append("\\x").Append(c.ToString("X2", CultureInfo.InvariantCulture));
                        else b.Append((char)c);
                        break;
                }
            }

            b.Append('"');
            if (count > shown) b.Append($" … ({count} bytes)");
            return b.ToString();
        }
    }

    /// <summary>A parsed JSON value with where it began, for error messages.</summary>
    internal sealed class JsonNode
    {
        public JsonNode(object value, int line, int column)
        {
            Value = value;
            Line = line;
            Column = column;
        }

        /// <summary>null, bool, double, string, List&lt;JsonNode&gt;, or List&lt;KeyValuePair&lt;string, JsonNode&gt;&gt;.</summary>
        public object Value { get; }

        public int Line { get; }

        public int Column { get; }
    }

    /// <summary>A small strict JSON reader (no dependency) whose errors say line and column.</summary>
    internal sealed class RecordingJsonReader
    {
        private const int MaxDepth = 64;
        private readonly string _text;
        private readonly string _name;
        private int _pos;
        private int _line = 1;
        private int _lineStart;

        public RecordingJsonReader(string text, string name)
        {
            _text = text ?? string.Empty;
            _name = name;
        }

        public JsonNode ReadDocument()
        {
            if (_text.Length > 0 && _text[0] == '\uFEFF') _pos = 1;
            SkipSpace();
            if (_pos >= _text.Length) throw Fail("the file is empty: a recording is a JSON object with \"connections\"");
            var node = ReadValue(0);
            SkipSpace();
            if (_pos < _text.Length) throw Fail($"unexpected '{_text[_pos]}' after the end of the JSON document");
            return node;
        }

        public TcpException Error(JsonNode node, string problem) =>
            new TcpException(TcpErrorKind.RecordingInvalid, $"The recording {_name} is invalid at line {node?.Line ?? _line}, column {node?.Column ?? 1}: {problem}.");

        public List<KeyValuePair<string, JsonNode>> AsObject(JsonNode node, string what) =>
            node.Value as List<KeyValuePair<string, JsonNode>> ?? throw Error(node, $"{what} must be a JSON object {{ … }}");

        public List<JsonNode> AsArray(JsonNode node, string what) =>
            node.Value as List<JsonNode> ?? throw Error(node, $"{what} must be a JSON array [ … ]");

        public string AsString(JsonNode node, string what) =>
            node.Value as string ?? throw Error(node, $"{what} must be a string in double quotes");

        public double AsNumber(JsonNode node, string what) =>
            node.Value is double d ? d : throw Error(node, $"{what} must be a number");

        public JsonNode Optional(List<KeyValuePair<string, JsonNode>> obj, string key)
        {
            foreach (var pair in obj)
            {
                if (string.Equals(pair.Key, key, StringComparison.OrdinalIgnoreCase)) return pair.Value;
            }

            return null;
        }

        public JsonNode Required(List<KeyValuePair<string, JsonNode>> obj, string key, string what)
        {
            var node = Optional(obj, key);
            if (node != null) return node;
            // Point at the object itself: its first member, or where it would be.
            var at = obj.Count > 0 ? obj[0].Value : null;
            throw Error(at, $"{what} has no \"{key}\"");
        }

        private JsonNode ReadValue(int depth)
        {
            if (depth > MaxDepth) throw Fail("the JSON is nested too deeply");
            SkipSpace();
            if (_pos >= _text.Length) throw Fail("the file ends where a value was expected (is it cut short?)");
            int line = _line, column = _pos - _lineStart + 1;
            char c = _text[_pos];
            switch (c)
            {
                case '{': return new JsonNode(ReadObject(depth), line, column);
                case '[': return new JsonNode(ReadArray(depth), line, column);
                case '"': return new JsonNode(ReadString(), line, column);
                case 't': Expect("true"); return new JsonNode(true, line, column);
                case 'f': Expect("false"); return new JsonNode(false, line, column);
                case 'n': Expect("null"); return new JsonNode(null, line, column);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return new JsonNode(ReadNumber(), line, column);
                    throw Fail($"unexpected '{c}' where a value was expected");
            }
        }

        private List<KeyValuePair<string, JsonNode>> ReadObject(int depth)
        {
            var members = new List<KeyValuePair<string, JsonNode>>();
            _pos++;
            SkipSpace();
            if (Peek() == '}')
            {
                _pos++;
                return members;
            }

            while (true)
            {
                SkipSpace();
                if (Peek() != '"') throw Fail(Peek() == '\0' ? "the file ends inside an object (a missing '}'?)" : $"expected a member name in double quotes, found '{Peek()}'");
                var key = ReadString();
                SkipSpace();
                if (Peek() != ':') throw Fail($"expected ':' after \"{key}\"");
                _pos++;
                members.Add(new KeyValuePair<string, JsonNode>(key, ReadValue(depth + 1)));
                SkipSpace();
                char c = Peek();
                _pos++;
                if (c == '}') return members;
                if (c != ',') { _pos--; throw Fail(c == '\0' ? "the file ends inside an object (a missing '}'?)" : $"expected ',' or '}}', found '{c}'"); }
            }
        }

        private List<JsonNode> ReadArray(int depth)
        {
            var items = new List<JsonNode>();
            _pos++;
            SkipSpace();
            if (Peek() == ']')
            {
                _pos++;
                return items;
            }

            while (true)
            {
                items.Add(ReadValue(depth + 1));
                SkipSpace();
                char c = Peek();
                _pos++;
                if (c == ']') return items;
                if (c != ',') { _pos--; throw Fail(c == '\0' ? "the file ends inside an array (a missing ']'?)" : $"expected ',' or ']', found '{c}'"); }
            }
        }

        private string ReadString()
        {
            var b = new StringBuilder();
            _pos++;
            while (true)
            {
                if (_pos >= _text.Length) throw Fail("the file ends inside a string (a missing '\"'?)");
                char c = _text[_pos++];
                if (c == '"') return b.ToString();
                if (c == '\n') { _pos--; throw Fail("a string runs past the end of its line (a missing '\"', or a line break that should be written \\n)"); }
                if (c < 0x20) { _pos--; throw Fail("a control character in a string must be escaped (\\n, \\r, \\t or \\u00XX)"); }
                if (c != '\\')
                {
                    b.Append(c);
                    continue;
                }

                if (_pos >= _text.Length) throw Fail("the file ends inside a string");
                char e = _text[_pos++];
                switch (e)
                {
                    case '"': b.Append('"'); break;
                    case '\\': b.Append('\\'); break;
                    case '/': b.Append('/'); break;
                    case 'b': b.Append('\b'); break;
                    case 'f': b.Append('\f'); break;
                    case 'n': b.Append('\n'); break;
                    case 'r': b.Append('\r'); break;
                    case 't': b.Append('\t'); break;
                    case 'u':
                        if (_pos + 4 > _text.Length || !int.TryParse(_text.Substring(_pos, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
                        {
                            throw Fail("\\u must be followed by four hex digits");
                        }

                        b.Append((char)code);
                        _pos += 4;
                        break;
                    default:
                        _pos--;
                        throw Fail($"'\\{e}' is not a JSON escape (use \\n, \\r, \\t, \\\", \\\\ or \\uXXXX)");
                }
            }
        }

        private double ReadNumber()
        {
            int start = _pos;
            while (_pos < _text.Length && "+-0123456789.eE".IndexOf(_text[_pos]) >= 0) _pos++;
            var s = _text.Substring(start, _pos - start);
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || double.IsNaN(d) || double.IsInfinity(d))
            {
                _pos = start;
                throw Fail($"'{s}' is not a number");
            }

            return d;
        }

        private void Expect(string word)
        {
            if (string.CompareOrdinal(_text, _pos, word, 0, word.Length) != 0) throw Fail($"unexpected '{_text[_pos]}' where a value was expected");
            _pos += word.Length;
        }

        private char Peek() => _pos < _text.Length ? _text[_pos] : '\0';

        private void SkipSpace()
        {
            while (_pos < _text.Length)
            {
                char c = _text[_pos];
                if (c == '\n')
                {
                    _line++;
                    _lineStart = _pos + 1;
                }
                else if (c != ' ' && c != '\t' && c != '\r')
                {
                    return;
                }

                _pos++;
            }
        }

        private TcpException Fail(string problem) =>
            new TcpException(TcpErrorKind.RecordingInvalid, $"The recording {_name} is invalid at line {_line}, column {_pos - _lineStart + 1}: {problem}.");
    }
}
