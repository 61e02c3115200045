using System;
using System.Globalization;

namespace PSTcp.Commands
{
    /// <summary>Helpers the format views call: readable sizes and durations.</summary>
    public static class DisplayFormat
    {
        private static readonly string[] Units = { "B", "KB", "MB", "GB", "TB" };

        /// <summary>1536 → "1.5 KB".</summary>
        public static string Bytes(long bytes)
        {
            double value = bytes;
            int unit = 0;
            while (value >= 1024 && unit < Units.Length - 1)
            {
                value /= 1024;
                unit++;
            }

            return unit == 0
                ? bytes.ToString(CultureInfo.CurrentCulture) + " B"
                : value.ToString(value < 10 ? "0.0" : "0", CultureInfo.CurrentCulture) + " " + Units[unit];
        }

        /// <summary>1234567 → "1,234,567" (the current culture's separator); empty for a missing value.</summary>
        public static string Count(object value)
        {
            switch (value)
            {
                case null: return string.Empty;
                case System.Management.Automation.PSObject pso: return Count(pso.BaseObject);
                case IFormattable number: return number.ToString("N0", CultureInfo.CurrentCulture);
                default: return value.ToString();
            }
        }

        /// <summary>Time since <paramref name="since"/>, as d.hh:mm:ss.</summary>
        public static string Age(DateTimeOffset since)
        {
            var age = DateTimeOffset.Now - since;
            return new TimeSpan(age.Days, age.Hours, age.Minutes, age.Seconds).ToString("c", CultureInfo.InvariantCulture);
        }
    }
}
