//! TLS policy: the rustls client configuration (ring provider), CA pinning
//! from `ldap_ca_cert`, and the server name to verify. Verification is on by
//! default. It is weakened in two places only, both in [`danger`] and both
//! logged: [`danger::NoVerification`], chosen by
//! `ldap_reject_unauthorized=false`, and [`danger::CommonNameFallback`],
//! which, with a pinned CA only, also accepts a certificate that names the
//! server in its subject CN alone, as Node's TLS (upstream Rocket.Chat) does.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
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
    let verifier = verifier(settings, provider)?;
    // rustls's builder calls every verifier it did not build itself
    // "dangerous"; which of ours weaken verification is said in `verifier`.
    Ok(Arc::new(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth()))
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

/// The server-certificate verifier `settings` choose:
/// - `ldap_reject_unauthorized=false`: none ([`danger::NoVerification`]);
/// - no `ldap_ca_cert`: rustls's own against the public (webpki) roots, so a
///   certificate without a subjectAltName for the name is refused, as RFC
///   6125 §6.4.4 wants;
/// - `ldap_ca_cert`: rustls's own against that CA, with the CN fallback of
///   [`danger::CommonNameFallback`]. A pinned CA is one the operator
///   trusts for this directory alone, not a public CA that signs for
///   anyone: that is what makes a CN-only name (Samba AD's default
///   certificate) acceptable there and nowhere else.
fn verifier(settings: &LdapConnection, provider: Arc<CryptoProvider>) -> Result<Arc<dyn ServerCertVerifier>, LdapError> {
    if !settings.reject_unauthorized {
        crate::log::warn(
            "the LDAP server's TLS certificate is NOT verified",
            &[("setting", serde_json::json!("ldap_reject_unauthorized=false"))],
        );
        return Ok(Arc::new(danger::NoVerification { provider }));
    }
    if settings.ca_cert.trim().is_empty() {
        let roots = Arc::new(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() });
        return Ok(webpki_verifier(roots, provider)?);
    }
    let roots = Arc::new(pinned_roots(&settings.ca_cert)?);
    Ok(Arc::new(danger::CommonNameFallback::new(roots, provider)?))
}

