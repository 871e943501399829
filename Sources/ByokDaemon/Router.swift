import BYOK
import ByokAPI
import Foundation
import Logging

/// Maps the HTTP API (docs/API.md) onto the token service.
struct Router {
    let service: TokenService

    func handle(_ request: HTTPRequest, peer: PeerCredentials?, logger: Logger) -> HTTPResponse {
        let started = Date()
        let response: HTTPResponse
        do {
            response = try route(request)
        } catch let e as ByokError {
            response = .error(e)
        } catch {
            response = .error(ByokError(.internal, "\(error)"))
        }
        logger.info("\(request.method) \(request.path)", metadata: [
            "peer": "\(peer?.description ?? "?")", "status": "\(response.status)",
            "ms": "\(Int(Date().timeIntervalSince(started) * 1000))",
        ])
        return response
    }

    private func route(_ r: HTTPRequest) throws -> HTTPResponse {
        switch (r.method, r.path) {
        case ("GET", "/v1/status"):
            return .json(service.status())
        case ("GET", "/v1/keys"):
            return .json(try service.listKeys())
        case ("POST", "/v1/keys"):
            return .json(try service.generate(try JSONCoding.decode(GenerateRequest.self, r.body)), status: 201)
        case ("POST", "/v1/wrap"):
            return .json(try service.wrap(try JSONCoding.decode(WrapRequest.self, r.body)))
        case ("POST", "/v1/selftest"):
            let results = try service.runSelfTest()
            return .json(SelfTestResponse(algorithms: results.map {
                .init(name: $0.algorithm.rawValue, state: $0.state.rawValue, via: $0.route?.description, reason: $0.reason)
            }, at: Timestamp.string(Date())))
        case (_, "/v1/status"), (_, "/v1/keys"), (_, "/v1/wrap"), (_, "/v1/selftest"):
            throw ByokError(.badRequest, "\(r.method) is not allowed on \(r.path) (see docs/API.md)")
        default:
            throw ByokError(.notFound, "no such endpoint \(r.path); see docs/API.md")
        }
    }
}
