import Foundation

/// AWS credentials. The secret never prints.
public struct AWSCredentials: Sendable, CustomStringConvertible {
    public let accessKeyId: String
    public let secretAccessKey: String
    public let sessionToken: String?
    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyId = accessKeyId; self.secretAccessKey = secretAccessKey; self.sessionToken = sessionToken
    }
    public var description: String { "AWSCredentials(\(accessKeyId), secret redacted)" }
}

/// Where and as whom to call KMS, resolved the way the AWS SDKs do:
/// credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else the shared
/// credentials and config files (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, profile AWS_PROFILE);
/// region from AWS_REGION, AWS_DEFAULT_REGION, else the config file; endpoint from
/// AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, else the profile's endpoint_url, else
/// https://kms.REGION.amazonaws.com. HTTPS_PROXY/NO_PROXY are honoured by libcurl.
public struct KMSConfiguration: Sendable {
    public var credentials: AWSCredentials
    public var region: String
    public var endpoint: URL
    public var connectTimeout: Double = 5
    public var totalTimeout: Double = 30
    public var maxAttempts: Int = 3

    public struct Missing: Error, CustomStringConvertible { public let description: String }

    public static func resolve(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> KMSConfiguration {
        let home = env["HOME"] ?? NSHomeDirectory()
        let profile = env["AWS_PROFILE"] ?? env["AWS_DEFAULT_PROFILE"] ?? "default"
        let credentialsFile = INI(path: env["AWS_SHARED_CREDENTIALS_FILE"] ?? home + "/.aws/credentials")
        let configFile = INI(path: env["AWS_CONFIG_FILE"] ?? home + "/.aws/config")
        let configSection = configFile?[profile == "default" ? "default" : "profile \(profile)"] ?? [:]
        let credentials: AWSCredentials
        if let id = env["AWS_ACCESS_KEY_ID"], let secret = env["AWS_SECRET_ACCESS_KEY"], !id.isEmpty, !secret.isEmpty {
            credentials = AWSCredentials(accessKeyId: id, secretAccessKey: secret, sessionToken: env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 })
        } else if let s = credentialsFile?[profile] ?? (configSection["aws_access_key_id"] != nil ? configSection : nil),
                  let id = s["aws_access_key_id"], let secret = s["aws_secret_access_key"] {
            credentials = AWSCredentials(accessKeyId: id, secretAccessKey: secret, sessionToken: s["aws_session_token"])
        } else {
            throw Missing(description: "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in byokd's environment, or give profile \"\(profile)\" in the shared credentials file")
        }
        guard let region = env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? configSection["region"], !region.isEmpty else {
            throw Missing(description: "no AWS region: set AWS_REGION, or region in profile \"\(profile)\" of the config file")
        }
        let endpointString = env["AWS_ENDPOINT_URL_KMS"] ?? env["AWS_ENDPOINT_URL"] ?? configSection["endpoint_url"] ?? "https://kms.\(region).amazonaws.com"
        guard let endpoint = URL(string: endpointString), endpoint.host != nil else {
            throw Missing(description: "the KMS endpoint \"\(endpointString)\" is not a URL")
        }
        return KMSConfiguration(credentials: credentials, region: region, endpoint: endpoint)
    }
}

/// The AWS shared config/credentials file format: `[section]` and `key = value` lines.
struct INI {
    var sections: [String: [String: String]] = [:]
    init?(path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var current = ""
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") { current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces); continue }
            guard let eq = line.firstIndex(of: "=") else { continue }
            sections[current, default: [:]][line[..<eq].trimmingCharacters(in: .whitespaces)] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        }
    }
    subscript(_ s: String) -> [String: String]? { sections[s] }
}