/// The trust anchors of `ldap_ca_cert` (one or more PEM certificates).
fn pinned_roots(ca_cert: &str) -> Result<RootCertStore, LdapError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_cert.as_bytes()) {
        let cert = cert.map_err(|e| LdapError::TlsConfig(format!("ldap_ca_cert is not a PEM certificate chain: {e}")))?;
        roots.add(cert).map_err(|e| LdapError::TlsConfig(format!("ldap_ca_cert holds an unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(LdapError::TlsConfig("ldap_ca_cert holds no PEM certificate".to_owned()));
    }
    Ok(roots)
}

/// rustls's standard verifier (chain, validity, usage, subjectAltName),
/// without revocation checking, as `with_root_certificates` builds it.
fn webpki_verifier(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, LdapError> {
    WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| LdapError::TlsConfig(format!("no usable trust anchor: {e}")))
}

/// Verification weakened, each time by the operator's choice and with a
/// warning: turned off ([`NoVerification`]), or a CN-only name accepted
/// under a pinned CA ([`CommonNameFallback`]).
pub mod danger {
    use std::net::IpAddr;
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
    use rustls::server::ParsedCertificate;
    use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    use x509_cert::Certificate;
    use x509_cert::der::Decode as _;
    use x509_cert::der::oid::db::rfc4519::COMMON_NAME;
    use x509_cert::ext::pkix::ID_CE_SUBJECT_ALT_NAME;
    use x509_cert::ext::pkix::name::DirectoryString;

    use super::{CryptoProvider, LdapError, webpki_verifier};

    /// rustls's verifier for the CA of `ldap_ca_cert`, plus one fallback:
    /// a certificate that has no subjectAltName extension at all and names
    /// the server in its subject CN is accepted, with a warning, once the
    /// chain to that CA, the validity period and the serverAuth usage have
    /// all been verified as for any other certificate.
    ///
    /// Why: Node's `tls.checkServerIdentity` (what upstream Rocket.Chat's
    /// ldapjs connection uses) still matches the CN of a certificate without
    /// DNS names, and Samba AD's default LDAPS certificate is such a
    /// certificate; rustls, following RFC 6125 §6.4.4, never looks at the CN.
    /// A certificate that has a subjectAltName is judged by it alone
    /// ("a client MUST NOT seek a match for a reference identifier of CN-ID
    /// if the presented identifiers include a DNS-ID", RFC 6125 §6.4.4).
    /// Narrower than Node on purpose: the CN must equal the name exactly
    /// (ASCII case aside), with no wildcard.
    #[derive(Debug)]
    pub struct CommonNameFallback {
        inner: Arc<WebPkiServerVerifier>,
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
    }

    impl CommonNameFallback {
        /// A verifier for `roots`, which must be the pinned CA of
        /// `ldap_ca_cert`, never the public roots: anyone can get a
        /// certificate from a public CA with their own name in the CN.
        pub fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Result<Self, LdapError> {
            let inner = webpki_verifier(roots.clone(), provider.clone())?;
            Ok(Self { inner, roots, provider })
        }
    }

    impl ServerCertVerifier for CommonNameFallback {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let refused = match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
                Err(
                    e @ rustls::Error::InvalidCertificate(
                        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                    ),
                ) => e,
                verdict => return verdict,
            };
            // This refusal names ldap_host; it stands unless the CN-only fallback applies.
            let Some(cn) = cn_only_name(end_entity, server_name) else {
                return Err(refused);
            };
            // The chain again, with everything but the name, rather than
            // trusting that the inner verifier checked it before the name.
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                &self.roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
            crate::log::warn(&cn_only_warning(&cn), &[("cn", serde_json::json!(cn))]);
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }

        fn requires_raw_public_keys(&self) -> bool {
            self.inner.requires_raw_public_keys()
        }

        fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
            self.inner.root_hint_subjects()
        }
    }

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

    /// The subject CN that names `server_name`, when the certificate has no
    /// subjectAltName extension; `None` otherwise, and for a certificate
    /// that does not parse (the refusal then stands).
    ///
    /// A DNS name matches a CN equal to it, ASCII case aside (RFC 4343). An
    /// IP address (`ldap_host` empty or an IP) matches a CN that parses as
    /// the same address. Any of several CNs may match, as in Node.
    pub(super) fn cn_only_name(end_entity: &CertificateDer<'_>, server_name: &ServerName<'_>) -> Option<String> {
        let cert = Certificate::from_der(end_entity.as_ref()).ok()?;
        let tbs = cert.tbs_certificate();
        if tbs.extensions().is_some_and(|extensions| extensions.iter().any(|e| e.extn_id == ID_CE_SUBJECT_ALT_NAME)) {
            return None;
        }
        tbs.subject()
            .iter()
            .filter(|atv| atv.oid == COMMON_NAME)
            .filter_map(|atv| DirectoryString::try_from(&atv.value).ok())
            .map(|cn| cn.value().into_owned())
            .find(|cn| names(cn, server_name))
    }

    /// Whether the CN text `cn` is the name `server_name`.
    fn names(cn: &str, server_name: &ServerName<'_>) -> bool {
        match server_name {
            ServerName::DnsName(dns) => cn.eq_ignore_ascii_case(dns.as_ref()),
            ServerName::IpAddress(ip) => cn.parse::<IpAddr>().is_ok_and(|cn| cn == IpAddr::from(*ip)),
            _ => false,
        }
    }

    /// The line logged for each connection accepted by the CN fallback.
    pub(super) fn cn_only_warning(cn: &str) -> String {
        format!(
            "the LDAP server's certificate names {cn:?} only in its CN (no subjectAltName); \
             accepted because ldap_ca_cert pins its CA"
        )
    }
}

#[cfg(test)]
mod tests;
