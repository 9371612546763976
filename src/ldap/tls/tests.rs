//! The verifier that `verifier` picks, driven through `verify_server_cert`
//! with the certificates of `tests/fixtures/tls/` (made by its `make.sh`)
//! at a fixed time inside their validity. No socket, no handshake: the
//! handshake with a real server is `tests/host`'s e2e `tls_cn_only_certificate`.

use std::net::Ipv4Addr;
use std::time::Duration;

use rustls::{CertificateError, Error};
use rustls_pki_types::UnixTime;

use super::*;
use crate::settings::Encryption;

const CA: &str = include_str!("../../../tests/fixtures/tls/ca.pem");
const OTHER_CA: &str = include_str!("../../../tests/fixtures/tls/other-ca.pem");
/// CN=ldap.example.test, no subjectAltName.
const CN_ONLY: &str = include_str!("../../../tests/fixtures/tls/cn-only.pem");
/// CN=127.0.0.1, no subjectAltName.
const CN_ONLY_IP: &str = include_str!("../../../tests/fixtures/tls/cn-only-ip.pem");
/// CN=ldap.example.test, no subjectAltName, extendedKeyUsage=clientAuth only.
const CN_ONLY_CLIENT: &str = include_str!("../../../tests/fixtures/tls/cn-only-client.pem");
/// CN=ldap.example.test, subjectAltName=DNS:other.example.test.
const SAN_OTHER: &str = include_str!("../../../tests/fixtures/tls/san-other.pem");
/// CN=ldap.example.test, subjectAltName=DNS:ldap.example.test.
const SAN: &str = include_str!("../../../tests/fixtures/tls/san.pem");

const HOST: &str = "ldap.example.test";

/// 2030-03-17: after the fixtures were made (2026), long before they expire (2126).
fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(1_900_000_000))
}

fn settings(ca_cert: &str, host: &str) -> LdapConnection {
    LdapConnection {
        ip: Some(Ipv4Addr::LOCALHOST.into()),
        host: host.into(),
        port: 636,
        encryption: Encryption::Tls,
        ca_cert: ca_cert.into(),
        reject_unauthorized: true,
        timeout_ms: 1_000,
        connect_timeout_ms: 1_000,
        bind: None,
    }
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("a fixture certificate")
}

/// The name for `host` (empty: 127.0.0.1, the IP connected to).
fn name(host: &str) -> ServerName<'static> {
    server_name(&settings("", host), Ipv4Addr::LOCALHOST.into()).expect("a valid ldap_host")
}

/// What the verifier of `ldap_ca_cert=ca_cert`, `ldap_host=host` makes of
/// the server certificate `cert` at `at`.
fn verify_at(ca_cert: &str, host: &str, cert: &str, at: UnixTime) -> Result<(), Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier(&settings(ca_cert, host), provider).expect("a verifier");
    verifier.verify_server_cert(&der(cert), &[], &name(host), &[], at).map(|_| ())
}

fn verify(ca_cert: &str, host: &str, cert: &str) -> Result<(), Error> {
    verify_at(ca_cert, host, cert, now())
}

#[track_caller]
fn assert_not_valid_for(result: Result<(), Error>, host: &str) {
    let is_name_error = matches!(result, Err(Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })));
    assert!(is_name_error, "expected the name error for {host:?}, got {result:?}");
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    let says = format!("invalid peer certificate: certificate not valid for name {host:?}; ");
    assert!(message.starts_with(&says), "{message:?} does not start with {says:?}");
}

#[test]
fn cn_only_certificate_is_accepted_under_the_pinned_ca() {
    assert_eq!(verify(CA, HOST, CN_ONLY), Ok(()));
    assert_eq!(verify(CA, "LDAP.Example.TEST", CN_ONLY), Ok(()), "DNS names compare without ASCII case");
    assert_eq!(danger::cn_only_name(&der(CN_ONLY), &name("LDAP.example.test")).as_deref(), Some(HOST), "the warning names the CN");
}

