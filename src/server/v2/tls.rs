//! TLS for the v2 front-end: rustls with the `ring` provider, and the
//! throw-away certificate authority for test harnesses.
//!
//! A throw-away set-up is a CA plus a server certificate it signed, not one
//! self-signed certificate: strict verifiers (webpki, which the Rust client
//! uses, and Python 3.13's `VERIFY_X509_STRICT`) refuse a leaf certificate
//! that is its own trust anchor, while every verifier accepts a CA given as
//! the trust root. Clients are handed the CA's certificate only.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::V2Tls;
use crate::server::error::ServerError;

/// A ready TLS set-up.
#[derive(Debug, Clone)]
pub(crate) struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// The throw-away CA's certificate (PEM), when there is one.
    pub ca_pem: Option<String>,
}

fn invalid(message: String) -> ServerError {
    ServerError::Unusable(message)
}

/// Builds the TLS set-up `tls` asks for (`None` for plain HTTP), writing the
/// throw-away CA's certificate where asked.
pub(crate) fn setup(tls: &V2Tls) -> Result<Option<Tls>, ServerError> {
    let (chain, key, ca_pem) = match tls {
        V2Tls::Off => return Ok(None),
        V2Tls::Pem { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    invalid(format!(
                        "v2.tls_cert: cannot read certificates from {}: {e}",
                        cert.display()
                    ))
                })?;
            if chain.is_empty() {
                return Err(invalid(format!(
                    "v2.tls_cert: no certificate in {}",
                    cert.display()
                )));
            }
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                invalid(format!(
                    "v2.tls_key: cannot read a private key from {}: {e}",
                    key.display()
                ))
            })?;
            (chain, key, None)
        }
        V2Tls::SelfSigned { ca_file } => {
            let (chain, key, pem) = throwaway().map_err(|e| {
                ServerError::io("v2: cannot make a certificate", io::Error::other(e))
            })?;
            if let Some(path) = ca_file {
                write_public(path, &pem)?;
            }
            (chain, key, Some(pem))
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::io("v2: cannot set up TLS", io::Error::other(e)))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(format!("v2: the certificate and key do not work: {e}")))?;
    Ok(Some(Tls {
        config: Arc::new(config),
        ca_pem,
    }))
}

/// Writes the CA certificate (public data) where a client can read it.
fn write_public(path: &Path, pem: &str) -> Result<(), ServerError> {
    fs::write(path, pem).map_err(|e| {
        ServerError::io(
            format!("v2: cannot write the CA certificate to {}", path.display()),
            e,
        )
    })
}

type Chain = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String);

/// A fresh CA and a server certificate for `localhost`, `127.0.0.1` and
/// `::1` signed by it: the chain to serve, its key, and the CA's PEM.
fn throwaway() -> Result<Chain, rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "spalloc virtual server throw-away CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|_| rcgen::Error::CouldNotParseKeyPair)?;
    Ok((
        vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key,
        ca_cert.pem(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throwaway_certificates_work_with_rustls() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("spalloc-tls-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let file = dir.join("ca.pem");
        let tls = setup(&V2Tls::SelfSigned {
            ca_file: Some(file.clone()),
        })?;
        let pem = tls.and_then(|t| t.ca_pem).unwrap_or_default();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert_eq!(fs::read_to_string(&file)?, pem);
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn unreadable_files_name_the_setting() {
        let e = setup(&V2Tls::Pem {
            cert: "/no/such/cert.pem".into(),
            key: "/no/such/key.pem".into(),
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("v2.tls_cert") && e.contains("/no/such/cert.pem"),
            "{e}"
        );
    }
}
