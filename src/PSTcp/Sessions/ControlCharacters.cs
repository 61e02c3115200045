using System.Text;

namespace PSTcp.Commands
{
    /// <summary>
    /// What Enter-TcpSession prints of a peer's text: control characters as visible text, the way
    /// <c>cat -v</c> shows them, so no escape sequence from the peer reaches the terminal (a title,
    /// colours, a cursor move, a bell). ESC is <c>^[</c>, BEL <c>^G</c>, CR <c>^M</c>, the other
    /// C0 controls <c>^@</c> to <c>^_</c>, DEL <c>^?</c>, and the C1 controls U+0080 to U+009F
    /// (CSI, U+009B, starts a sequence on some terminals) <c>M-^@</c> to <c>M-^_</c>. Tab stays a
    /// tab. A caret in the text itself is left as is: the form is for reading, not for parsing.
    /// </summary>
    internal static class ControlCharacters
    {
        /// <summary>True when the text has a character <see cref="Escape"/> would change.</summary>
        public static bool NeedsEscaping(string text)
        {
            foreach (var c in text)
            {
                if (IsEscaped(c)) return true;
            }

            return false;
        }

        public static string Escape(string text)
        {
            if (string.IsNullOrEmpty(text) || !NeedsEscaping(text)) return text;
            var result = new StringBuilder(text.Length + 8);
            foreach (var c in text)
            {
                if (!IsEscaped(c)) result.Append(c);
                else if (c == '\x7f') result.Append("^?");
                else if (c < ' ') result.Append('^').Append((char)(c + '@'));
                else result.Append("M-^").Append((char)(c - 0x80 + '@'));
            }

            return result.ToString();
        }

        private static bool IsEscaped(char c) => (c < ' ' && c != '\t') || (c >= '\x7f' && c <= '\x9f');
    }
}
