import BYOK
import ByokAPI
import Foundation
import CByokSys
import Logging

/// byokd's life: prepare the token, self-test, listen, serve, and on SIGTERM stop accepting,
/// let requests in flight finish, close the sessions and finalize the module, in that order.
public enum Daemon {
    /// Two malloc arenas instead of glibc's eight per core: byokd's threads are many but short of
    /// work, and each arena keeps freed memory resident.
    public static func limitMallocArenas() { byok_limit_malloc_arenas(2) }

    public static func run(config: Configuration, logger: Logger) -> Int32 {
        var config = config
        // Settings that name things are checked before anything starts.
        do {
            _ = try config.resolvedWrappingKeySources()
            _ = try Operation.twoPersonSet(config.twoPersonRule)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            return 2
        }
        do {
            try FileManager.default.createDirectory(atPath: config.resolvedStateDir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            if config.devToken == true { config = try DevToken.prepare(config, logger: logger) }
        } catch {
            logger.critical("cannot prepare the state directory", metadata: ["error": "\(StartupFailure.stateDir(error, config.resolvedStateDir))"])
            return 1
        }
        var service: TokenService?
        do {
            service = try TokenService(config: config, logger: logger)
            try service!.prepareTrustedWrapping()
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            return 3
        }
        let listenFD: Int32
        let inherited = Systemd.inheritedSocket()
        if let fd = inherited {
            listenFD = fd
            logger.info("listening on the socket systemd passed")
        } else {
            do { listenFD = try SocketServer.bind(path: config.resolvedSocket, mode: config.resolvedSocketMode) } catch {
                logger.critical("cannot listen", metadata: ["error": "\(StartupFailure.socket(error, config.resolvedSocket))"])
                return 1
            }
            logger.info("listening", metadata: ["socket": "\(config.resolvedSocket)"])
        }
        let pipeline: RequestPipeline
        do {
            let audit = try AuditLog(path: config.resolvedAuditLog)
            if let macKey = config.auditMacKey, let service {
                audit.signer = { [service] digest in service.hmac(key: macKey, digest) }
                logger.info("audit records are MACed on the token", metadata: ["key": "\(macKey)"])
            }
            pipeline = RequestPipeline(service: service!, policy: try AccessPolicy(config: config.access, socketGroup: SocketServer.group(of: listenFD)),
                                       audit: audit, approvals: Approvals(timeout: config.resolvedApprovalTimeout),
                                       twoPerson: try Operation.twoPersonSet(config.twoPersonRule), macKey: config.auditMacKey,
                                       sources: try config.resolvedWrappingKeySources(), trustedWrapping: config.resolvedTrustedWrapping)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            return 2
        }
        logger.info("audit log", metadata: ["path": "\(config.resolvedAuditLog)"])
        let server = SocketServer(listenFD: listenFD, config: config, logger: logger) { req, peer, log in
            pipeline.handle(req, peer: peer, logger: log)
        }
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let signals = [SIGTERM, SIGINT].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                logger.notice("stopping", metadata: ["signal": "\(sig == SIGTERM ? "SIGTERM" : "SIGINT")"])
                Systemd.notify("STOPPING=1")
                server.stop(grace: 30)
            }
            s.resume()
            return s
        }
        service!.startSelfTest()
        Systemd.notify("READY=1\nSTATUS=serving")
        server.run()
        // run() returns once stop() closed the listening socket; stop() waits for requests in flight.
        server.stop(grace: 30)
        server.closeListener()
        // The signal handlers hold the server, and through it the token service. libdispatch frees a
        // cancelled source's handler on a worker thread, before its cancel handler runs: wait for that,
        // so the sessions close and the module finalizes here, not while the process exits (a SoftHSM
        // C_CloseSession racing its static destructors crashed ~1 stop in 3 of a release build).
        let released = DispatchGroup()
        for s in signals {
            released.enter()
            s.setCancelHandler { released.leave() }
            s.cancel()
        }
        released.wait()
        service = nil
        if inherited == nil { unlink(config.resolvedSocket) }
        logger.notice("stopped")
        return 0
    }
}
