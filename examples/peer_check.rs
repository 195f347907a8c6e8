//! What `serve`'s peer check costs per new connection, for bench/run.sh:
//! opens N loopback connections to a listener of its own and accepts them,
//! looking up each peer's owner as the agent does (`--lookup diag`, the
//! agent's way: sock_diag), through /proc/net/tcp (`--lookup proc`, the
//! fallback), or not at all (`--lookup none`). With `--background M`, M
//! more connections stay open meanwhile, as on a busy host.
//!
//!   peer_check --connections 2000 --lookup diag --background 1000
//!
//! hyperfine times the runs; the difference between `diag` and `none`,
//! divided by N, is the check's cost per connection.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use seatable_cred::serve::peer::{Peer, TcpOwners, proc_net};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let connections: usize = value("--connections", "1000")
        .parse()
        .expect("--connections N");
    let background: usize = value("--background", "0").parse().expect("--background M");
    let lookup = value("--lookup", "diag");
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().unwrap();
    let held: Vec<(TcpStream, TcpStream)> = (0..background)
        .map(|_| {
            let client = TcpStream::connect(addr).unwrap();
            (client, listener.accept().unwrap().0)
        })
        .collect();
    let owners = TcpOwners::default();
    let mut found = 0usize;
    for _ in 0..connections {
        let client = TcpStream::connect(addr).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let local = accepted.local_addr().unwrap();
        let owner = match lookup.as_str() {
            "diag" => Some(owners.of(local, peer)),
            "proc" => proc_net(local, peer),
            "none" => None,
            other => panic!("--lookup diag|proc|none, not {other}"),
        };
        if matches!(owner, Some(Peer::Local { .. })) {
            found += 1;
        }
        // Closed with a reset: no TIME_WAIT left behind to grow the tables.
        abort(&client);
        drop((client, accepted));
    }
    if lookup != "none" {
        assert_eq!(found, connections, "every peer found");
    }
    drop(held);
}

/// SO_LINGER 0: close sends a reset.
fn abort(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid descriptor and option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
