//! Where the agent listens: a TCP address, a Unix socket (`--listen
//! unix:PATH`, mode 0600), or a socket systemd opened and handed over
//! (socket activation: `LISTEN_FDS`/`LISTEN_PID`, as `sd_listen_fds(3)`
//! defines them). With socket activation the port stays bound by systemd
//! while the agent restarts or is upgraded: connections wait in the
//! socket's queue for the next agent instead of being refused, and no
//! other user can take the port in between.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::cli::ListenAddr;
use crate::error::Failure;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

pub enum Listener {
    Tcp(TcpListener),
    /// The socket's path, removed again at the end when the agent made it.
    Unix(UnixListener, Option<PathBuf>),
}

/// A client connection.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A listening socket systemd handed over, before it joins the runtime.
pub enum Inherited {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl Listener {
    /// The socket systemd handed over, if any; else a new one at `listen`.
    pub async fn open(listen: &ListenAddr, inherited: Option<Inherited>) -> Result<Listener> {
        let failed = |e: std::io::Error| {
            Failure::internal(format!("cannot use the socket systemd passed: {e}"))
        };
        match inherited {
            Some(Inherited::Tcp(l)) => Ok(Listener::Tcp(TcpListener::from_std(l).map_err(failed)?)),
            Some(Inherited::Unix(l)) => Ok(Listener::Unix(
                UnixListener::from_std(l).map_err(failed)?,
                None,
            )),
            None => bind(listen).await,
        }
    }

    pub async fn accept(&self) -> std::io::Result<Stream> {
        match self {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| Stream::Tcp(s)),
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
        }
    }

    /// The URL clients use: the bound address (loopback for an unspecified
    /// one), or `http+unix://` with the socket's path, as
    /// `requests-unixsocket` and similar clients name it.
    pub fn url(&self) -> Result<String> {
        let failed = |e: std::io::Error| {
            Failure::internal(format!("cannot read the listening address: {e}"))
        };
        match self {
            Listener::Tcp(l) => Ok(advertised(l.local_addr().map_err(failed)?)),
            Listener::Unix(l, _) => {
                let addr = l.local_addr().map_err(failed)?;
                let path = addr.as_pathname().unwrap_or(Path::new(""));
                Ok(unix_url(path))
            }
        }
    }

    /// Whether clients beyond this machine can reach it.
    pub fn beyond_loopback(&self) -> Option<std::net::SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().filter(|a| !a.ip().is_loopback()),
            Listener::Unix(..) => None,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, Some(path)) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The URL of a TCP listener: the bound address, loopback for an
/// unspecified one.
fn advertised(bound: SocketAddr) -> String {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, bound.port()))
}

/// `http+unix://` and the path, percent-encoded as one host name.
fn unix_url(path: &Path) -> String {
    let mut url = String::from("http+unix://");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// A new socket at `listen`.
async fn bind(listen: &ListenAddr) -> Result<Listener> {
    let cannot = |e: std::io::Error| {
        Failure::usage(format!(
            "cannot listen on {listen}: {e}; choose another address with --listen"
        ))
    };
    match listen {
        ListenAddr::Tcp(addr) => Ok(Listener::Tcp(
            TcpListener::bind(addr).await.map_err(cannot)?,
        )),
        ListenAddr::Unix(path) => {
            clear_stale(path).await?;
            let listener = UnixListener::bind(path).map_err(cannot)?;
            // Only the agent's user may connect (the peer check refuses
            // others anyway, should the mode be loosened).
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(cannot)?;
            Ok(Listener::Unix(listener, Some(path.clone())))
        }
    }
}

/// A socket left at `path` by an agent that is gone is removed; one that
/// is not the user's, is not a socket, or has an agent behind it is not.
async fn clear_stale(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let euid = crate::cache::own::euid();
    if !meta.file_type().is_socket() || meta.uid() != euid {
        return Err(Failure::usage(format!(
            "{} exists and is not a socket of yours: remove it or choose another path",
            path.display()
        ))
        .into());
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(Failure::usage(format!(
            "another agent listens on {}: stop it or choose another path",
            path.display()
        ))
        .into());
    }
    std::fs::remove_file(path).map_err(|e| {
        Failure::usage(format!(
            "cannot remove the stale socket {}: {e}",
            path.display()
        ))
    })?;
    Ok(())
}

/// The socket systemd passed to this process, if it did: `LISTEN_PID` is
/// ours and `LISTEN_FDS` at least 1. The variables are removed, as
/// `sd_listen_fds(1)` does, so that nothing started later takes them for
/// its own — which is why this runs before the agent starts any thread.
pub fn inherited() -> Result<Option<Inherited>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    // SAFETY: called before the agent's runtime exists: the process has
    // no other thread that could read the environment meanwhile.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let count: i32 = fds.trim().parse().unwrap_or(0);
    if count < 1 {
        return Ok(None);
    }
    if count > 1 {
        tracing::warn!(
            "systemd passed {count} sockets; serving on the first (give the .socket unit one Listen…= line)"
        );
    }
    from_fd(LISTEN_FDS_START).map(Some)
}

