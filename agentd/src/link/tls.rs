//! TLS for the agent link (`--master https://...`): whom the agent trusts (`--master-ca-file`,
//! else the public webpki roots), the client certificate it may present (`--tls-cert-file`,
//! `--tls-key-file`), the handshake, and what a failed one means in words an operator can act on.

use gantry_daemon::tls_files::{self, rustls, Identity, TlsFileError};
use rustls::pki_types::ServerName;
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The agent's TLS files, as configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkTlsFiles {
    /// CA certificates (PEM) the master's certificate must be signed by; `None`: the webpki roots.
    pub master_ca_file: Option<PathBuf>,
    /// The agent's client certificate chain and key (PEM), for a master with
    /// `--tls-client-ca-file`.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// A ready TLS client for the link.
pub struct LinkTls {
    connector: TlsConnector,
    files: LinkTlsFiles,
}

impl std::fmt::Debug for LinkTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl LinkTls {
    /// Reads the files; errors name the file at fault.
    pub fn new(files: &LinkTlsFiles) -> Result<LinkTls, TlsFileError> {
        let roots = match &files.master_ca_file {
            Some(path) => tls_files::read_roots("--master-ca-file", path)?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let builder = ClientConfig::builder_with_provider(tls_files::provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsFileError::Setup)?
            .with_root_certificates(roots);
        let cfg = match &files.client_identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let id = Identity::read(cert, key)?;
                builder
                    .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                    .map_err(|e| id.install_error(e))?
            }
        };
        let mut cfg = cfg;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(LinkTls {
            connector: TlsConnector::from(Arc::new(cfg)),
            files: files.clone(),
        })
    }

    /// The TLS handshake with the master at `host` over `tcp`.
    pub(super) async fn handshake(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, super::SessionError> {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            super::SessionError::Protocol(format!("'{host}' is not a host name TLS can verify"))
        })?;
        self.connector
            .connect(name, tcp)
            .await
            .map_err(|e| match rustls_error(&e) {
                Some(tls) => super::SessionError::Tls(self.explain(host, tls)),
                None => super::SessionError::Connect(e),
            })
    }

    /// Whether the agent presents a client certificate.
    pub fn has_client_cert(&self) -> bool {
        self.files.client_identity.is_some()
    }

    fn trusted(&self) -> String {
        match &self.files.master_ca_file {
            Some(p) => format!("--master-ca-file {}", p.display()),
            None => "the public webpki roots; give --master-ca-file for a private CA".into(),
        }
    }

    /// What a TLS failure with the master means, and what to change.
    pub(super) fn explain(&self, host: &str, e: &rustls::Error) -> String {
        use rustls::Error as E;
        match e {
            E::InvalidCertificate(
                CertificateError::UnknownIssuer
                | CertificateError::BadSignature
                | CertificateError::BadEncoding,
            ) => format!(
                "the master's certificate is not signed by a CA this agent trusts ({}): {e}",
                self.trusted()
            ),
            E::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!("the master's certificate is not valid for '{host}' (--master): {e}"),
            E::InvalidCertificate(_) => format!("the master's certificate is refused: {e}"),
            E::AlertReceived(AlertDescription::CertificateRequired) => {
                "the master requires a client certificate: give --tls-cert-file and --tls-key-file"
                    .into()
            }
            E::AlertReceived(
                a @ (AlertDescription::UnknownCA
                | AlertDescription::BadCertificate
                | AlertDescription::CertificateUnknown
                | AlertDescription::AccessDenied),
            ) if self.files.client_identity.is_some() => format!(
                "the master refused this agent's client certificate ({a:?}): --tls-cert-file must \
                 be signed by a CA in the master's --tls-client-ca-file"
            ),
            E::AlertReceived(a) => format!("the master ended the TLS handshake ({a:?})"),
            E::InvalidMessage(_) | E::InappropriateMessage { .. } => format!(
                "the master did not answer in TLS ({e}): is it started with --tls-cert-file, or \
                 should --master say http://?"
            ),
            _ => format!("TLS with the master failed: {e}"),
        }
    }
}

/// The rustls error inside an I/O error, if that is what it is.
pub(super) fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_and_failures_explained() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ca.pem");
        let e = LinkTls::new(&LinkTlsFiles {
            master_ca_file: Some(missing),
            client_identity: None,
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.starts_with("--master-ca-file") && e.contains("ca.pem"),
            "{e}"
        );
        let public = LinkTls::new(&LinkTlsFiles::default()).unwrap();
        let why = public.explain(
            "m",
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert!(
            why.contains("not signed by a CA this agent trusts"),
            "{why}"
        );
        assert!(why.contains("--master-ca-file"), "{why}");
        let why = public.explain(
            "m",
            &rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        );
        assert!(why.contains("--tls-cert-file"), "{why}");
    }
}
