//! The cluster's certificate authority and the certificates the controlplane serves and signs
//! with, kept in `<data-dir>/pki/`.
//!
//! On first start [`Pki::load_or_create`] makes a CA (`ca.crt`, `ca.key`), a serving
//! certificate for the API (`server.crt`, `server.key`) and an admin client certificate
//! (`admin.crt`, `admin.key`, what `skiff-controlplane kubeconfig` hands out); later starts
//! load them, re-issue the serving certificate when the wanted names changed or it nears its
//! end, and re-issue the admin certificate when it nears its end. Keys are written 0600.
//! An operator may bring the serving certificate (`--tls-cert-file`, `--tls-private-key-file`)
//! and more client CAs (`--client-ca-file`); the generated CA still signs nodes.

mod files;
mod issue;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

pub use issue::{KeyPairPem, SignedCert};

/// The CA's lifetime.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The lifetime of the serving and admin certificates the controlplane makes for itself.
const OWN_CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// A certificate of our own this close to its end is re-issued at start.
const RENEW_WITHIN: Duration = Duration::from_secs(30 * 24 * 3600);
/// The admin certificate's user.
pub const ADMIN_USER: &str = "skiff-admin";
/// The user the controlplane's own parts (and its calls to agents) authenticate as.
pub const CONTROLPLANE_USER: &str = "system:skiff-controlplane";

/// Why the certificates could not be loaded, made or used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable certificate or key.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating or signing a certificate failed.
    #[error("could not make the certificate for {subject}: {reason}")]
    Generate {
        /// Whose certificate.
        subject: String,
        /// What rcgen or rustls said.
        reason: String,
    },
    /// A certificate signing request was refused.
    #[error("certificate signing request refused: {0}")]
    BadRequest(String),
}

/// Where the certificates live and what names the serving certificate must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkiOptions {
    /// Extra names (DNS or IP) for the serving certificate (`--tls-san`).
    pub sans: Vec<String>,
    /// The address the API listens on (its IP is added to the names unless unspecified).
    pub listen: Option<SocketAddr>,
    /// An operator's serving certificate chain (`--tls-cert-file`), used instead of ours.
    pub cert_file: Option<PathBuf>,
    /// The key of `cert_file` (`--tls-private-key-file`).
    pub key_file: Option<PathBuf>,
    /// More CAs whose client certificates are accepted (`--client-ca-file`).
    pub client_ca_file: Option<PathBuf>,
}

/// The loaded certificate authority and the controlplane's own certificates.
pub struct Pki {
    /// The directory the files live in.
    dir: PathBuf,
    /// The CA certificate, PEM.
    ca_pem: String,
    /// The CA certificate, DER.
    ca_der: CertificateDer<'static>,
    /// The CA key, PEM (never shown).
    ca_key_pem: String,
    /// The serving chain and key, PEM.
    serving: KeyPairPem,
    /// The admin client certificate and key, PEM.
    admin: KeyPairPem,
    /// Every CA whose client certificates are accepted (ours first).
    client_cas: Vec<CertificateDer<'static>>,
}

