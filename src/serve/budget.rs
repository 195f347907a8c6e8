//! Connections and their budgets: the agent's clients hold a local key or a
//! session token, and nothing a client without one does may cost them.
//!
//! * A connection starts **keyless**. The first request on it that shows a
//!   valid key or session token makes it **keyed** ([`promote`]) for good.
//! * Keyless connections have a small budget of their own
//!   ([`KEYLESS_BUDGET`], at most `--max-connections`) and a short idle
//!   limit ([`KEYLESS_IDLE`]): a health checker, a scanner or a client
//!   without the key holds a slot only while it talks. When the budget (or
//!   `--max-connections` in all) is full, the oldest keyless connection
//!   with no request in flight is closed to make room ([`Conn::evictable`]);
//!   a client that connects and sends its request straight away is never
//!   the one closed.
//! * Only when every slot is keyed, or busy, does a new connection get 503.
//!
//! Connections from users the agent does not serve never get this far
//! (see [`super::peer`]): they cost no one's budget.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Keyless connections open at once, at most.
pub const KEYLESS_BUDGET: usize = 32;
/// A keyless connection with nothing to do is closed after this.
pub const KEYLESS_IDLE: Duration = Duration::from_secs(2);

/// One client connection.
pub struct Conn {
    /// A duplicate of the connection's descriptor, to look (without reading)
    /// whether the client sent something not read yet.
    fd: Option<OwnedFd>,
    keyed: AtomicBool,
    /// Requests being answered.
    busy: AtomicU32,
    /// Requests begun so far.
    served: AtomicU64,
    /// Bytes read since the last request began: a head on its way in.
    read_since: AtomicU64,
    /// Milliseconds since `born` of the last bytes read, or request's start or end.
    last: AtomicU64,
    born: Instant,
    /// Asked to close (evicted, or idle too long).
    pub close: Notify,
    table: Weak<Table>,
}

impl Conn {
    pub fn is_keyed(&self) -> bool {
        self.keyed.load(Ordering::Acquire)
    }

    /// Whether a request has begun on this connection yet.
    pub fn has_begun(&self) -> bool {
        self.served.load(Ordering::Acquire) > 0
    }

    /// A request begins on this connection.
    pub fn begin(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::AcqRel);
        self.read_since.store(0, Ordering::Release);
        self.touch();
    }

    /// `n` bytes were read from the client.
    pub fn read(&self, n: usize) {
        self.read_since.fetch_add(n as u64, Ordering::AcqRel);
        self.touch();
    }

    /// Part of a request head was read, and no request began since.
    pub fn head_begun(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0 && self.read_since.load(Ordering::Acquire) > 0
    }

    /// A request on this connection was answered.
    pub fn end(&self) {
        self.busy.fetch_sub(1, Ordering::AcqRel);
        self.read_since.store(0, Ordering::Release);
        self.touch();
    }

    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Release);
    }

    /// How long nothing has happened here.
    pub fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Acquire));
        self.born.elapsed().saturating_sub(last)
    }

    /// Whether the connection may be closed to make room: no request in
    /// flight, and not a new client whose first request is on its way in
    /// (bytes sent, not read yet). One that had requests already may be
    /// closed between two (a client that pipelines requests and never reads
    /// the answers, so that they cannot be written, is one of those).
    pub fn evictable(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
            && (self.served.load(Ordering::Acquire) > 0 || !self.has_unread())
    }

    /// No request in flight, and nothing read for [`KEYLESS_IDLE`].
    pub fn idle_too_long(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0 && self.quiet_for() >= KEYLESS_IDLE
    }

    /// Whether the client sent bytes the agent has not read yet (a request
    /// on its way in).
    pub fn has_unread(&self) -> bool {
        let Some(fd) = &self.fd else {
            return false;
        };
        let mut byte = 0u8;
        // SAFETY: a valid descriptor and a one-byte buffer; nothing is consumed.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n > 0
    }
}

/// The open connections.
pub struct Table {
    inner: Mutex<Inner>,
    max: usize,
    budget: usize,
    /// Signalled whenever a connection closes (for the drain at shutdown).
    pub closed: Notify,
}

#[derive(Default)]
struct Inner {
    keyed: usize,
    /// Oldest first.
    keyless: VecDeque<Arc<Conn>>,
}

