//! TLS for checks: one rustls configuration for every check, whose
//! verifier records the server certificate's expiry before verifying it
//! (so an expired or untrusted certificate is still reported), applies a
//! site's own `ca_file`, and whose session store marks the handshake start
//! and keeps no session, so every check does a full handshake.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
    WebPkiServerVerifier,
};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, NamedGroup, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::timing::{current, record};

/// The crypto provider of every check.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trust store (`/etc/ssl/certs`), or Mozilla's bundled roots
/// when the system has none (a scratch container, say).
pub(crate) fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(
            "no CA certificates in the system trust store: using the bundled Mozilla roots"
        );
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// A verifier trusting `roots` plus `extra` (a site's `ca_file`).
pub(crate) fn verifier(
    roots: &RootCertStore,
    extra: &[CertificateDer<'static>],
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Arc<WebPkiServerVerifier>> {
    let mut roots = roots.clone();
    for cert in extra {
        roots
            .add(cert.clone())
            .context("a ca_file certificate cannot be a trust anchor")?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .context("cannot build a certificate verifier")
}

/// A site's trust when it names a `ca_file`: the system's roots plus the
/// file's certificates, and one of those certificates presented as the
/// server's own is accepted as it is (pinned), as curl, OpenSSL and Go do.
/// `openssl req -x509` makes a self-signed certificate with `CA:TRUE`,
/// which WebPKI refuses as a server's (`CaUsedAsEndEntity`). A pinned
/// certificate must still name the host and be within its dates; any other
/// certificate goes through full verification.
#[derive(Debug)]
pub(crate) struct SiteVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl SiteVerifier {
    pub(crate) fn new(
        roots: &RootCertStore,
        ca_certs: &[CertificateDer<'static>],
        provider: &Arc<CryptoProvider>,
    ) -> anyhow::Result<SiteVerifier> {
        Ok(SiteVerifier {
            webpki: verifier(roots, ca_certs, provider)?,
            pinned: ca_certs.to_vec(),
        })
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            pinned_is_valid(end_entity, server_name, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }
}

/// A pinned certificate's own checks: the host's name and the dates.
fn pinned_is_valid(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    use rustls::CertificateError;
    let bad = |e: CertificateError| rustls::Error::InvalidCertificate(e);
    webpki::EndEntityCert::try_from(cert)
        .map_err(|_| bad(CertificateError::BadEncoding))?
        .verify_is_valid_for_subject_name(server_name)
        .map_err(|_| bad(CertificateError::NotValidForName))?;
    let (_, parsed) =
        X509Certificate::from_der(cert.as_ref()).map_err(|_| bad(CertificateError::BadEncoding))?;
    let now = now.as_secs() as i64;
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() {
        return Err(bad(CertificateError::NotValidYet));
    }
    if now > validity.not_after.timestamp() {
        return Err(bad(CertificateError::Expired));
    }
    Ok(())
}

/// The rustls configuration shared by all checks.
pub(crate) fn client_config(
    default: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
) -> anyhow::Result<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("no TLS protocol version available")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordingVerifier { default }))
        .with_no_client_auth();
    config.resumption = Resumption::store(Arc::new(HandshakeClock));
    Ok(config)
}

/// The rustls configuration of sitewatch's own requests (notifications):
/// the system's roots, full verification, nothing recorded.
pub(crate) fn standard_config() -> anyhow::Result<ClientConfig> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("no TLS protocol version available")?
        .with_root_certificates(system_roots())
        .with_no_client_auth())
}

/// Reads `notAfter` of a DER certificate.
/// The certificate's `notAfter`, when it is a date anyone can store and
/// compute with (1970 to 9999); a certificate claiming year 0 says nothing
/// about when it expires (its rejection is the check's error).
pub(crate) fn expiry(der: &[u8]) -> Option<time::OffsetDateTime> {
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, cert)| cert.validity().not_after.to_datetime())
        .filter(|t| crate::message::plausible_expiry(*t))
}

/// The names a DER certificate covers: its DNS and IP subject alternative
/// names (at most 100), or else its common name.
pub(crate) fn names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => names.push((*n).to_owned()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => names.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).expect("4 bytes"))
                            .to_string(),
                    ),
                    16 => names.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).expect("16 bytes"))
                            .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    if names.is_empty()
        && let Some(cn) = cert.subject().iter_common_name().next()
        && let Ok(cn) = cn.as_str()
    {
        names.push(cn.to_owned());
    }
    names.truncate(100);
    names
        .into_iter()
        .map(|n| crate::escape::controls(&n))
        .collect()
}

