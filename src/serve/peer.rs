//! Who is on the other end of a connection, as the kernel knows it, and
//! whether the agent serves them: by default only processes of its own
//! user; `--allow-uid` and `--allow-gid` name more (SPEC §13, "Local
//! trust"). Loopback TCP is reachable by every user of the machine, so the
//! check runs the moment a connection is accepted, before a byte of it is
//! read: a key caught by another user — on a squatted port while the agent
//! restarted, or in a file it should not have read — opens nothing.
//!
//! * **Unix sockets**: `SO_PEERCRED` (uid, gid) and `SO_PEERGROUPS` (the
//!   supplementary groups) of the connecting process.
//! * **TCP**: the peer is a socket on this machine; its owner is found with
//!   **sock_diag** (`NETLINK_SOCK_DIAG`, `SOCK_DIAG_BY_FAMILY`): one exact
//!   lookup of the peer's socket by its four-tuple, answered by the kernel
//!   from its connection hash in constant time, as a fixed binary struct
//!   with the owner's uid and the socket's inode. That is the robust
//!   source. `/proc/net/tcp{,6}` says the same as text, but reading it is a
//!   scan of *every* TCP socket of the network namespace (the kernel formats
//!   the whole table, taking locks bucket by bucket), so its cost grows
//!   with the machine's connections — milliseconds per accept on a busy
//!   host — and it is read in pieces that may skip a socket that moves
//!   while it is read. It is used only where sock_diag is not available
//!   (a kernel without `INET_DIAG`, or a seccomp filter that refuses
//!   netlink).
//!
//! A socket its process has closed already keeps the uid of whoever made
//! it — unless the kernel has replaced it by a TIME_WAIT stub (which a
//! client's closed socket becomes as soon as its FIN is acknowledged),
//! whose uid reads 0, as if root owned it: that proves nothing and is
//! refused. So is a loopback peer that cannot be found. A client that sent
//! its request and closed before the agent accepted the connection is
//! thus not served — it could not have read the answer anyway. A TCP peer on another host (only possible
//! with a `--listen` beyond loopback, which is warned about) has no socket
//! here: it is served as before, on the strength of its key.
//!
//! Groups of a TCP peer are not in the kernel's answer: for `--allow-gid`
//! they are read from the group database (`/etc/passwd`, `/etc/group`) by
//! the peer's uid. A Unix socket's peer brings its own.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// Whom the agent serves besides its own user.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trust {
    /// The agent's own uid (its effective one).
    pub own: u32,
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

/// What the kernel says of a connection's peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A process of this uid holds the other end; with a Unix socket, its
    /// groups (primary first) too.
    Local { uid: u32, groups: Option<Vec<u32>> },
    /// A socket on this machine whose owner is gone from the kernel's
    /// answer (a TIME_WAIT stub).
    Orphaned,
    /// No socket of this machine: a peer on another host (or gone).
    NotHere,
}

/// Why a connection was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another user, not allowed.
    Stranger(u32),
    /// The peer's socket belongs to no process, or cannot be found although
    /// the peer is local.
    Unknown(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Stranger(uid) => write!(
                f,
                "from another user (uid {uid}): only the agent's own user is served, and those --allow-uid/--allow-gid name"
            ),
            Refusal::Unknown(why) => write!(f, "whose owner cannot be told: {why}"),
        }
    }
}

impl Trust {
    /// Whether a connection from `peer`, arriving from `from`, is served.
    pub fn admit(&self, peer: &Peer, from: IpAddr) -> Result<(), Refusal> {
        match peer {
            Peer::Local { uid, groups } => {
                if *uid == self.own || self.uids.contains(uid) {
                    return Ok(());
                }
                if !self.gids.is_empty() {
                    let groups = match groups {
                        Some(groups) => groups.clone(),
                        None => groups_of(*uid),
                    };
                    if groups.iter().any(|g| self.gids.contains(g)) {
                        return Ok(());
                    }
                }
                Err(Refusal::Stranger(*uid))
            }
            Peer::Orphaned => Err(Refusal::Unknown(
                "the client closed its socket before it was accepted".into(),
            )),
            Peer::NotHere if is_local(from) => Err(Refusal::Unknown(
                "its socket is not in the kernel's table".into(),
            )),
            Peer::NotHere => Ok(()),
        }
    }
}

