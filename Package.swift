// swift-tools-version:6.1
import PackageDescription

// Dependencies are few on purpose (see docs/DESIGN.md): the argument parser for byokctl/byokd and
// swift-log for the daemon's logs. The socket server, HTTP framing and the ZIP reader are small
// enough to own, which keeps cold start and the build short and leaves nothing unfuzzed. C comes
// in through system-library targets only.
// Every target, the tests and the benchmark included, is in Swift 6 language mode (complete
// concurrency checking, the package default below).

let package = Package(
    name: "byokd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "byokd", targets: ["byokd"]),
        .executable(name: "byokctl", targets: ["byokctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // The C boundary: p11-kit's pkcs11.h, its URI parser and module registry.
        .systemLibrary(name: "CPKCS11", path: "pkcs11", pkgConfig: "p11-kit-1",
                       providers: [.apt(["libp11-kit-dev"])]),
        // zlib: inflating the console's ImportParameters.zip.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libcurl: HTTPS to AWS KMS.
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // OpenSSL's libcrypto: SubjectPublicKeyInfo parsing, SHA-256, software RSA for the self-test.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),

        // Linux socket calls glibc hides behind _GNU_SOURCE (SO_PEERCRED, accept4).
        .target(name: "CByokSys"),

        // Blocking I/O calls made one way: EINTR retried, short reads and writes continued, errno
        // captured at once.
        .target(name: "Posix"),

        // Typed PKCS#11: modules, slots, sessions, attributes, mechanisms. Knows nothing of AWS.
        .target(name: "PKCS11", dependencies: ["CPKCS11", "Posix"]),
        // The BYOK domain: key specs, wrapping algorithms, import parameters, on-token wrap.
        .target(name: "BYOK", dependencies: [
            "PKCS11", "COpenSSL", "ByokAPI", "CZlib",
        ]),
        // The AWS KMS client: JSON protocol over libcurl, SigV4, credentials and endpoints as the SDKs resolve them.
        .target(name: "KMSClient", dependencies: ["CCurl", "COpenSSL", "ByokAPI"]),
        // The wire protocol shared by daemon and client: request/response bodies, error codes.
        .target(name: "ByokAPI", dependencies: ["COpenSSL"]),
        // The daemon: Unix socket, HTTP/1.1 framing, routing, token service, configuration.
        .target(name: "ByokDaemon", dependencies: [
            "BYOK", "PKCS11", "ByokAPI", "CByokSys", "KMSClient", "Posix",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The client side: talks to the socket, reads operator files, writes outputs atomically.
        .target(name: "ByokClient", dependencies: ["ByokAPI", "COpenSSL", "Posix"]),

        .executableTarget(name: "byokd", dependencies: [
            "ByokDaemon", "ByokAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "byokctl", dependencies: [
            "ByokClient", "ByokAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // The fuzz target (libFuzzer with -DFUZZING, see scripts/fuzz); without it, a corpus replayer.
        .executableTarget(name: "byokd-fuzz", dependencies: ["ByokDaemon"]),
        // The benchmark: byokd against a raw C_WrapKey loop on the same token (README, "Performance").
        .executableTarget(name: "byokd-bench", dependencies: ["BYOK", "PKCS11", "ByokAPI", "ByokClient", "Posix"]),

        .testTarget(name: "PosixTests", dependencies: ["Posix"]),
        .testTarget(name: "PKCS11Tests", dependencies: ["PKCS11", "TestSupport"]),
        .testTarget(name: "BYOKTests", dependencies: ["BYOK", "ByokAPI", "PKCS11", "COpenSSL", "ByokDaemon", "TestSupport",
                                                    .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "KMSClientTests", dependencies: ["KMSClient", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["ByokAPI", "ByokClient", "TestSupport", "COpenSSL", "PKCS11"]),
        // Token fixtures (fresh SoftHSM and NSS token directories, and tokens loaded in the test
        // process through the PKCS11 layer), OpenSSL as the "AWS side".
        .target(name: "TestSupport", dependencies: ["PKCS11"], path: "Tests/TestSupport"),
    ],
    swiftLanguageModes: [.v6]
)