/// A listening stream socket systemd opened, as a listener of ours.
fn from_fd(fd: RawFd) -> Result<Inherited> {
    let not_ours = |why: &str| {
        Failure::usage(format!(
            "the socket systemd passed (fd {fd}) {why}: the .socket unit needs ListenStream="
        ))
    };
    let int_opt = |option: libc::c_int| -> Option<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid out-pointer of the size given.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&raw mut value).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(value)
    };
    if int_opt(libc::SO_TYPE) != Some(libc::SOCK_STREAM) {
        return Err(not_ours("is not a stream socket").into());
    }
    if int_opt(libc::SO_ACCEPTCONN) != Some(1) {
        return Err(not_ours("is not listening").into());
    }
    // SAFETY: an out-pointer of the size given.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above.
    if unsafe { libc::getsockname(fd, (&raw mut addr).cast(), &mut len) } != 0 {
        return Err(not_ours("cannot be inspected").into());
    }
    // SAFETY: systemd handed this descriptor to this process to own; the
    // close-on-exec flag keeps it from anything started later.
    let owned = unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        OwnedFd::from_raw_fd(fd)
    };
    let failed =
        |e: std::io::Error| Failure::internal(format!("cannot use the socket systemd passed: {e}"));
    match addr.ss_family as libc::c_int {
        libc::AF_INET | libc::AF_INET6 => {
            let l = std::net::TcpListener::from(owned);
            l.set_nonblocking(true).map_err(failed)?;
            Ok(Inherited::Tcp(l))
        }
        libc::AF_UNIX => {
            let l = std::os::unix::net::UnixListener::from(owned);
            l.set_nonblocking(true).map_err(failed)?;
            Ok(Inherited::Unix(l))
        }
        _ => Err(not_ours("is neither TCP nor a Unix socket").into()),
    }
}

impl Stream {
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// A duplicate of the descriptor (closed when dropped).
    pub fn dup(&self) -> Option<OwnedFd> {
        // SAFETY: duplicating a valid descriptor we hold.
        let fd = unsafe { libc::fcntl(self.raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        // SAFETY: a new descriptor of our own.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_urls() {
        let url = |s: &str| advertised(s.parse().unwrap());
        assert_eq!(url("127.0.0.1:8799"), "http://127.0.0.1:8799");
        assert_eq!(url("0.0.0.0:8799"), "http://127.0.0.1:8799");
        assert_eq!(url("[::]:8799"), "http://[::1]:8799");
        assert_eq!(url("[::1]:80"), "http://[::1]:80");
        assert_eq!(url("10.1.2.3:8799"), "http://10.1.2.3:8799");
        assert_eq!(
            unix_url(Path::new("/run/user/1000/seatable cred.sock")),
            "http+unix://%2Frun%2Fuser%2F1000%2Fseatable%20cred.sock"
        );
    }
}
