namespace PSTcp.Commands
{
    /// <summary>
    /// Where PSTcp's documentation lives online: each cmdlet's HelpUri (what
    /// <c>Get-Help -Online</c> opens) is <see cref="Base"/> plus its help source's file name
    /// (module/help/Verb-Noun.md). The manifest's ProjectUri and HelpInfoURI name the same
    /// project; build/HelpBuilder.ps1 writes the URI into the MAML too ("Online Version:").
    /// </summary>
    internal static class HelpLinks
    {
        /// <summary>The project's home (the manifest's PrivateData.PSData.ProjectUri).</summary>
        public const string Project = "https://github.com/PSTcp/PSTcp";

        /// <summary>The cmdlets' help sources on the project's main branch.</summary>
        public const string Base = Project + "/blob/main/module/help/";
    }
}
