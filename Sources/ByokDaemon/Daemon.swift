import BYOK
import ByokAPI
import Foundation
import CByokSys
import Logging

/// byokd's life: lock its state directory, prepare the token, open the audit log (and its MAC
/// key), self-test, listen, serve, and on SIGTERM stop accepting, let requests in flight finish,
/// close the sessions and finalize the module, in that order.
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
        // Then, before any file in it is touched: the state directory is ours alone.
        let state: StateDirectory
        do {
            state = try StateDirectory(config.resolvedStateDir)
            try StateDirectory.prepareAuditDirectory(for: config.resolvedAuditLog, stateDir: config.resolvedStateDir)
        } catch {
            logger.critical("cannot use the state directory", metadata: ["error": "\(error)"])
            return 2
        }
        do {
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
        state.record(socket: inherited == nil ? config.resolvedSocket : SocketServer.path(of: listenFD) ?? "the socket systemd passed")
        let pipeline: RequestPipeline
        do {
            let tokens = service!
            let signer: AuditLog.Signer? = tokens.auditMacKey.map { key in { @Sendable digest in try key.sign(digest, service: tokens) } }
            // Every sync's head goes to the journal: kept off the host, it anchors the log's tail.
            let audit = try AuditLog(path: config.resolvedAuditLog, signer: signer, onSync: { head in logger.notice("audit head \(head)") })
            // An existing MAC key is checked first, so that even the record of a torn tail is MACed.
            try tokens.auditMacKey?.adopt(service: tokens, logger: logger)
            try audit.recordRecovery()
            try tokens.auditMacKey?.begin(service: tokens, audit: audit, logger: logger)
            pipeline = RequestPipeline(service: service!, policy: try AccessPolicy(config: config.access, socketGroup: SocketServer.group(of: listenFD)),
                                       audit: audit, approvals: Approvals(timeout: config.resolvedApprovalTimeout, limits: ApprovalLimits(config: config)),
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
            // Weakly: the handler is released on a dispatch thread, which must not be the one that
            // drops the last reference to the token service (and finalizes the module) as byokd exits.
            s.setEventHandler { [weak server] in
                logger.notice("stopping", metadata: ["signal": "\(sig == SIGTERM ? "SIGTERM" : "SIGINT")"])
                Systemd.notify("STOPPING=1")
                server?.stop(grace: 30)
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
        service?.shutdown()
        service = nil
        if inherited == nil { unlink(config.resolvedSocket) }
        logger.notice("stopped")
        withExtendedLifetime(state) {}
        return 0
    }
}
