//! TLS policy: the rustls client configuration (ring provider), CA pinning
//! from `ldap_ca_cert`, and the server name to verify. Verification is on by
//! default; the only way to weaken it is [`danger::NoVerification`], chosen
//! by `ldap_reject_unauthorized=false` and logged on every run.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::settings::LdapConnection;

use super::error::LdapError;

/// The client configuration for `settings`.
pub fn client_config(settings: &LdapConnection) -> Result<Arc<ClientConfig>, LdapError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapError::TlsConfig(e.to_string()))?;
    if !settings.reject_unauthorized {
        eprintln!("warning: ldap_reject_unauthorized=false: the LDAP server's TLS certificate is NOT verified");
        let verifier = Arc::new(danger::NoVerification { provider });
        return Ok(Arc::new(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth()));
    }
    let mut roots = rustls::RootCertStore::empty();
    if settings.ca_cert.trim().is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        for cert in CertificateDer::pem_slice_iter(settings.ca_cert.as_bytes()) {
            let cert = cert.map_err(|e| LdapError::TlsConfig(format!("ldap_ca_cert is not a PEM certificate chain: {e}")))?;
            roots.add(cert).map_err(|e| LdapError::TlsConfig(format!("ldap_ca_cert holds an unusable certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(LdapError::TlsConfig("ldap_ca_cert holds no PEM certificate".to_owned()));
        }
    }
    Ok(Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
}

/// The name the certificate must carry: `ldap_host`, else the IP connected to.
pub fn server_name(settings: &LdapConnection, ip: std::net::IpAddr) -> Result<ServerName<'static>, LdapError> {
    let host = settings.host.trim();
    if host.is_empty() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned())
        .map_err(|_| LdapError::TlsConfig(format!("ldap_host {host:?} is not a valid DNS name or IP address")))
}

/// Verification turned off, by explicit operator choice only.
pub mod danger {
    use std::sync::Arc;

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    use super::CryptoProvider;

    /// Accepts any certificate chain and name; still checks that the
    /// handshake signatures are made by the presented certificate's key.
    #[derive(Debug)]
    pub struct NoVerification {
        pub provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for NoVerification {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.provider.signature_verification_algorithms.supported_schemes()
        }
    }
}
