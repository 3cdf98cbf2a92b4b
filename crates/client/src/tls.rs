//! Which certificate authorities the client trusts on `https://` endpoints (relay gRPC and API HTTP).
//!
//! Both connections use rustls with the public web roots (webpki-roots, compiled in, so a container without a
//! system CA bundle still works) plus, when `SKYTALE_CA_FILE` names a PEM file, the CAs in it: that is how a
//! deployment with a private CA (or a self-signed development certificate) is reached. `http://` endpoints stay
//! plain and never look at this. A certificate that is not trusted fails with rustls' reason (`invalid peer
//! certificate: UnknownIssuer`) and [`UNTRUSTED_HINT`] rather than the hint for a server that is down.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// Environment variable naming a PEM file of extra trusted CA certificates.
pub const CA_FILE_ENV: &str = "SKYTALE_CA_FILE";

/// The trust settings shared by the relay transport and the API client.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustRoots {
    /// PEM bytes of extra CAs (`SKYTALE_CA_FILE`), trusted in addition to the web roots.
    private_ca: Option<Vec<u8>>,
}

impl TrustRoots {
    /// Reads `SKYTALE_CA_FILE` if it is set; a set but unreadable file is an error, never silently ignored.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var_os(CA_FILE_ENV) {
            Some(path) if !path.is_empty() => Self::from_file(&PathBuf::from(path)),
            _ => Ok(Self::default()),
        }
    }

    fn from_file(path: &Path) -> Result<Self, Error> {
        let pem = std::fs::read(path)
            .map_err(|e| Error::Runtime(format!("cannot read {CA_FILE_ENV} {}: {e}", path.display())))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::Runtime(format!("{CA_FILE_ENV} {} holds no PEM certificate", path.display())));
        }
        Ok(Self { private_ca: Some(pem) })
    }

    /// TLS settings for the relay's gRPC channel.
    pub fn grpc(&self) -> tonic::transport::ClientTlsConfig {
        let config = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
        match &self.private_ca {
            Some(pem) => config.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
            None => config,
        }
    }

    /// Adds the private CA (if any) to an HTTP client; reqwest already trusts the web roots.
    pub fn http(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, Error> {
        let Some(pem) = &self.private_ca else { return Ok(builder) };
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Runtime(format!("invalid certificate in {CA_FILE_ENV}: {e}")))?;
        Ok(certificates.into_iter().fold(builder, |b, certificate| b.add_root_certificate(certificate)))
    }
}

/// What to do about a server certificate the client does not trust, said after the error naming the problem.
pub(crate) const UNTRUSTED_HINT: &str = "the server's certificate is not trusted: if a private CA issued it (as \
     `skytale dev --tls` does, printing its SKYTALE_CA_FILE), set SKYTALE_CA_FILE to that CA's PEM file";

/// Whether `error` (or one of its causes) is rustls refusing the server's certificate (unknown issuer, expired,
/// wrong name...), as opposed to a server that cannot be reached at all.
pub(crate) fn is_untrusted_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tokio_rustls::rustls::Error::InvalidCertificate(_)) = error.downcast_ref() {
            return true;
        }
        // An io::Error's `source` skips the error it wraps, and rustls' error comes up inside one (tokio-rustls),
        // itself inside another (reqwest): look inside first.
        next = match error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as _),
            None => error.source(),
        };
    }
    false
}

/// Whether `url` asks for TLS.
pub(crate) fn is_https(url: &str) -> bool {
    url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}
