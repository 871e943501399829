import Foundation
import KMSClient
import TestSupport
import XCTest

/// SigV4 signatures equal botocore's (from PyPI, the reference) for the same request, time and
/// credentials.
final class SigV4Tests: XCTestCase {
    func botocoreSignature(_ python: String, url: String, region: String, target: String, body: Data, ak: String, sk: String, token: String?, amzDate: String) throws -> String {
        let script = """
            import sys, botocore.auth, botocore.awsrequest, botocore.credentials
            url, region, target, ak, sk, token, ts = sys.argv[1:8]
            body = sys.stdin.buffer.read()
            creds = botocore.credentials.Credentials(ak, sk, token or None)
            req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body,
                headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
            signer = botocore.auth.SigV4Auth(creds, "kms", region)
            req.context["timestamp"] = ts
            signer._modify_request_before_signing(req)
            canonical = signer.canonical_request(req)
            print(signer.signature(signer.string_to_sign(req, canonical), req))
            """
        return try Tools.check(python, ["-c", script, url, region, target, ak, sk, token ?? "", amzDate], stdin: body).out
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testSignaturesEqualBotocores() throws {
        guard let python = Python.with(module: "botocore.auth") else {
            throw XCTSkip("botocore is not installed (scripts/localstack start installs it); SigV4 not compared")
        }
        let date = Date(timeIntervalSince1970: 1_764_385_689)  // 2025-11-29T03:08:09Z
        let cases: [(String, String, [String: Any], String?)] = [
            ("https://kms.us-east-1.amazonaws.com/", "us-east-1", ["KeyId": "alias/x"], nil),
            ("https://kms.eu-west-1.amazonaws.com/", "eu-west-1", ["Origin": "EXTERNAL", "KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"], "FQoGZXIvYXdzEJr//////////session-token=="),
            ("http://127.0.0.1:4566/", "us-east-1", ["Description": "clé de cérémonie — 鍵", "Tags": [["TagKey": "owner", "TagValue": "Zoë"]]], nil),
            ("https://kms-fips.us-gov-west-1.amazonaws.com/", "us-gov-west-1", [:], "tok"),
        ]
        for (url, region, body, token) in cases {
            let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
            let creds = AWSCredentials(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: token)
            let u = URL(string: url)!
            var host = u.host!
            if let p = u.port { host += ":\(p)" }
            let signed = SigV4(credentials: creds, region: region).sign(host: host, headers: ["Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.CreateKey"],
                                                                         body: Array(data), date: date)
            let ours = try XCTUnwrap(signed["Authorization"]?.components(separatedBy: "Signature=").last)
            let theirs = try botocoreSignature(python, url: url, region: region, target: "TrentService.CreateKey", body: data,
                                               ak: creds.accessKeyId, sk: creds.secretAccessKey, token: token, amzDate: SigV4.amzDate(date))
            XCTAssertEqual(ours, theirs, "\(url) \(body)")
            XCTAssertEqual(signed["X-Amz-Security-Token"], token)
        }
    }

    func testConfigurationIsResolvedLikeTheSDKs() throws {
        let dir = TempDir()
        let creds = dir.write("credentials", "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n[ops]\naws_access_key_id = AKIDOPS\naws_secret_access_key = s2\naws_session_token = t2\n")
        let config = dir.write("config", "[default]\nregion = eu-central-1\n\n[profile ops]\nregion = ap-south-1\nendpoint_url = https://vpce-123.kms.ap-south-1.vpce.amazonaws.com\n")
        var env = ["HOME": dir.path, "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": config]
        var c = try KMSConfiguration.resolve(env)
        XCTAssertEqual(c.credentials.accessKeyId, "AKIDDEFAULT")
        XCTAssertEqual(c.region, "eu-central-1")
        XCTAssertEqual(c.endpoint.absoluteString, "https://kms.eu-central-1.amazonaws.com")
        env["AWS_PROFILE"] = "ops"
        c = try KMSConfiguration.resolve(env)
        XCTAssertEqual(c.credentials.sessionToken, "t2")
        XCTAssertEqual(c.region, "ap-south-1")
        XCTAssertEqual(c.endpoint.host, "vpce-123.kms.ap-south-1.vpce.amazonaws.com")
        env["AWS_ACCESS_KEY_ID"] = "AKIDENV"; env["AWS_SECRET_ACCESS_KEY"] = "s3"; env["AWS_REGION"] = "us-west-2"
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"; env["AWS_ENDPOINT_URL_KMS"] = "http://127.0.0.1:4566"
        c = try KMSConfiguration.resolve(env)
        XCTAssertEqual(c.credentials.accessKeyId, "AKIDENV")
        XCTAssertEqual(c.region, "us-west-2")
        XCTAssertEqual(c.endpoint.port, 4566, "AWS_ENDPOINT_URL_KMS wins over AWS_ENDPOINT_URL")
        XCTAssertFalse("\(c.credentials)".contains("s3"), "the secret never prints")
        XCTAssertThrowsError(try KMSConfiguration.resolve(["HOME": "/nonexistent"]))
    }
}
