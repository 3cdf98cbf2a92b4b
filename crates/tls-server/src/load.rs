//! Reading the two PEM files into a [`CertifiedKey`], checked before it serves anyone: the chain parses, the key
//! loads with the crypto provider, and the key is the one the first certificate was issued for (rustls would
//! otherwise only find out in a handshake, as a client's signature failure).

use std::path::Path;

use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{Error as RustlsError, InconsistentKeys};

use crate::{TlsError, TlsFiles};

/// The certificate chain and key of `files`, or what is wrong with them.
pub(crate) fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(&files.cert)?;
    let key = read_key(&files.key)?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::UnusableKey { path: files.key.clone(), reason: error.to_string() })?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        // `Unknown`: the key type cannot say what its public key is, so the check is left to the handshake.
        Ok(()) | Err(RustlsError::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch { cert: files.cert.clone(), key: files.key.clone() })
        }
        Err(error) => Err(TlsError::BadCertificate { path: files.cert.clone(), reason: error.to_string() }),
    }
}

const CERTIFICATE: &str = "certificate";
const KEY: &str = "key";

fn read(file: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { file, path: path.to_owned(), source })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(CERTIFICATE, path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadPem { file: CERTIFICATE, path: path.to_owned(), reason: error.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(KEY, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoKey { path: path.to_owned() },
        error => TlsError::BadPem { file: KEY, path: path.to_owned(), reason: error.to_string() },
    })
}