/// A loopback address, or one that names this host in IPv4-mapped form.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// The peer of a Unix socket: `SO_PEERCRED` and `SO_PEERGROUPS`.
pub fn of_unix(fd: RawFd) -> std::io::Result<Peer> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid fd and out-pointer of the size given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut groups = vec![cred.gid];
    let mut buf = [0 as libc::gid_t; 256];
    let mut len = std::mem::size_of_val(&buf) as libc::socklen_t;
    // SAFETY: as above; the kernel writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == 0 {
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        groups.extend_from_slice(&buf[..n.min(buf.len())]);
    }
    Ok(Peer::Local {
        uid: cred.uid,
        groups: Some(groups),
    })
}

/// Finds the owners of TCP peers; one netlink socket, kept open.
#[derive(Default)]
pub struct TcpOwners {
    diag: Mutex<Option<OwnedFd>>,
}

impl TcpOwners {
    /// The owner of the socket at `peer` connected to `local` (our side).
    pub fn of(&self, local: SocketAddr, peer: SocketAddr) -> Peer {
        let (local, peer) = (unmapped(local), unmapped(peer));
        match self.diag(local, peer) {
            Ok(found) => found,
            Err(_) => proc_net(local, peer).unwrap_or(Peer::NotHere),
        }
    }

    fn diag(&self, local: SocketAddr, peer: SocketAddr) -> std::io::Result<Peer> {
        let mut slot = self.diag.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(diag_socket()?);
        }
        let fd = slot.as_ref().map(AsRawFd::as_raw_fd).unwrap_or(-1);
        let found = diag_lookup(fd, local, peer);
        if found.is_err() {
            // Perhaps the socket itself is broken: a new one next time.
            *slot = None;
        }
        found
    }
}

/// `::ffff:a.b.c.d` as the IPv4 address it is (an IPv4 client of a dual-stack listener).
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

// The kernel's sock_diag ABI (linux/sock_diag.h, linux/inet_diag.h).
const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDR: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, sockid (48).
const REQ: usize = 56;
/// `struct inet_diag_msg` up to and including `idiag_inode`.
const MSG: usize = 72;
/// `TCP_TIME_WAIT`, and the timer the kernel reports for TIME_WAIT stubs
/// (whatever state they stand for).
const TIME_WAIT: u8 = 6;
const TIME_WAIT_TIMER: u8 = 3;

/// The owner of a socket the kernel describes: the uid it reports, unless
/// the socket is a TIME_WAIT stub, which has none.
fn owner(state: u8, timer: u8, uid: u32) -> Peer {
    if state == TIME_WAIT || timer == TIME_WAIT_TIMER {
        Peer::Orphaned
    } else {
        Peer::Local { uid, groups: None }
    }
}

fn diag_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket creation.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened and own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // The kernel answers while the request is being sent; a bounded wait
    // all the same, so that no accept can hang on it.
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: a valid fd and option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    Ok(owned)
}