#[derive(Debug)]
struct RecordingVerifier {
    default: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let recorder = current();
        if let Some(r) = &recorder {
            let expires = expiry(end_entity);
            let covered = names(end_entity);
            // Over a chain of redirects: the one that expires first.
            r.update(|m| {
                m.cert_expires_at = m.cert_expires_at.into_iter().chain(expires).min();
                m.cert_names = Some(covered);
            });
        }
        match recorder.and_then(|r| r.verifier.clone()) {
            Some(site) => site.verify(end_entity, intermediates, server_name, ocsp_response, now),
            None => self.default.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.default.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.default.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.default.supported_verify_schemes()
    }
}

/// A session store that stores nothing (no resumption between checks) and
/// marks the handshake start: rustls asks it for a cached session while
/// building the ClientHello, right after the TCP connection is up.
#[derive(Debug)]
struct HandshakeClock;

fn mark_tls_start() {
    record(|m| {
        m.tls_start.get_or_insert_with(Instant::now);
    });
}

impl ClientSessionStore for HandshakeClock {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        mark_tls_start();
        None
    }

    fn set_tls12_session(&self, _: ServerName<'static>, _: Tls12ClientSessionValue) {}

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        mark_tls_start();
        None
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _: ServerName<'static>, _: Tls13ClientSessionValue) {}

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        mark_tls_start();
        None
    }
}

/// A refused certificate in words a person acts on, with the hint that
/// fixes it, and rustls' own name for it last (`(UnknownIssuer)`), to
/// search for; None for the errors that say enough as they are.
pub(super) fn in_words(error: &rustls::Error) -> Option<String> {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(certificate) = error else {
        return None;
    };
    let day = |t: &UnixTime| {
        time::OffsetDateTime::from_unix_timestamp(t.as_secs() as i64)
            .map(|d| d.date().to_string())
            .unwrap_or_else(|_| "?".to_owned())
    };
    Some(match certificate {
        C::UnknownIssuer => "certificate not trusted: signed by a CA this machine does not know \
             (self-signed, or a private CA): give the site that CA as ca_file (UnknownIssuer)"
            .to_owned(),
        C::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            "certificate not trusted: the server presents a CA certificate as its own \
             (self-signed): give the site that certificate as ca_file (CaUsedAsEndEntity)"
                .to_owned()
        }
        C::Expired => "certificate expired: renew it on the server (Expired)".to_owned(),
        C::ExpiredContext { not_after, .. } => format!(
            "certificate expired on {}: renew it on the server (Expired)",
            day(not_after)
        ),
        C::NotValidYet => "certificate not valid yet: check the clocks of the server and of \
             this machine (NotValidYet)"
            .to_owned(),
        C::NotValidYetContext { not_before, .. } => format!(
            "certificate not valid before {}: check the clocks of the server and of this \
             machine (NotValidYet)",
            day(not_before)
        ),
        C::NotValidForName => "certificate not valid for this host name: check the URL's host, \
             or the names the certificate covers (NotValidForName)"
            .to_owned(),
        C::NotValidForNameContext {
            expected,
            presented,
        } => {
            let covers: Vec<&str> = presented.iter().take(5).map(String::as_str).collect();
            format!(
                "certificate not valid for {}: it covers {}: check the URL's host, or the \
                 certificate (NotValidForName)",
                expected.to_str(),
                if covers.is_empty() {
                    "no name".to_owned()
                } else {
                    covers.join(", ")
                }
            )
        }
        C::Revoked => {
            "certificate revoked by its CA: replace it on the server (Revoked)".to_owned()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod words_tests {
    use super::*;
    use rustls::CertificateError as C;

    fn words(e: C) -> String {
        in_words(&rustls::Error::InvalidCertificate(e)).unwrap()
    }

    #[test]
    fn refused_certificates_say_why_and_what_to_do() {
        assert!(words(C::UnknownIssuer).contains("ca_file (UnknownIssuer)"));
        let expired = words(C::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000)),
        });
        assert_eq!(
            expired,
            "certificate expired on 2023-11-14: renew it on the server (Expired)"
        );
        let name = words(C::NotValidForNameContext {
            expected: ServerName::try_from("api.example.com").unwrap(),
            presented: vec!["www.example.com".into(), "example.com".into()],
        });
        assert!(
            name.starts_with(
                "certificate not valid for api.example.com: it covers www.example.com, example.com"
            ),
            "{name}"
        );
        assert!(in_words(&rustls::Error::General("x".into())).is_none());
    }
}