#[test]
fn cn_only_certificate_is_refused_for_another_host() {
    let refused = verify(CA, "other.example.test", CN_ONLY);
    assert_not_valid_for(refused.clone(), "other.example.test");
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.ends_with("is not valid for any names (according to its subjectAltName extension)"), "{message}");
    assert_not_valid_for(verify(CA, "example.test", CN_ONLY), "example.test");
    assert_not_valid_for(verify(CA, "x.ldap.example.test", CN_ONLY), "x.ldap.example.test");
}

#[test]
fn a_subject_alt_name_that_does_not_match_wins_over_a_matching_cn() {
    // RFC 6125 §6.4.4: with a DNS-ID present, the CN is not looked at.
    let refused = verify(CA, HOST, SAN_OTHER);
    assert_not_valid_for(refused.clone(), HOST);
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("is only valid for") && message.contains("other.example.test"), "{message}");
    assert_eq!(danger::cn_only_name(&der(SAN_OTHER), &name(HOST)), None);
}

#[test]
fn a_matching_subject_alt_name_is_accepted_as_before() {
    assert_eq!(verify(CA, HOST, SAN), Ok(()));
}

#[test]
fn cn_only_certificate_is_refused_under_another_ca() {
    assert_eq!(verify(OTHER_CA, HOST, CN_ONLY), Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)));
}

#[test]
fn cn_only_certificate_is_refused_without_a_pinned_ca() {
    // The public roots: a public CA issues certificates with anyone's name in
    // the CN, so the fallback is never offered there. The CN would match.
    assert_eq!(verify("", HOST, CN_ONLY), Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)));
    assert_eq!(verify(" \n", HOST, CN_ONLY), Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)));
    assert!(danger::cn_only_name(&der(CN_ONLY), &name(HOST)).is_some());
}

#[test]
fn the_fallback_still_requires_a_valid_chain_validity_and_usage() {
    let client_only = verify(CA, HOST, CN_ONLY_CLIENT);
    assert!(
        matches!(
            client_only,
            Err(Error::InvalidCertificate(CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }))
        ),
        "a certificate for client authentication only: {client_only:?}"
    );
    let before = UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000));
    let early = verify_at(CA, HOST, CN_ONLY, before);
    assert!(matches!(early, Err(Error::InvalidCertificate(CertificateError::NotValidYetContext { .. }))), "2023: {early:?}");
    let after = UnixTime::since_unix_epoch(Duration::from_secs(5_000_000_000));
    let late = verify_at(CA, HOST, CN_ONLY, after);
    assert!(matches!(late, Err(Error::InvalidCertificate(CertificateError::ExpiredContext { .. }))), "2128: {late:?}");
    // The pinned CA's own certificate has no subjectAltName either, and its CN is a DNS name.
    let ca_as_server = verify(CA, "ldap-sync-test-ca", CA);
    assert!(ca_as_server.is_err(), "a CA certificate presented as the server's: {ca_as_server:?}");
}

#[test]
fn an_ip_name_matches_only_a_cn_that_is_that_ip() {
    assert_eq!(verify(CA, "", CN_ONLY_IP), Ok(()), "ldap_host empty: the name is ldap_ip, 127.0.0.1");
    assert_eq!(verify(CA, "127.0.0.1", CN_ONLY_IP), Ok(()), "ldap_host an IP");
    let refused = verify(CA, "", CN_ONLY);
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.starts_with("invalid peer certificate: certificate not valid for name \"127.0.0.1\""), "{message}");
    assert_not_valid_for(verify(CA, "localhost", CN_ONLY_IP), "localhost");
}

#[test]
fn the_warning_is_one_line_naming_the_cn() {
    assert_eq!(
        danger::cn_only_warning("dc1.example.test"),
        "the LDAP server's certificate names \"dc1.example.test\" only in its CN (no subjectAltName); \
         accepted because ldap_ca_cert pins its CA"
    );
}

#[test]
fn handshake_signatures_are_checked_by_rustls() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier(&settings(CA, HOST), provider.clone()).expect("a verifier");
    assert_eq!(verifier.supported_verify_schemes(), provider.signature_verification_algorithms.supported_schemes());
}