/// What became of a new connection.
pub enum Admitted {
    /// Served; `evicted` keyless connections were asked to close for it.
    Yes(Arc<Conn>, usize),
    /// Every slot is keyed or busy.
    Full,
}

impl Table {
    pub fn new(max: usize) -> Arc<Table> {
        Arc::new(Table {
            inner: Mutex::default(),
            max,
            budget: KEYLESS_BUDGET.min(max),
            closed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a new connection (`fd` its descriptor, duplicated here),
    /// making room among keyless ones if needed.
    pub fn admit(self: &Arc<Self>, fd: Option<OwnedFd>) -> Admitted {
        let mut inner = self.lock();
        let mut evicted = 0;
        while inner.keyless.len() >= self.budget || inner.keyed + inner.keyless.len() >= self.max {
            let Some(at) = inner.keyless.iter().position(|c| c.evictable()) else {
                return Admitted::Full;
            };
            if let Some(victim) = inner.keyless.remove(at) {
                victim.close.notify_one();
                evicted += 1;
            }
        }
        let conn = Arc::new(Conn {
            fd,
            keyed: AtomicBool::new(false),
            busy: AtomicU32::new(0),
            served: AtomicU64::new(0),
            read_since: AtomicU64::new(0),
            last: AtomicU64::new(0),
            born: Instant::now(),
            close: Notify::new(),
            table: Arc::downgrade(self),
        });
        inner.keyless.push_back(conn.clone());
        Admitted::Yes(conn, evicted)
    }

    /// Moves `conn` among the keyed ones.
    fn promote(&self, conn: &Arc<Conn>) {
        if conn.keyed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut inner = self.lock();
        if let Some(at) = inner.keyless.iter().position(|c| Arc::ptr_eq(c, conn)) {
            inner.keyless.remove(at);
            inner.keyed += 1;
        }
    }

    /// `conn` closed.
    pub fn release(&self, conn: &Arc<Conn>) {
        let mut inner = self.lock();
        if let Some(at) = inner.keyless.iter().position(|c| Arc::ptr_eq(c, conn)) {
            inner.keyless.remove(at);
        } else if conn.is_keyed() {
            inner.keyed = inner.keyed.saturating_sub(1);
        }
        drop(inner);
        self.closed.notify_waiters();
    }

    /// Connections open now: keyed, keyless.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.keyed, inner.keyless.len())
    }
}

/// The request came with a valid key or session token: its connection is
/// keyed from now on. The listener hands each request its [`Conn`] in the
/// request's extensions.
pub fn promote(extensions: &hyper::http::Extensions) {
    if let Some(conn) = extensions.get::<Arc<Conn>>()
        && let Some(table) = conn.table.upgrade()
    {
        table.promote(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(table: &Arc<Table>) -> Arc<Conn> {
        match table.admit(None) {
            Admitted::Yes(conn, _) => conn,
            Admitted::Full => panic!("refused"),
        }
    }

    #[test]
    fn keyless_connections_make_room_for_new_ones_oldest_idle_first() {
        let table = Table::new(256);
        let first: Vec<_> = (0..KEYLESS_BUDGET).map(|_| admitted(&table)).collect();
        first[0].begin();
        // The budget is full: the oldest idle one (not the busy first) goes.
        let Admitted::Yes(_, evicted) = table.admit(None) else {
            panic!("refused")
        };
        assert_eq!(evicted, 1);
        assert_eq!(table.counts(), (0, KEYLESS_BUDGET));
        let inner = table.lock();
        assert!(Arc::ptr_eq(&inner.keyless[0], &first[0]));
        assert!(!inner.keyless.iter().any(|c| Arc::ptr_eq(c, &first[1])));
    }

    #[test]
    fn keyed_connections_leave_the_keyless_budget_and_fill_the_cap() {
        let table = Table::new(3);
        let conns: Vec<_> = (0..3).map(|_| admitted(&table)).collect();
        for c in &conns {
            table.promote(c);
        }
        assert_eq!(table.counts(), (3, 0));
        assert!(matches!(table.admit(None), Admitted::Full));
        table.release(&conns[0]);
        assert_eq!(table.counts(), (2, 0));
        let c = admitted(&table);
        assert_eq!(table.counts(), (2, 1));
        // All slots keyed or busy: full.
        c.begin();
        assert!(matches!(table.admit(None), Admitted::Full));
        c.end();
        assert!(matches!(table.admit(None), Admitted::Yes(_, 1)));
    }
}
