//! The master's certificate and key, reloaded while it runs: at a TLS handshake, when the last look
//! is at least [`CERT_POLL`] old, both files are read again and, if their bytes changed, parsed
//! and checked (the key must belong to the certificate). New handshakes then get the new
//! certificate; open connections keep theirs. A file that is missing, unreadable or mismatched
//! keeps the pair read before and is logged once per change, so a half-done renewal (certificate
//! written, key not yet) never takes the port down. Compares contents rather than modification
//! times, as the join token file does (docs/tls.md).

use gantry_daemon::tls_files::{rustls, Identity, TlsFileError};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often (at most) the files are looked at again.
pub const CERT_POLL: Duration = Duration::from_secs(2);

/// The certificate resolver that re-reads its files.
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    poll: Duration,
    state: Mutex<Loaded>,
}

struct Loaded {
    checked: Instant,
    /// The bytes of the certificate and key files at the last look.
    bytes: (Vec<u8>, Vec<u8>),
    key: Arc<CertifiedKey>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Reads the pair now (errors name the file at fault), then looks again at most every `poll`.
    pub fn new(
        cert_file: PathBuf,
        key_file: PathBuf,
        provider: Arc<CryptoProvider>,
        poll: Duration,
    ) -> Result<Self, TlsFileError> {
        let bytes = read_bytes(&cert_file, &key_file);
        let key = Arc::new(load(&cert_file, &key_file, &provider)?);
        Ok(ReloadingCert {
            cert_file,
            key_file,
            provider,
            poll,
            state: Mutex::new(Loaded {
                checked: Instant::now(),
                bytes,
                key,
            }),
        })
    }

    /// The pair to present now, after looking at the files if it is time.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.checked.elapsed() >= self.poll {
            st.checked = Instant::now();
            let bytes = read_bytes(&self.cert_file, &self.key_file);
            if bytes != st.bytes {
                // Remembered even when they do not load: tried again once they change again.
                st.bytes = bytes;
                match load(&self.cert_file, &self.key_file, &self.provider) {
                    Ok(k) => {
                        st.key = Arc::new(k);
                        tracing::info!(cert = %self.cert_file.display(), "TLS certificate reloaded");
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "cannot reload the TLS certificate; keeping the one read before"
                    ),
                }
            }
        }
        st.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read_bytes(cert_file: &Path, key_file: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(cert_file).unwrap_or_default(),
        std::fs::read(key_file).unwrap_or_default(),
    )
}

/// The pair, parsed and checked; errors name the file at fault.
fn load(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsFileError> {
    let id = Identity::read(cert_file, key_file)?;
    CertifiedKey::from_der(id.chain.clone(), id.key.clone_key(), provider)
        .map_err(|e| id.install_error(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn der(pem: &str) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_renewed_pair_is_picked_up_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let (a_cert, a_key) = pair("a.example");
        std::fs::write(&cert_file, &a_cert).unwrap();
        std::fs::write(&key_file, &a_key).unwrap();
        let r = ReloadingCert::new(
            cert_file.clone(),
            key_file.clone(),
            gantry_daemon::tls_files::provider(),
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(r.current().cert[0].to_vec(), der(&a_cert));

        // Half a renewal: the new certificate, the old key: the old pair stays.
        let (b_cert, b_key) = pair("b.example");
        std::fs::write(&cert_file, &b_cert).unwrap();
        assert_eq!(r.current().cert[0].to_vec(), der(&a_cert));
        // The key follows: the new pair.
        std::fs::write(&key_file, &b_key).unwrap();
        assert_eq!(r.current().cert[0].to_vec(), der(&b_cert));
        // Gone or garbage: kept.
        std::fs::remove_file(&key_file).unwrap();
        assert_eq!(r.current().cert[0].to_vec(), der(&b_cert));
        std::fs::write(&key_file, "not a key").unwrap();
        assert_eq!(r.current().cert[0].to_vec(), der(&b_cert));

        // Not looked at again before the poll interval.
        let slow = ReloadingCert::new(
            cert_file.clone(),
            dir.path().join("k2.pem"),
            gantry_daemon::tls_files::provider(),
            Duration::from_secs(3600),
        );
        assert!(slow.is_err(), "a missing key at start is an error");
        std::fs::write(&key_file, &b_key).unwrap();
        let slow = ReloadingCert::new(
            cert_file.clone(),
            key_file.clone(),
            gantry_daemon::tls_files::provider(),
            Duration::from_secs(3600),
        )
        .unwrap();
        std::fs::write(&cert_file, &a_cert).unwrap();
        std::fs::write(&key_file, &a_key).unwrap();
        assert_eq!(slow.current().cert[0].to_vec(), der(&b_cert));
    }
}
