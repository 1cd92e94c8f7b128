//! PEM files for TLS, shared by both daemons: certificate chains, private keys and CA bundles,
//! read for rustls on the ring provider, with errors that name the flag and the file at fault.

use std::path::{Path, PathBuf};
use std::sync::Arc;
pub use tokio_rustls::rustls;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{Error as RustlsError, InconsistentKeys, RootCertStore};

/// A TLS file that cannot be used; `flag` is the option that named it (`--tls-cert-file`).
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("{flag} {path}: cannot read the file: {source}")]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} {path}: not a PEM file: {why}")]
    NotPem {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{flag} {path}: holds no {wanted} (no `-----BEGIN {label}-----` block)")]
    Missing {
        flag: &'static str,
        path: PathBuf,
        wanted: &'static str,
        label: &'static str,
    },
    #[error("{flag} {path}: certificate {index} cannot be a trusted CA: {source}")]
    BadCa {
        flag: &'static str,
        path: PathBuf,
        index: usize,
        #[source]
        source: RustlsError,
    },
    #[error("{flag} {path}: the private key cannot be used: {source}")]
    BadKey {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: RustlsError,
    },
    #[error(
        "the private key in {key} does not belong to the certificate in {cert} \
         (the certificate's public key is another key's)"
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS set-up: {0}")]
    Setup(#[source] RustlsError),
}

/// The crypto provider every Gantry TLS endpoint uses: ring (no OpenSSL, no aws-lc).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        flag,
        path: path.to_owned(),
        source,
    })
}

fn not_pem(flag: &'static str, path: &Path, e: pem::Error) -> TlsFileError {
    TlsFileError::NotPem {
        flag,
        path: path.to_owned(),
        why: e.to_string(),
    }
}

/// Every certificate in a PEM file, in order (a chain: the end-entity certificate first).
pub fn read_certs(
    flag: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let bytes = read(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(flag, path, e))?;
    if certs.is_empty() {
        return Err(TlsFileError::Missing {
            flag,
            path: path.to_owned(),
            wanted: "certificate",
            label: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn read_key(flag: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let bytes = read(flag, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsFileError::Missing {
            flag,
            path: path.to_owned(),
            wanted: "private key",
            label: "PRIVATE KEY",
        },
        e => not_pem(flag, path, e),
    })
}

/// A CA bundle: every certificate in the file becomes a trust anchor.
pub fn read_roots(flag: &'static str, path: &Path) -> Result<RootCertStore, TlsFileError> {
    let mut roots = RootCertStore::empty();
    for (index, cert) in read_certs(flag, path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|source| TlsFileError::BadCa {
            flag,
            path: path.to_owned(),
            index: index + 1,
            source,
        })?;
    }
    Ok(roots)
}

/// A certificate chain and its private key, read from their two files.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    cert_file: PathBuf,
    key_file: PathBuf,
    key_flag: &'static str,
}

impl Identity {
    /// Reads `cert_file` (named by `--tls-cert-file`) and `key_file` (`--tls-key-file`).
    pub fn read(cert_file: &Path, key_file: &Path) -> Result<Identity, TlsFileError> {
        Ok(Identity {
            chain: read_certs("--tls-cert-file", cert_file)?,
            key: read_key("--tls-key-file", key_file)?,
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            key_flag: "--tls-key-file",
        })
    }

    /// Turns the error rustls gave when this identity was installed into one naming the files.
    pub fn install_error(&self, e: RustlsError) -> TlsFileError {
        match e {
            RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
                TlsFileError::KeyMismatch {
                    cert: self.cert_file.clone(),
                    key: self.key_file.clone(),
                }
            }
            source => TlsFileError::BadKey {
                flag: self.key_flag,
                path: self.key_file.clone(),
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn errors_name_the_flag_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = read_certs("--tls-cert-file", &missing)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--tls-cert-file ") && e.contains("missing.pem") && e.contains("read"),
            "{e}"
        );
        let text = dir.path().join("text.pem");
        std::fs::write(&text, "hello\n").unwrap();
        let e = read_certs("--tls-cert-file", &text)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("text.pem") && e.contains("BEGIN CERTIFICATE"),
            "{e}"
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let e = read_certs("--tls-cert-file", &broken)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("broken.pem") && e.contains("not a PEM file"),
            "{e}"
        );

        let (cert, key) = self_signed();
        let cert_file = dir.path().join("cert.pem");
        std::fs::write(&cert_file, &cert).unwrap();
        let e = read_key("--tls-key-file", &cert_file)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cert.pem") && e.contains("no private key"),
            "{e}"
        );
        let key_file = dir.path().join("key.pem");
        std::fs::write(&key_file, &key).unwrap();
        let id = Identity::read(&cert_file, &key_file).unwrap();
        assert_eq!(id.chain.len(), 1);
        assert_eq!(read_roots("--x", &cert_file).unwrap().len(), 1);
    }

    #[test]
    fn a_key_of_another_certificate_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let cert_file = dir.path().join("cert.pem");
        let key_file = dir.path().join("other-key.pem");
        std::fs::write(&cert_file, cert).unwrap();
        std::fs::write(&key_file, other_key).unwrap();
        let id = Identity::read(&cert_file, &key_file).unwrap();
        let e = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(id.chain.clone(), id.key.clone_key())
            .map(|_| ())
            .map_err(|e| id.install_error(e))
            .unwrap_err();
        assert!(matches!(e, TlsFileError::KeyMismatch { .. }), "{e}");
        let e = e.to_string();
        assert!(e.contains("other-key.pem") && e.contains("cert.pem"), "{e}");
    }
}