/// The request for the one TCP socket whose local end is `peer` and whose
/// remote end is `local` — the client's socket, seen from its side.
fn diag_request(local: SocketAddr, peer: SocketAddr, seq: u32) -> [u8; NLMSG_HDR + REQ] {
    let mut m = [0u8; NLMSG_HDR + REQ];
    m[0..4].copy_from_slice(&((NLMSG_HDR + REQ) as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    let r = &mut m[NLMSG_HDR..];
    r[0] = if peer.is_ipv4() {
        libc::AF_INET as u8
    } else {
        libc::AF_INET6 as u8
    };
    r[1] = libc::IPPROTO_TCP as u8;
    // idiag_states: every state.
    r[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    // inet_diag_sockid: sport, dport (network order), src, dst, if, cookie.
    r[8..10].copy_from_slice(&peer.port().to_be_bytes());
    r[10..12].copy_from_slice(&local.port().to_be_bytes());
    let octets = |ip: IpAddr| -> [u8; 16] {
        let mut out = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out = v6.octets(),
        }
        out
    };
    r[12..28].copy_from_slice(&octets(peer.ip()));
    r[28..44].copy_from_slice(&octets(local.ip()));
    // INET_DIAG_NOCOOKIE: match the socket whatever its cookie.
    r[48..56].copy_from_slice(&[0xff; 8]);
    m
}

fn diag_lookup(fd: RawFd, local: SocketAddr, peer: SocketAddr) -> std::io::Result<Peer> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let request = diag_request(local, peer, seq);
    // SAFETY: a zeroed sockaddr_nl is the kernel's address (pid 0).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: valid buffers of the sizes given.
    let sent = unsafe {
        libc::sendto(
            fd,
            request.as_ptr().cast(),
            request.len(),
            0,
            (&raw const kernel).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: a valid buffer of the size given.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        match parse_diag(&buf[..n as usize], seq)? {
            Some(peer) => return Ok(peer),
            // An answer to an earlier request that timed out: read on.
            None => continue,
        }
    }
}

/// The peer an answer to request `seq` names; `None` for an answer to
/// another request.
fn parse_diag(mut data: &[u8], seq: u32) -> std::io::Result<Option<Peer>> {
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a malformed sock_diag answer",
        )
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    while data.len() >= NLMSG_HDR {
        let len = u32_at(data, 0).ok_or_else(bad)? as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let this = u32_at(data, 8).ok_or_else(bad)?;
        if len < NLMSG_HDR || len > data.len() {
            return Err(bad());
        }
        let body = &data[NLMSG_HDR..len];
        if this == seq {
            match kind {
                SOCK_DIAG_BY_FAMILY if body.len() >= MSG => {
                    let uid = u32_at(body, 64).ok_or_else(bad)?;
                    return Ok(Some(owner(body[1], body[2], uid)));
                }
                NLMSG_ERROR => {
                    let code = u32_at(body, 0).ok_or_else(bad)? as i32;
                    return if code == -libc::ENOENT {
                        Ok(Some(Peer::NotHere))
                    } else {
                        Err(std::io::Error::from_raw_os_error(-code))
                    };
                }
                NLMSG_DONE => return Ok(Some(Peer::NotHere)),
                _ => return Err(bad()),
            }
        }
        // Messages are 4-byte aligned.
        let next = (len + 3) & !3;
        data = data.get(next..).unwrap_or_default();
    }
    Ok(None)
}

/// The same lookup in `/proc/net/tcp` or `/proc/net/tcp6`: the line whose
/// local address is `peer` and remote address `local`.
#[doc(hidden)]
pub fn proc_net(local: SocketAddr, peer: SocketAddr) -> Option<Peer> {
    let file = if peer.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let mut text = String::new();
    std::fs::File::open(file)
        .ok()?
        .take(64 << 20)
        .read_to_string(&mut text)
        .ok()?;
    let (want_local, want_remote) = (proc_addr(peer), proc_addr(local));
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        if fields.len() < 10 || fields[1] != want_local || fields[2] != want_remote {
            continue;
        }
        let state = u8::from_str_radix(fields[3], 16).ok()?;
        let timer = u8::from_str_radix(fields[5].split(':').next()?, 16).ok()?;
        let uid = fields[7].parse().ok()?;
        return Some(owner(state, timer, uid));
    }
    Some(Peer::NotHere)
}

