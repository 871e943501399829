import Foundation

/// A Python that can import `module` (botocore, boto3): $BYOKD_BOTOCORE_PYTHON, LocalStack's venv
/// (scripts/localstack), or python3.
public enum Python {
    public static func with(module: String) -> String? {
        let env = ProcessInfo.processInfo.environment
        let venv = (env["BYOKD_LOCALSTACK_VENV"] ?? (env["HOME"] ?? "/root") + "/.cache/byokd/localstack-venv") + "/bin/python"
        for c in [env["BYOKD_BOTOCORE_PYTHON"], venv, "python3"].compactMap({ $0 })
        where (try? Tools.run(c, ["-c", "import \(module)"]))?.code == 0 { return c }
        return nil
    }
}
