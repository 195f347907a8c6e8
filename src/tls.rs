//! TLS set-up shared by the Vault and SeaTable clients: rustls with the ring
//! provider (aws-lc's start-up entropy seeding costs ~24 ms per process, which
//! a credential helper cannot afford), private CA bundles, client identities.

use std::path::Path;

use anyhow::Result;

use crate::error::{Failure, root_cause};

/// Makes ring the process-wide rustls provider. Called only on the network
/// path; a cache hit never initialises TLS.
pub fn install_provider() {
    // Err means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// All certificates of a PEM bundle.
pub fn ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read CA file {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Failure::usage(format!(
            "CA file {} is not a PEM certificate bundle: {}",
            path.display(),
            root_cause(&e)
        ))
    })?;
    if certs.is_empty() {
        return Err(
            Failure::usage(format!("CA file {} holds no certificate", path.display())).into(),
        );
    }
    Ok(certs)
}

/// Every PEM file of a directory (`VAULT_CAPATH`), in name order.
pub fn ca_dir(dir: &Path) -> Result<Vec<reqwest::Certificate>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::usage(format!("cannot read CA directory {}: {e}", dir.display())))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut certs = Vec::new();
    for path in paths {
        // Hash links and non-PEM files in a CA directory are normal; skip them.
        if let Ok(mut more) = ca_bundle(&path) {
            certs.append(&mut more);
        }
    }
    Ok(certs)
}

/// A client certificate and its key, both PEM.
pub fn identity(cert: &Path, key: &Path) -> Result<reqwest::Identity> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display())))
    };
    let mut pem = zeroize::Zeroizing::new(read(cert)?);
    pem.push(b'\n');
    pem.extend_from_slice(&zeroize::Zeroizing::new(read(key)?));
    reqwest::Identity::from_pem(&pem).map_err(|e| {
        Failure::usage(format!(
            "client certificate {} with key {} is not usable: {}",
            cert.display(),
            key.display(),
            root_cause(&e)
        ))
        .into()
    })
}

/// Whether an error (anywhere in its chain, including the io::Errors that
/// tokio-rustls wraps it in) is rustls refusing the peer's certificate —
/// something retrying cannot fix.
pub fn is_certificate_problem(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            // io::Error::source() skips the wrapped error itself; look inside.
            if is_certificate_problem(inner) {
                return true;
            }
        }
        next = e.source();
    }
    false
}
