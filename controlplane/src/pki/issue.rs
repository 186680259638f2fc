//! Making certificates with rcgen: the CA, the serving and client certificates, and node
//! certificates from CSRs; and reading back the facts of a certificate (names, end, issuer).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::PkiError;

/// How far back a new certificate's validity starts, for clocks that run a little behind.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPairPem {
    /// The certificate (chain), PEM.
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
}

/// Never shows the key.
impl std::fmt::Debug for KeyPairPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPairPem")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A certificate signed for a node, with its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// When it stops being valid.
    pub not_after: DateTime<Utc>,
}

/// A new self-signed CA.
pub(super) fn new_ca(lifetime: Duration) -> Result<KeyPairPem, PkiError> {
    let failed = generate_error("the cluster CA");
    let key = KeyPair::generate().map_err(&failed)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    // A CA name of its own (k3s does the same) so two installations' CAs never look alike.
    params.distinguished_name.push(
        DnType::CommonName,
        format!("skiff-ca@{}", Utc::now().timestamp()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, lifetime);
    let cert = params.self_signed(&key).map_err(&failed)?;
    Ok(KeyPairPem {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The CA, ready to sign.
pub(super) struct Signer {
    /// rcgen's issuer over the CA key.
    issuer: Issuer<'static, KeyPair>,
}

impl Signer {
    /// The signer of the CA `ca_pem` with key `ca_key_pem`.
    pub(super) fn new(ca_pem: &str, ca_key_pem: &str) -> Result<Signer, PkiError> {
        let failed = generate_error("the cluster CA");
        let key = KeyPair::from_pem(ca_key_pem).map_err(&failed)?;
        let issuer = Issuer::from_ca_cert_pem(ca_pem, key).map_err(&failed)?;
        Ok(Signer { issuer })
    }

    /// The API's serving certificate for `names` (DNS names or IPs).
    pub(super) fn serving_cert(
        &self,
        names: &[String],
        lifetime: Duration,
    ) -> Result<KeyPairPem, PkiError> {
        let failed = generate_error("the API's serving certificate");
        let mut params = CertificateParams::new(names.to_vec()).map_err(&failed)?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "skiff-controlplane");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.leaf(params, lifetime, "the API's serving certificate")
    }

    /// A client certificate: CN `user`, one O per group.
    pub(super) fn client_cert(
        &self,
        user: &str,
        groups: &[&str],
        lifetime: Duration,
    ) -> Result<KeyPairPem, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(user, groups);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.leaf(params, lifetime, user)
    }

    /// A node certificate from `csr_pem`'s public key (see [`super::Pki::sign_node_csr`]).
    pub(super) fn node_cert(
        &self,
        node: &str,
        csr_pem: &str,
        lifetime: Duration,
    ) -> Result<super::SignedCert, PkiError> {
        let user = format!("{}{node}", crate::auth::NODE_USER_PREFIX);
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|err| PkiError::BadRequest(format!("the CSR is not usable: {err}")))?;
        let dns = node
            .to_string()
            .try_into()
            .map_err(|err| PkiError::BadRequest(format!("node name {node:?}: {err}")))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(&user, &[crate::auth::NODE_GROUP]);
        params.subject_alt_names = vec![SanType::DnsName(dns)];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.serial_number = Some(random_serial());
        let not_after = set_validity(&mut params, lifetime);
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(generate_error(&user))?;
        Ok(super::SignedCert {
            cert_pem: cert.pem(),
            not_after,
        })
    }

    /// Signs `params` for a fresh key.
    fn leaf(
        &self,
        mut params: CertificateParams,
        lifetime: Duration,
        subject: &str,
    ) -> Result<KeyPairPem, PkiError> {
        let failed = generate_error(subject);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.serial_number = Some(random_serial());
        set_validity(&mut params, lifetime);
        let key = KeyPair::generate().map_err(&failed)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(&failed)?;
        Ok(KeyPairPem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// CN `user` and one O per group.
fn subject(user: &str, groups: &[&str]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for group in groups {
        name.push(DnType::OrganizationName, *group);
    }
    name.push(DnType::CommonName, user);
    name
}

/// Valid from a little before now for `lifetime`; returns the end.
fn set_validity(params: &mut CertificateParams, lifetime: Duration) -> DateTime<Utc> {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
    let end = Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
    // Certificates carry whole seconds.
    DateTime::from_timestamp(end.timestamp(), 0).unwrap_or(end)
}

/// A random positive 16-byte serial number.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// The error for making `subject`'s certificate.
fn generate_error(subject: &str) -> impl Fn(rcgen::Error) -> PkiError + '_ {
    move |err| PkiError::Generate {
        subject: subject.to_string(),
        reason: err.to_string(),
    }
}

/// What the controlplane checks of a certificate of its own at start.
pub(super) struct CertFacts {
    /// Its DNS and IP names.
    pub(super) names: Vec<String>,
    /// When it ends.
    pub(super) not_after: DateTime<Utc>,
    /// Its issuer's name, DER.
    issuer: Vec<u8>,
}

impl CertFacts {
    /// The facts of the first certificate in `pem` (read from `path`).
    pub(super) fn of_pem(path: &Path, pem: &str) -> Result<CertFacts, PkiError> {
        let bad = |reason: String| PkiError::BadFile {
            path: path.to_path_buf(),
            reason,
        };
        let der = parse_pem_cert(pem).map_err(&bad)?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|err| bad(format!("not a certificate: {err}")))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.push(dns.to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            names.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let not_after =
            DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0).unwrap_or_default();
        Ok(CertFacts {
            names,
            not_after,
            issuer: cert.issuer().as_raw().to_vec(),
        })
    }

    /// How long it stays valid from now (zero once ended).
    pub(super) fn remaining(&self) -> Duration {
        (self.not_after - Utc::now()).to_std().unwrap_or_default()
    }

    /// Whether the CA `ca_pem` is its issuer (by name; CA names are unique per install).
    pub(super) fn issued_by(&self, ca_pem: &str) -> bool {
        let Ok(der) = parse_pem_cert(ca_pem) else {
            return false;
        };
        X509Certificate::from_der(&der)
            .map(|(_, ca)| ca.subject().as_raw() == self.issuer.as_slice())
            .unwrap_or(false)
    }
}

/// The DER of the first certificate in a PEM text.
fn parse_pem_cert(pem: &str) -> Result<Vec<u8>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.to_vec())
        .map_err(|err| format!("no PEM certificate: {err}"))
}

/// An IP SAN's bytes as an address.
fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}
