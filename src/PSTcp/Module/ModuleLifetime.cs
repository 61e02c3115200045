using System;
using System.IO;
using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;

namespace PSTcp.Commands
{
    /// <summary>
    /// Import and Remove-Module hooks. On import under Windows PowerShell 5.1 (.NET Framework),
    /// the netstandard2.0 packages the core needs (System.Memory, System.IO.Pipelines, …) are
    /// resolved from the module's folder when another version is asked for; on PowerShell 7 the
    /// runtime's own, newer copies are used. Remove-Module stops every server, connection and
    /// consumer job.
    /// </summary>
    public sealed class ModuleLifetime : IModuleAssemblyInitializer, IModuleAssemblyCleanup
    {
        private static readonly string ModuleDirectory = Path.GetDirectoryName(typeof(ModuleLifetime).Assembly.Location);
        private static readonly bool OnNetFramework =
            RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.OrdinalIgnoreCase);

        public void OnImport()
        {
            RegisterPesterOperator();
            if (OnNetFramework)
            {
                AppDomain.CurrentDomain.AssemblyResolve += ResolveFromModuleDirectory;
            }
        }

        /// <summary>With Pester 5 loaded, Should -HaveReceivedTcpMessage is there at once; any failure here is no import failure.</summary>
        private static void RegisterPesterOperator()
        {
            try
            {
                var path = Path.Combine(ModuleDirectory, RegisterTcpShouldOperatorCommand.ScriptName);
                if (!File.Exists(path) || System.Management.Automation.Runspaces.Runspace.DefaultRunspace == null) return;
                using (var ps = PowerShell.Create(RunspaceMode.CurrentRunspace))
                {
                    ps.AddScript("if (Get-Command Add-ShouldOperator -ErrorAction Ignore) { . $args[0] }").AddArgument(path);
                    ps.Invoke();
                }
            }
            catch (Exception)
            {
                // Pester's absence, or a nested pipeline this host refuses: Register-TcpShouldOperator does it later.
            }
        }

        public void OnRemove(PSModuleInfo psModuleInfo)
        {
            TcpRegistry.Shutdown();
            if (OnNetFramework)
            {
                AppDomain.CurrentDomain.AssemblyResolve -= ResolveFromModuleDirectory;
            }
        }

        private static Assembly ResolveFromModuleDirectory(object sender, ResolveEventArgs args)
        {
            // Only our own dependencies, and only when the file we ship is there: anything else
            // is left to the runtime.
            var name = new AssemblyName(args.Name).Name;
            var path = Path.Combine(ModuleDirectory, name + ".dll");
            return File.Exists(path) ? Assembly.LoadFrom(path) : null;
        }
    }
}