/// Shows where the files are and which CA, never a key.
impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("ca", &self.ca_hash())
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Loads the certificates from `dir`, making whatever is missing (see the module docs).
    pub fn load_or_create(dir: &Path, options: &PkiOptions) -> Result<Pki, PkiError> {
        files::ensure_dir(dir)?;
        let ca_crt = dir.join("ca.crt");
        let ca_key = dir.join("ca.key");
        let (ca_pem, ca_key_pem) = if ca_crt.exists() && ca_key.exists() {
            (files::read(&ca_crt)?, files::read(&ca_key)?)
        } else {
            let ca = issue::new_ca(CA_LIFETIME)?;
            files::write_private(&ca_key, &ca.key_pem)?;
            files::write_public(&ca_crt, &ca.cert_pem)?;
            tracing::info!(path = %ca_crt.display(), "made a new cluster certificate authority");
            (ca.cert_pem, ca.key_pem)
        };
        let ca_der = first_cert(&ca_crt, &ca_pem)?;
        let mut client_cas = vec![ca_der.clone()];
        if let Some(path) = &options.client_ca_file {
            let pem = files::read(path)?;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                client_cas.push(cert.map_err(|err| PkiError::BadFile {
                    path: path.clone(),
                    reason: format!("not a PEM certificate bundle: {err}"),
                })?);
            }
        }
        let serving = match (&options.cert_file, &options.key_file) {
            (Some(cert), Some(key)) => KeyPairPem {
                cert_pem: files::read(cert)?,
                key_pem: files::read(key)?,
            },
            (Some(_), None) | (None, Some(_)) => {
                return Err(PkiError::BadFile {
                    path: options
                        .cert_file
                        .clone()
                        .or(options.key_file.clone())
                        .unwrap_or_default(),
                    reason: "--tls-cert-file and --tls-private-key-file go together".into(),
                });
            }
            (None, None) => {
                let names = serving_names(options);
                own_cert(
                    dir,
                    "server",
                    &names,
                    |issuer| issuer.serving_cert(&names, OWN_CERT_LIFETIME),
                    &ca_pem,
                    &ca_key_pem,
                )?
            }
        };
        let admin = own_cert(
            dir,
            "admin",
            &[],
            |issuer| issuer.client_cert(ADMIN_USER, &[crate::auth::ADMIN_GROUP], OWN_CERT_LIFETIME),
            &ca_pem,
            &ca_key_pem,
        )?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_pem,
            ca_der,
            ca_key_pem,
            serving,
            admin,
            client_cas,
        })
    }

    /// The directory the files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster CA certificate, PEM (what `/cacerts` serves and agents trust).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// `sha256:<hex>` of the CA certificate's DER: what a join string pins.
    pub fn ca_hash(&self) -> String {
        ca_hash_of(&self.ca_der)
    }

    /// The admin client certificate and key (for the kubeconfig).
    pub fn admin(&self) -> &KeyPairPem {
        &self.admin
    }

    /// The TLS config of the API: our serving chain; client certificates optional, verified
    /// against the cluster CA and any `--client-ca-file` CAs.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let failed = |reason: String| PkiError::Generate {
            subject: "the API's TLS config".into(),
            reason,
        };
        let chain = CertificateDer::pem_slice_iter(self.serving.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| failed(format!("serving certificate: {err}")))?;
        let key = PrivateKeyDer::from_pem_slice(self.serving.key_pem.as_bytes())
            .map_err(|err| failed(format!("serving key: {err}")))?;
        let mut roots = RootCertStore::empty();
        for ca in &self.client_cas {
            roots
                .add(ca.clone())
                .map_err(|err| failed(format!("client CA: {err}")))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|err| failed(format!("client verifier: {err}")))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| failed(err.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|err| failed(err.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A client certificate for `user` in `groups`, valid for `ttl` (the controlplane's own
    /// parts; never written to disk).
    pub fn issue_client(
        &self,
        user: &str,
        groups: &[&str],
        ttl: Duration,
    ) -> Result<KeyPairPem, PkiError> {
        self.issuer()?.client_cert(user, groups, ttl)
    }

    /// A node certificate for `node` from its CSR: only the CSR's public key is used (after
    /// its signature proves the requester holds the key); subject, names and usages are ours.
    pub fn sign_node_csr(
        &self,
        node: &str,
        csr_pem: &str,
        ttl: Duration,
    ) -> Result<SignedCert, PkiError> {
        self.issuer()?.node_cert(node, csr_pem, ttl)
    }

    /// The CA as a signer.
    fn issuer(&self) -> Result<issue::Signer, PkiError> {
        issue::Signer::new(&self.ca_pem, &self.ca_key_pem)
    }
}

/// `sha256:<hex>` of a certificate's DER.
pub fn ca_hash_of(der: &[u8]) -> String {
    let mut out = String::from("sha256:");
    for byte in Sha256::digest(der) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The names the generated serving certificate carries: loopback, this host's name, the
/// listen IP and every `--tls-san`.
fn serving_names(options: &PkiOptions) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = files::hostname() {
        names.push(host);
    }
    if let Some(listen) = options.listen.filter(|l| !l.ip().is_unspecified()) {
        names.push(listen.ip().to_string());
    }
    names.extend(options.sans.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|name| seen.insert(normalise(name)));
    names
}

/// A name as compared: IPs canonical, DNS names lowercase.
fn normalise(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

/// Loads `<dir>/<stem>.crt|key`, or makes them with `make` when missing, near their end, or
/// (for `names` not empty) not covering every name.
fn own_cert(
    dir: &Path,
    stem: &str,
    names: &[String],
    make: impl FnOnce(&issue::Signer) -> Result<KeyPairPem, PkiError>,
    ca_pem: &str,
    ca_key_pem: &str,
) -> Result<KeyPairPem, PkiError> {
    let crt = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    if crt.exists() && key.exists() {
        let cert_pem = files::read(&crt)?;
        let facts = issue::CertFacts::of_pem(&crt, &cert_pem)?;
        let wanted: Vec<String> = names.iter().map(|n| normalise(n)).collect();
        let has: Vec<String> = facts.names.iter().map(|n| normalise(n)).collect();
        let covers = wanted.iter().all(|n| has.contains(n));
        if covers && facts.remaining() > RENEW_WITHIN && facts.issued_by(ca_pem) {
            return Ok(KeyPairPem {
                cert_pem,
                key_pem: files::read(&key)?,
            });
        }
        tracing::info!(path = %crt.display(), "re-issuing a certificate (names changed, CA changed or near its end)");
    }
    let made = make(&issue::Signer::new(ca_pem, ca_key_pem)?)?;
    files::write_private(&key, &made.key_pem)?;
    files::write_public(&crt, &made.cert_pem)?;
    Ok(made)
}

/// The first certificate of a PEM text read from `path`.
fn first_cert(path: &Path, pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|err| PkiError::BadFile {
        path: path.to_path_buf(),
        reason: format!("no PEM certificate: {err}"),
    })
}

#[cfg(test)]
mod tests;
