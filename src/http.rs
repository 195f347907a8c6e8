//! HTTP clients shared by Vault and SeaTable: TLS set-up — rustls with the
//! ring provider (aws-lc's start-up entropy seeding costs ~24 ms per process,
//! which a credential helper cannot afford), private CA bundles, client
//! identities — and response bodies read with a size limit.
//!
//! Servers are verified against the system's roots plus an optional private
//! CA. The private CA is tried first and the system roots are loaded only if
//! it does not vouch for the server: loading and parsing the system store
//! (hundreds of certificates, often read twice through `SSL_CERT_DIR`) costs
//! more than everything else a self-hosted exchange does.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Result;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::error::{Failure, root_cause};

/// Makes ring the process-wide rustls provider. Called only on the network
/// path; a cache hit never initialises TLS.
pub fn install_provider() {
    // Err means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// All certificates of a PEM bundle.
pub fn ca_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read CA file {}: {e}", path.display())))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            Failure::usage(format!(
                "CA file {} is not a PEM certificate bundle: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(
            Failure::usage(format!("CA file {} holds no certificate", path.display())).into(),
        );
    }
    Ok(certs)
}

/// Every PEM file of a directory (`VAULT_CAPATH`), in name order; files that
/// are not PEM certificates (hash links to them are fine) are skipped.
pub fn ca_dir(dir: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::usage(format!("cannot read CA directory {}: {e}", dir.display())))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut certs = Vec::new();
    for path in paths {
        if let Ok(mut more) = ca_bundle(&path) {
            certs.append(&mut more);
        }
    }
    certs.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
    certs.dedup();
    Ok(certs)
}

/// A client certificate chain and its key, both PEM.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

pub fn identity(cert: &Path, key: &Path) -> Result<Identity> {
    let chain = ca_bundle(cert).map_err(|_| {
        Failure::usage(format!(
            "client certificate {} holds no PEM certificate",
            cert.display()
        ))
    })?;
    let pem = zeroize::Zeroizing::new(
        std::fs::read(key)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", key.display())))?,
    );
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        Failure::usage(format!(
            "client key {} is not a PEM private key: {e}",
            key.display()
        ))
    })?;
    Ok(Identity { chain, key })
}

/// How a client trusts servers.
pub struct Trust {
    /// A private CA, on top of the system's roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// `false` only for an explicit `VAULT_SKIP_VERIFY`.
    pub verify: bool,
}

/// An HTTP client for `url`: plain for `http://`, else rustls verifying as
/// `trust` says, presenting `identity` when the server asks.
pub fn http_client(url: &str, trust: Trust, identity: Option<Identity>) -> Result<reqwest::Client> {
    let builder = stay_local(
        reqwest::Client::builder()
            .user_agent(concat!("seatable-cred/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(same_origin_redirects()),
        url,
    );
    let builder = if url.starts_with("http://") {
        // Plain HTTP needs no roots; do not load the system's.
        builder.tls_certs_only(Vec::new())
    } else {
        builder.tls_backend_preconfigured(client_config(trust, identity)?)
    };
    builder
        .build()
        .map_err(|e| Failure::internal(format!("cannot set up HTTPS: {}", root_cause(&e))).into())
}

/// Keeps requests to a loopback `url` on the machine: no proxy from the
/// environment (`HTTP_PROXY`, `ALL_PROXY` would otherwise carry them, tokens
/// and all, to another host — in clear text where plain HTTP is accepted
/// because it is local), and the name `localhost` pinned to 127.0.0.1
/// rather than left to a resolver that may ask DNS.
pub fn stay_local(builder: reqwest::ClientBuilder, url: &str) -> reqwest::ClientBuilder {
    let Ok(parsed) = url::Url::parse(url) else {
        return builder;
    };
    if !crate::address::is_loopback(&parsed) {
        return builder;
    }
    let builder = builder.no_proxy();
    match parsed.host_str() {
        Some(name) => match crate::address::pinned(name) {
            Some(addr) => builder.resolve(name, addr),
            None => builder,
        },
        None => builder,
    }
}

/// Redirects are followed only within the origin (scheme, host, port) the
/// request was sent to, at most five: reqwest drops `Authorization` on a
/// redirect to another host but not `X-Vault-Token`, and no credential of
/// ours is meant for another server. A redirect elsewhere is answered as the
/// 3xx it is.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(|u| u.origin());
        if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else if first.is_some_and(|o| o == attempt.url().origin()) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn client_config(trust: Trust, identity: Option<Identity>) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let mut private = rustls::RootCertStore::empty();
    for cert in trust.extra_roots {
        private
            .add(cert)
            .map_err(|e| Failure::usage(format!("a CA certificate is not usable: {e}")))?;
    }
    let private = (!private.is_empty())
        .then(|| {
            WebPkiServerVerifier::builder_with_provider(Arc::new(private), provider.clone()).build()
        })
        .transpose()
        .map_err(|e| Failure::usage(format!("the CA certificates are not usable: {e}")))?;
    let verifier = Arc::new(Verifier {
        check: trust.verify,
        private,
        system: OnceLock::new(),
        provider: provider.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::internal(format!("TLS set-up: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|e| Failure::usage(format!("the client certificate is not usable: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks a server's certificate against the private CA first, then the
/// system's roots (loaded on first need) for servers the private CA does
/// not vouch for. With `check` off (an explicit `VAULT_SKIP_VERIFY`) any
/// certificate is accepted; the handshake's signatures are always checked.
#[derive(Debug)]
struct Verifier {
    check: bool,
    private: Option<Arc<WebPkiServerVerifier>>,
    system: OnceLock<Result<Arc<rustls_platform_verifier::Verifier>, rustls::Error>>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn system(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        match self.system.get_or_init(|| {
            rustls_platform_verifier::Verifier::new(self.provider.clone()).map(Arc::new)
        }) {
            Ok(v) => Ok(v),
            Err(e) => Err(e.clone()),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.check {
            return Ok(ServerCertVerified::assertion());
        }
        if let Some(private) = &self.private {
            match private.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {}
                decided => return decided,
            }
        }
        self.system()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Response bodies beyond this are refused before parsing.
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a body could not be read.
#[derive(Debug, PartialEq)]
pub enum BodyError {
    /// Larger than [`MAX_BODY`].
    TooLarge,
    /// The connection broke while reading.
    Broken,
}

/// Reads at most [`MAX_BODY`] bytes of a response. The buffer is zeroed on
/// drop: bodies hold tokens.
pub async fn read_capped(
    mut response: reqwest::Response,
) -> Result<zeroize::Zeroizing<Vec<u8>>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = zeroize::Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(|_| BodyError::Broken)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

/// The TLS set-up of [`http_client`] on its own, for clients that need other
/// settings (the agent's proxy: no redirects, a long-lived pool).
pub fn rustls_config(trust: Trust) -> Result<rustls::ClientConfig> {
    client_config(trust, None)
}
