//! TLS to the monitor, with libpq's sslmode semantics: `prefer` and `require` encrypt without
//! checking the certificate, `verify-ca` checks it against `sslrootcert`, `verify-full` also
//! checks that it names the host.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How a certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Encrypt, check nothing (`prefer`, `require`).
    None,
    /// The chain must lead to a CA of this file (`verify-ca`).
    Ca(String),
    /// As `Ca`, and the certificate must name the host (`verify-full`).
    Full(String),
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("cannot read the CA file \"{path}\": {message}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A verifying mode without a CA file.
    #[error("sslmode={0} needs sslrootcert (the CA file)")]
    NoCa(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// What to check for `sslmode` with CA file `sslrootcert`.
pub fn verification(sslmode: &str, sslrootcert: Option<&str>) -> Result<Verification, TlsError> {
    match sslmode {
        "verify-ca" | "verify-full" => {
            let ca = sslrootcert
                .filter(|c| !c.is_empty())
                .ok_or_else(|| TlsError::NoCa(sslmode.to_string()))?
                .to_string();
            Ok(if sslmode == "verify-ca" {
                Verification::Ca(ca)
            } else {
                Verification::Full(ca)
            })
        }
        _ => Ok(Verification::None),
    }
}

/// A TLS connector for tokio-postgres that checks what `verification` says.
pub fn connector(verification: &Verification) -> Result<MakeRustlsConnect, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let config = match verification {
        Verification::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth(),
        Verification::Ca(path) | Verification::Full(path) => {
            let roots = Arc::new(load_roots(path)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            let verifier: Arc<dyn ServerCertVerifier> = match verification {
                Verification::Ca(_) => Arc::new(AnyName(webpki)),
                _ => webpki,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

fn load_roots(path: &str) -> Result<RootCertStore, TlsError> {
    let err = |message: String| TlsError::CaFile {
        path: path.to_string(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| err(e.to_string()))?;
        roots.add(cert).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no certificate in it".to_string()));
    }
    Ok(roots)
}

/// Accepts any certificate, as libpq does for sslmode `prefer` and `require`; the
/// handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The CA check of `verify-ca`: a certificate naming another host is accepted.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_modes_need_a_ca_file() {
        assert_eq!(
            verification("require", None).expect("ok"),
            Verification::None
        );
        assert_eq!(
            verification("prefer", Some("x")).expect("ok"),
            Verification::None
        );
        assert!(matches!(
            verification("verify-full", None),
            Err(TlsError::NoCa(_))
        ));
        assert_eq!(
            verification("verify-ca", Some("/ca.pem")).expect("ok"),
            Verification::Ca("/ca.pem".to_string())
        );
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error() {
        assert!(matches!(
            connector(&Verification::Full("/nonexistent/ca.pem".to_string())),
            Err(TlsError::CaFile { .. })
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "").expect("write");
        assert!(matches!(
            connector(&Verification::Ca(empty.display().to_string())),
            Err(TlsError::CaFile { .. })
        ));
        assert!(connector(&Verification::None).is_ok());
    }
}