/// An address as `/proc/net/tcp*` prints it: each 32-bit word of the
/// address as the kernel holds it (network order) printed as a host-order
/// hex number, then `:PORT` in hex.
fn proc_addr(addr: SocketAddr) -> String {
    let words: Vec<[u8; 4]> = match addr.ip() {
        IpAddr::V4(v4) => vec![v4.octets()],
        IpAddr::V6(v6) => v6
            .octets()
            .chunks(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
    };
    let mut out: String = words
        .iter()
        .map(|w| format!("{:08X}", u32::from_ne_bytes(*w)))
        .collect();
    out.push_str(&format!(":{:04X}", addr.port()));
    out
}

/// Groups of a user as the group database lists them: the primary group
/// from `/etc/passwd` and every group of `/etc/group` naming the user. The
/// files are read as they are: a static binary has no name service
/// switch, and containers keep their users there.
fn groups_of(uid: u32) -> Vec<u32> {
    let read = |path: &str| {
        let mut text = String::new();
        let _ = std::fs::File::open(path).and_then(|f| f.take(8 << 20).read_to_string(&mut text));
        text
    };
    let passwd = read("/etc/passwd");
    let Some((name, primary)) = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[2].parse() == Ok(uid)).then(|| (f[0].to_string(), f[3].parse().ok()))
    }) else {
        return Vec::new();
    };
    let mut groups: Vec<u32> = primary.into_iter().collect();
    for line in read("/etc/group").lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4
            && f[3].split(',').any(|member| member == name)
            && let Ok(gid) = f[2].parse()
        {
            groups.push(gid);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust() -> Trust {
        Trust {
            own: 1000,
            uids: vec![1001],
            gids: vec![],
        }
    }

    #[test]
    fn only_the_own_user_and_those_allowed_are_served() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let local = |uid| Peer::Local { uid, groups: None };
        assert_eq!(trust().admit(&local(1000), lo), Ok(()));
        assert_eq!(trust().admit(&local(1001), lo), Ok(()));
        assert_eq!(trust().admit(&local(0), lo), Err(Refusal::Stranger(0)));
        // A Unix peer's own groups count.
        let in_group = Peer::Local {
            uid: 2000,
            groups: Some(vec![2000, 500]),
        };
        assert!(trust().admit(&in_group, lo).is_err());
        let by_gid = Trust {
            gids: vec![500],
            ..trust()
        };
        assert_eq!(by_gid.admit(&in_group, lo), Ok(()));
        // Sockets nobody holds, and loopback peers not found, prove nothing.
        assert!(trust().admit(&Peer::Orphaned, lo).is_err());
        assert!(trust().admit(&Peer::NotHere, lo).is_err());
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(trust().admit(&Peer::NotHere, mapped).is_err());
        // Another host: its key decides (a --listen beyond loopback).
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(trust().admit(&Peer::NotHere, remote), Ok(()));
    }

    #[test]
    fn proc_net_addresses() {
        assert_eq!(
            proc_addr("127.0.0.1:8799".parse().unwrap()),
            if cfg!(target_endian = "little") {
                "0100007F:225F"
            } else {
                "7F000001:225F"
            }
        );
        assert_eq!(proc_addr("[::1]:80".parse().unwrap()).len(), 32 + 5);
    }

    #[test]
    fn diag_answers_are_read_by_sequence() {
        let header = |len: usize, kind: u16, seq: u32| {
            let mut h = Vec::new();
            h.extend_from_slice(&(len as u32).to_ne_bytes());
            h.extend_from_slice(&kind.to_ne_bytes());
            h.extend_from_slice(&0u16.to_ne_bytes());
            h.extend_from_slice(&seq.to_ne_bytes());
            h.extend_from_slice(&0u32.to_ne_bytes());
            h
        };
        let mut msg = header(NLMSG_HDR + MSG, SOCK_DIAG_BY_FAMILY, 7);
        let mut body = vec![0u8; MSG];
        body[1] = 1; // ESTABLISHED
        body[64..68].copy_from_slice(&1234u32.to_ne_bytes());
        body[68..72].copy_from_slice(&99u32.to_ne_bytes());
        msg.extend_from_slice(&body);
        assert_eq!(
            parse_diag(&msg, 7).unwrap(),
            Some(Peer::Local {
                uid: 1234,
                groups: None
            })
        );
        assert_eq!(parse_diag(&msg, 8).unwrap(), None);
        // Closed by its process, not yet a stub: still its maker's.
        body[1] = 5; // FIN_WAIT2
        body[68..72].copy_from_slice(&0u32.to_ne_bytes());
        let mut closed = header(NLMSG_HDR + MSG, SOCK_DIAG_BY_FAMILY, 7);
        closed.extend_from_slice(&body);
        assert_eq!(
            parse_diag(&closed, 7).unwrap(),
            Some(Peer::Local {
                uid: 1234,
                groups: None
            })
        );
        // A TIME_WAIT stub, whatever state it stands for: nobody's.
        body[2] = TIME_WAIT_TIMER;
        body[64..68].copy_from_slice(&0u32.to_ne_bytes());
        let mut stub = header(NLMSG_HDR + MSG, SOCK_DIAG_BY_FAMILY, 7);
        stub.extend_from_slice(&body);
        assert_eq!(parse_diag(&stub, 7).unwrap(), Some(Peer::Orphaned));
        let mut missing = header(NLMSG_HDR + 4, NLMSG_ERROR, 7);
        missing.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(parse_diag(&missing, 7).unwrap(), Some(Peer::NotHere));
        assert!(parse_diag(&[0xff; 20], 7).is_err());
    }

    /// The kernel's own answer for a connection of this process, through
    /// sock_diag and through /proc/net/tcp alike.
    #[test]
    fn the_kernel_names_this_process_as_the_owner_of_its_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let local = accepted.local_addr().unwrap();
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        let owners = TcpOwners::default();
        let found = owners.diag(local, peer).unwrap();
        assert_eq!(
            found,
            Peer::Local {
                uid: me,
                groups: None
            }
        );
        assert_eq!(
            proc_net(local, peer),
            Some(Peer::Local {
                uid: me,
                groups: None
            })
        );
        drop(client);
        // A port nobody uses is not here.
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(owners.of(local, gone), Peer::NotHere);
    }
}
