//! The TLS setup of a client: one rustls config (aws-lc-rs, no OpenSSL) shared by the HTTP
//! client and the websocket watches, trusting either the built-in Mozilla roots or exactly the
//! CAs of a PEM bundle.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::ClientError;

/// The rustls client config for the server at `url`: roots from `ca_file` when given, else
/// the Mozilla roots.
pub(crate) fn rustls_config(
    url: &str,
    ca_file: Option<&Path>,
) -> Result<rustls::ClientConfig, ClientError> {
    let roots = match ca_file {
        Some(path) => roots_from_pem_file(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ClientError::Tls {
            url: url.to_string(),
            reason: format!("no usable TLS protocol version: {err}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Every certificate of the PEM bundle at `path`; an empty or unparsable bundle is an error.
fn roots_from_pem_file(path: &Path) -> Result<RootCertStore, ClientError> {
    let failed = |reason: String| ClientError::CaBundle {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|err| failed(err.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|err| failed(format!("not a PEM certificate bundle: {err}")))?;
        roots
            .add(cert)
            .map_err(|err| failed(format!("unusable CA certificate: {err}")))?;
    }
    if roots.is_empty() {
        return Err(failed("no certificate in the file".to_string()));
    }
    Ok(roots)
}

/// The TLS failure somewhere in `err`'s causes (a certificate the roots do not vouch for, a
/// name mismatch, a handshake alert), as text; None when the failure was not TLS.
pub(crate) fn tls_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // hyper and tungstenite hand rustls errors on wrapped in (nested) io::Errors, whose
        // `source()` skips the error they wrap: step into it instead.
        cause = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests;
