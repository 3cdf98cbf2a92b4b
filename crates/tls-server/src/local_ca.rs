//! A private CA for loopback: `skytale dev --tls` and the tests of the servers and the client. It issues one
//! server certificate for `localhost` and `127.0.0.1` and is then forgotten: its key is never written anywhere,
//! so trusting its `ca.pem` (`SKYTALE_CA_FILE`) trusts that one certificate and nothing that could be issued
//! later by whoever reads the directory.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::TlsFiles;

/// The CA certificate clients trust, in the directory given to [`LocalCa::load_or_create`].
pub const CA_FILE: &str = "ca.pem";
/// The server's certificate and key, in the `tls` folder of that directory (mode 0700).
pub const SERVER_CERT_FILE: &str = "tls/server.pem";
pub const SERVER_KEY_FILE: &str = "tls/server-key.pem";

/// The names the server certificate is valid for.
const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// Why the local CA could not be created.
#[derive(Debug, thiserror::Error)]
pub enum LocalCaError {
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot generate the local CA: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A local CA's certificate file and the server certificate it issued.
#[derive(Clone, Debug)]
pub struct LocalCa {
    /// The CA certificate (PEM): what `SKYTALE_CA_FILE` names.
    pub ca_file: PathBuf,
    /// The server's certificate (issued by the CA, for `localhost` and `127.0.0.1`) and key.
    pub server: TlsFiles,
}

impl LocalCa {
    /// The CA under `dir` ([`CA_FILE`], [`SERVER_CERT_FILE`], [`SERVER_KEY_FILE`]): reused when all three
    /// files are there, otherwise created anew (a new CA, so a `ca.pem` copied elsewhere must be copied again).
    /// Whether the files it reuses are valid is for [`ServerTls::start`](crate::ServerTls::start) to say.
    pub fn load_or_create(dir: &Path) -> Result<Self, LocalCaError> {
        let local = Self {
            ca_file: dir.join(CA_FILE),
            server: TlsFiles::new(dir.join(SERVER_CERT_FILE), dir.join(SERVER_KEY_FILE)),
        };
        if ![&local.ca_file, &local.server.cert, &local.server.key].iter().all(|path| path.exists()) {
            local.create()?;
            tracing::info!(ca = %local.ca_file.display(), "created a local CA and a certificate for localhost and 127.0.0.1");
        }
        Ok(local)
    }

    /// Writes a new CA certificate and server certificate and key. `ca.pem` goes last and the old one first, so
    /// three files present are always of one generation, whenever a previous run was interrupted.
    fn create(&self) -> Result<(), LocalCaError> {
        remove_if_present(&self.ca_file)?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        // A name of its own: a client trusting another local CA then reads `UnknownIssuer`, not a signature
        // failure against a CA of the same name.
        let id: String = ca_params.key_identifier(&ca_key).iter().take(8).map(|byte| format!("{byte:02x}")).collect();
        ca_params.distinguished_name.push(DnType::CommonName, format!("Skytale local CA {id}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(SERVER_NAMES.map(str::to_owned).to_vec())?;
        server_params.distinguished_name.push(DnType::CommonName, "Skytale local server");
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &ca)?;

        write_private(&self.server.key, server_key.serialize_pem().as_bytes())?;
        write(&self.server.cert, server_cert.pem().as_bytes(), 0o644)?;
        write(&self.ca_file, ca.pem().as_bytes(), 0o644)
    }
}

fn remove_if_present(path: &Path) -> Result<(), LocalCaError> {
    match std::fs::remove_file(path) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
            Err(LocalCaError::Write { path: path.to_owned(), source })
        }
        _ => Ok(()),
    }
}

/// The key, in a folder only its owner can enter, readable by its owner only.
fn write_private(path: &Path, pem: &[u8]) -> Result<(), LocalCaError> {
    if let Some(parent) = path.parent() {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(|source| LocalCaError::Write { path: parent.to_owned(), source })?;
    }
    write(path, pem, 0o600)
}

/// Writes `pem` to a temporary file beside `path` and renames it into place, so a reader (the server's reload)
/// never sees half a file.
fn write(path: &Path, pem: &[u8], mode: u32) -> Result<(), LocalCaError> {
    let error = |source| LocalCaError::Write { path: path.to_owned(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let temporary = path.with_extension("tmp");
    // Left over by an interrupted run, perhaps with another mode: `create_new` below sets the mode.
    remove_if_present(&temporary)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut file = options.open(&temporary).map_err(error)?;
    file.write_all(pem).and_then(|()| file.sync_all()).map_err(error)?;
    std::fs::rename(&temporary, path).map_err(error)
}
