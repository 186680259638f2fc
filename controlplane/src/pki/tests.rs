use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use rcgen::{CertificateParams, DnType, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

/// Subject CN and O values of a PEM certificate.
fn subject_of(pem: &str) -> (String, Vec<String>) {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let orgs = cert
        .subject()
        .iter_organization()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    (cn, orgs)
}

#[test]
fn first_start_makes_the_files_with_private_keys_and_later_starts_keep_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let first = Pki::load_or_create(&pki_dir, &PkiOptions::default()).unwrap();
    for key in ["ca.key", "server.key", "admin.key"] {
        let mode = std::fs::metadata(pki_dir.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key} is {mode:o}");
    }
    let mode = std::fs::metadata(&pki_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let second = Pki::load_or_create(&pki_dir, &PkiOptions::default()).unwrap();
    assert_eq!(first.ca_pem(), second.ca_pem());
    assert_eq!(first.admin(), second.admin(), "a valid admin cert is kept");
    assert!(first.ca_hash().starts_with("sha256:") && first.ca_hash().len() == 7 + 64);
    let (cn, orgs) = subject_of(&first.admin().cert_pem);
    assert_eq!(cn, ADMIN_USER);
    assert_eq!(orgs, [crate::auth::ADMIN_GROUP]);
    assert!(!format!("{:?} {:?}", first, first.admin()).contains("PRIVATE KEY"));
}

#[test]
fn a_new_name_re_issues_the_serving_certificate_under_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let before = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let options = PkiOptions {
        sans: vec!["cp.example.internal".into(), "10.1.2.3".into()],
        listen: Some("192.0.2.7:6443".parse().unwrap()),
        ..PkiOptions::default()
    };
    let after = Pki::load_or_create(dir.path(), &options).unwrap();
    assert_eq!(before.ca_pem(), after.ca_pem());
    assert_ne!(before.serving, after.serving);
    let facts = issue::CertFacts::of_pem(dir.path(), &after.serving.cert_pem).unwrap();
    for name in [
        "cp.example.internal",
        "10.1.2.3",
        "192.0.2.7",
        "127.0.0.1",
        "localhost",
    ] {
        assert!(
            facts.names.iter().any(|n| n == name),
            "{name} not in {:?}",
            facts.names
        );
    }
    assert!(facts.issued_by(after.ca_pem()));
}

#[test]
fn a_node_certificate_takes_only_the_public_key_from_the_csr() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "skiff-admin");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let signed = pki
        .sign_node_csr("edge-1", &csr, Duration::from_secs(3600))
        .unwrap();
    let (cn, orgs) = subject_of(&signed.cert_pem);
    assert_eq!(cn, "system:node:edge-1");
    assert_eq!(orgs, [crate::auth::NODE_GROUP]);
    let facts = issue::CertFacts::of_pem(dir.path(), &signed.cert_pem).unwrap();
    assert_eq!(facts.names, ["edge-1"]);
    let left = facts.remaining().as_secs();
    assert!((3500..=3600).contains(&left), "{left}");
    assert_eq!(facts.not_after, signed.not_after);

    let err = pki
        .sign_node_csr("edge-1", "not a csr", Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(err, PkiError::BadRequest(_)), "{err}");
}

/// Runs one TLS handshake against `server` with `client` over an in-memory pipe; the
/// server's view of the client chain, or the failure.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: rustls::ClientConfig,
) -> Result<Option<usize>, String> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("localhost").unwrap();
    let (server_side, client_side) = tokio::join!(acceptor.accept(a), connector.connect(name, b));
    let _client = client_side.map_err(|e| format!("client: {e}"))?;
    let server = server_side.map_err(|e| format!("server: {e}"))?;
    Ok(server.get_ref().1.peer_certificates().map(|c| c.len()))
}

/// A client config trusting `ca_pem`, presenting `identity` when given.
fn client_config(ca_pem: &str, identity: Option<&KeyPairPem>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match identity {
        Some(id) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

#[tokio::test]
async fn the_api_accepts_our_client_certificates_or_none_and_refuses_another_cas() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&dir.path().join("a"), &PkiOptions::default()).unwrap();
    let server = pki.server_config().unwrap();
    let admin = handshake(
        server.clone(),
        client_config(pki.ca_pem(), Some(pki.admin())),
    )
    .await
    .unwrap();
    assert_eq!(admin, Some(1), "the server sees the admin's certificate");
    let anonymous = handshake(server.clone(), client_config(pki.ca_pem(), None))
        .await
        .unwrap();
    assert_eq!(anonymous, None);
    let other = Pki::load_or_create(&dir.path().join("b"), &PkiOptions::default()).unwrap();
    let err = handshake(
        server.clone(),
        client_config(pki.ca_pem(), Some(other.admin())),
    )
    .await
    .unwrap_err();
    assert!(err.contains("server"), "{err}");
    let err = handshake(server, client_config(other.ca_pem(), None))
        .await
        .unwrap_err();
    assert!(
        err.contains("client") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
}
