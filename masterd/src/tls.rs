//! TLS on the master's port: the rustls server configuration (ring provider) built from
//! `--tls-cert-file`/`--tls-key-file`, and with `--tls-client-ca-file` the verifier of the client
//! certificates agents present (optional on the port, required on the agent link). The
//! certificate and key are reloaded while the master runs ([`crate::tls_reload`]).

use crate::tls_reload::{ReloadingCert, CERT_POLL};
use gantry_daemon::tls_files::{self, rustls, TlsFileError};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// The master's TLS files, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The master's certificate chain (PEM, end-entity certificate first).
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that sign agents' client certificates. When set, `/agent/v1/connect`
    /// requires a client certificate signed by one of them; other paths accept clients without
    /// one (a certificate that is presented must still verify).
    pub client_ca_file: Option<PathBuf>,
}

/// The server configuration for `files`; errors name the file at fault.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsFileError> {
    let provider = tls_files::provider();
    // The pair is read first, so that its errors come first; then again while the master runs.
    let certs = ReloadingCert::new(
        files.cert_file.clone(),
        files.key_file.clone(),
        provider.clone(),
        CERT_POLL,
    )?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsFileError::Setup)?;
    let builder = match &files.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let roots = tls_files::read_roots("--tls-client-ca-file", ca_file)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsFileError::Setup(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(certs));
    // HTTP/1.1 only: the agent link is a WebSocket upgrade, which HTTP/2 does not carry here.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_mismatched_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let cert_file = write("cert.pem", &cert.pem());
        let key_file = write("key.pem", &key.serialize_pem());
        let other_file = write("other.pem", &other.serialize_pem());
        let files = |cert: &PathBuf, key: &PathBuf, ca: Option<PathBuf>| TlsFiles {
            cert_file: cert.clone(),
            key_file: key.clone(),
            client_ca_file: ca,
        };
        assert!(server_config(&files(&cert_file, &key_file, None)).is_ok());
        assert!(server_config(&files(&cert_file, &key_file, Some(cert_file.clone()))).is_ok());
        let e = server_config(&files(&cert_file, &other_file, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("other.pem") && e.contains("does not belong"),
            "{e}"
        );
        let e = server_config(&files(&cert_file, &key_file, Some(key_file.clone())))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--tls-client-ca-file") && e.contains("key.pem"),
            "{e}"
        );
        let e = server_config(&files(&dir.path().join("nope.pem"), &key_file, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--tls-cert-file") && e.contains("nope.pem"),
            "{e}"
        );
    }
}
