import ByokAPI
import Foundation

/// Who may do what, decided from the kernel's word about the peer (SO_PEERCRED), never from the
/// request. Principals are `user:NAME`, `uid:N`, `group:NAME` or `gid:N`; a group matches the
/// peer's primary group or any group the peer's user belongs to. An operation the configuration
/// does not list is allowed to root and to the group that owns the socket.
public struct AccessPolicy: Sendable {
    public enum Principal: Sendable, Equatable {
        case uid(UInt32)
        case gid(UInt32)
    }

    let rules: [Operation: [Principal]]
    let defaults: [Principal]

    /// - Parameter socketGroup: the gid owning the socket file (the default operators' group).
    public init(config: [String: [String]]?, socketGroup: UInt32?) throws {
        var rules: [Operation: [Principal]] = [:]
        for (name, principals) in config ?? [:] {
            guard let op = Operation(rawValue: name), op.isPermission else {
                throw ByokError(.badRequest, "unknown operation \"\(name)\" in access; known: \(Operation.accessNames.map(\.rawValue).joined(separator: ", "))")
            }
            rules[op] = try principals.map(Self.parse)
        }
        self.rules = rules
        defaults = [.uid(0)] + (socketGroup.map { [.gid($0)] } ?? [])
    }

    static func parse(_ s: String) throws -> Principal {
        let parts = s.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw ByokError(.badRequest, "access principal \"\(s)\" is not user:NAME, uid:N, group:NAME or gid:N") }
        switch parts[0] {
        case "uid": if let n = UInt32(parts[1]) { return .uid(n) }
        case "gid": if let n = UInt32(parts[1]) { return .gid(n) }
        case "user":
            if let pw = getpwnam(parts[1]) { return .uid(pw.pointee.pw_uid) }
            throw ByokError(.badRequest, "access names user \"\(parts[1])\", who does not exist")
        case "group":
            if let gr = getgrnam(parts[1]) { return .gid(gr.pointee.gr_gid) }
            throw ByokError(.badRequest, "access names group \"\(parts[1])\", which does not exist")
        default: break
        }
        throw ByokError(.badRequest, "access principal \"\(s)\" is not user:NAME, uid:N, group:NAME or gid:N")
    }

    public func allows(_ op: Operation, _ peer: PeerCredentials) -> Bool {
        let principals = rules[op] ?? defaults
        let groups = peer.groups
        return principals.contains {
            switch $0 {
            case .uid(let u): return u == peer.uid
            case .gid(let g): return groups.contains(g)
            }
        }
    }
}

extension PeerCredentials {
    /// The peer's primary group and every group its user belongs to (getgrouplist).
    static func groups(user name: String, gid: UInt32) -> Set<UInt32> {
        var result: Set<UInt32> = [gid]
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &list, &count) == -1 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &list, &count)
        }
        result.formUnion(list.prefix(Int(max(count, 0))))
        return result
    }
}
