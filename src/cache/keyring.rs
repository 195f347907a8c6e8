//! The `keyring` backend: the Linux kernel's user keyring (`@u`), through
//! keyutils directly. Entries are `user` keys named `seatable-cred:<id>`,
//! whose kernel timeout is the token's expiry: they never touch a disk and
//! vanish on their own. (The generic keyring crates want a session keyring,
//! which services and CI jobs do not have.)

use anyhow::Result;
use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};
use zeroize::Zeroizing;

use super::Store;
use super::entry::MAX_ENTRY;
use crate::error::Failure;

const PREFIX: &str = "seatable-cred:";

pub struct KeyringStore {
    ring: KeyRing,
}

impl KeyringStore {
    /// The user keyring, if keyutils works here (seccomp profiles of
    /// container runtimes often refuse the syscalls).
    pub fn open() -> Result<KeyringStore> {
        let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true)
            .and_then(|ring| ring.metadata().map(|_| ring))
            .map_err(|e| {
                Failure::usage(format!(
                    "the kernel keyring is not usable here ({}): use --cache file or --cache none",
                    describe(e)
                ))
            })?;
        Ok(KeyringStore { ring })
    }

    fn description(id: &str) -> String {
        format!("{PREFIX}{id}")
    }
}

fn describe(e: KeyError) -> String {
    match e {
        KeyError::AccessDenied => "access denied".into(),
        KeyError::OperationNotSupported => "not supported".into(),
        KeyError::QuotaExceeded => "key quota exceeded".into(),
        KeyError::KeyDoesNotExist => "no such key".into(),
        other => format!("{other:?}"),
    }
}

impl Store for KeyringStore {
    fn name(&self) -> &'static str {
        "keyring"
    }

    fn load(&self, id: &str) -> Option<Zeroizing<Vec<u8>>> {
        let key = self.ring.search(&Self::description(id)).ok()?;
        let mut buf = Zeroizing::new(vec![0u8; MAX_ENTRY]);
        let len = key.read(&mut *buf).ok()?;
        if len > MAX_ENTRY {
            return None;
        }
        buf.truncate(len);
        Some(buf)
    }

    fn save(&self, id: &str, bytes: &[u8], expires_at: u64) -> Result<()> {
        let ttl = expires_at.saturating_sub(crate::time::now());
        if ttl == 0 {
            return Ok(());
        }
        let fail = |what: &str, e: KeyError| {
            Failure::internal(format!(
                "cannot {what} the kernel keyring entry: {}",
                describe(e)
            ))
        };
        // add_key replaces the payload of an existing key atomically.
        let key = self
            .ring
            .add_key(&Self::description(id), bytes)
            .map_err(|e| fail("write", e))?;
        // Other processes of the user may not "possess" @u (a service's
        // private session keyring): let the user's processes read it too.
        let all = || {
            Permission::VIEW
                | Permission::READ
                | Permission::WRITE
                | Permission::SEARCH
                | Permission::LINK
                | Permission::SETATTR
        };
        let perms = KeyPermissionsBuilder::builder()
            .posessor(all())
            .user(all())
            .build();
        key.set_perms(perms).map_err(|e| fail("protect", e))?;
        key.set_timeout(usize::try_from(ttl).unwrap_or(usize::MAX))
            .map_err(|e| fail("set the timeout of", e))?;
        Ok(())
    }

    fn remove(&self, id: &str) -> Result<()> {
        match self.ring.search(&Self::description(id)) {
            Ok(key) => key.invalidate().map_err(|e| {
                Failure::internal(format!(
                    "cannot remove the kernel keyring entry: {}",
                    describe(e)
                ))
                .into()
            }),
            Err(_) => Ok(()),
        }
    }

    fn ids(&self) -> Result<Vec<String>> {
        let links = self.ring.get_links(4096).map_err(|e| {
            Failure::internal(format!("cannot list the kernel keyring: {}", describe(e)))
        })?;
        Ok(links
            .iter()
            .filter_map(|node| node.as_key())
            .filter_map(|key| key.metadata().ok())
            .filter_map(|m| m.get_description().strip_prefix(PREFIX).map(str::to_string))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The round trip below, run in a user namespace of its own — where the
    /// kernel hands out a fresh user keyring — so that the test never
    /// touches the keyring of whoever runs it.
    #[test]
    fn round_trip_with_timeout() {
        // SAFETY: plain syscalls.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let out = std::process::Command::new("unshare")
            .args([
                "--user",
                &format!("--map-user={uid}"),
                &format!("--map-group={gid}"),
                "--",
            ])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "cache::keyring::tests::round_trip_in_a_fresh_user_keyring",
                "--test-threads=1",
            ])
            .output()
            .expect("unshare (util-linux) runs the round trip in a user namespace");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "the round trip in a fresh user keyring failed (user namespaces must be allowed): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "run by round_trip_with_timeout, in a user namespace of its own"]
    fn round_trip_in_a_fresh_user_keyring() {
        let store = KeyringStore::open().expect("keyutils works in the namespace");
        assert!(store.ids().unwrap().is_empty(), "a fresh keyring");
        let id = "0123456789abcdef0123456789abcdef";
        assert!(store.load(id).is_none());
        store.save(id, b"first", crate::time::now() + 60).unwrap();
        store.save(id, b"second", crate::time::now() + 60).unwrap();
        assert_eq!(&**store.load(id).unwrap(), b"second");
        assert_eq!(store.ids().unwrap(), vec![id.to_string()]);
        store.remove(id).unwrap();
        assert!(store.load(id).is_none());
        // An already expired entry is not written at all.
        store.save(id, b"old", 1).unwrap();
        assert!(store.load(id).is_none());
    }
}
