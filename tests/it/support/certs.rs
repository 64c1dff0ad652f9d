//! Test certificates with expiry dates the tests know.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use time::macros::datetime;

/// `notAfter` of the certificates that are still valid.
pub const VALID_UNTIL: OffsetDateTime = datetime!(2031-05-17 12:00:00 UTC);
/// The same as it appears in a message.
pub const VALID_UNTIL_TEXT: &str = "2031-05-17T12:00:00.000Z";
/// `notAfter` of the expired certificate.
pub const EXPIRED_AT: OffsetDateTime = datetime!(2024-01-01 00:00:00 UTC);
pub const EXPIRED_AT_TEXT: &str = "2024-01-01T00:00:00.000Z";

pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Leaf {
    /// A rustls server configuration presenting this certificate.
    pub fn server_config(&self) -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), self.key.clone_key())
        .unwrap()
    }
}

fn leaf_params(not_after: OffsetDateTime) -> CertificateParams {
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.not_before = datetime!(2023-01-01 00:00:00 UTC);
    params.not_after = not_after;
    params
}

fn key_der(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

/// A self-signed certificate for 127.0.0.1 that no one trusts.
pub fn self_signed(not_after: OffsetDateTime) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(not_after).self_signed(&key).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        key: key_der(&key),
    }
}

/// A self-signed certificate with `CA:TRUE`, for `names`, as `openssl req
/// -x509` makes one; and its PEM, for a site's `ca_file`.
pub fn self_signed_ca_true(names: &[&str], not_after: OffsetDateTime) -> (Leaf, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = datetime!(2023-01-01 00:00:00 UTC);
    params.not_after = not_after;
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    (
        Leaf {
            chain: vec![cert.der().clone()],
            key: key_der(&key),
        },
        pem,
    )
}

/// A test CA; its PEM goes into a site's `ca_file`.
pub struct Ca {
    issuer: Issuing,
}

enum Issuing {
    Own(CertifiedIssuer<'static, KeyPair>),
    /// Loaded from files, with its certificate's PEM.
    Loaded(rcgen::Issuer<'static, KeyPair>, String),
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sitewatch test CA");
        params.not_before = datetime!(2020-01-01 00:00:00 UTC);
        params.not_after = datetime!(2040-01-01 00:00:00 UTC);
        Ca {
            issuer: Issuing::Own(
                CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
            ),
        }
    }

    pub fn pem(&self) -> String {
        match &self.issuer {
            Issuing::Own(issuer) => issuer.pem(),
            Issuing::Loaded(_, pem) => pem.clone(),
        }
    }

    /// A certificate for `names` only, signed by this CA (a CA of its own).
    pub fn leaf_for(&self, names: &[&str], not_after: OffsetDateTime) -> Leaf {
        let Issuing::Own(issuer) = &self.issuer else {
            panic!("leaf_for() is for the tests' own CAs")
        };
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = datetime!(2023-01-01 00:00:00 UTC);
        params.not_after = not_after;
        let cert = params.signed_by(&key, issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone(), issuer.der().clone()],
            key: key_der(&key),
        }
    }

    /// A certificate for 127.0.0.1 signed by this CA (a CA of its own).
    pub fn leaf(&self, not_after: OffsetDateTime) -> Leaf {
        let Issuing::Own(issuer) = &self.issuer else {
            panic!("leaf() is for the tests' own CAs")
        };
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(not_after).signed_by(&key, issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone(), issuer.der().clone()],
            key: key_der(&key),
        }
    }
}

impl Ca {
    /// A certificate for `names` (host names or IP addresses) signed by
    /// this CA, valid until [`VALID_UNTIL`], and its private key, as PEM.
    pub fn issue_pem(&self, names: &[&str]) -> (String, String) {
        self.issue_pem_until(names, VALID_UNTIL)
    }

    /// The same, valid until `not_after`.
    pub fn issue_pem_until(&self, names: &[&str], not_after: OffsetDateTime) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = datetime!(2023-01-01 00:00:00 UTC);
        params.not_after = not_after;
        let cert = match &self.issuer {
            Issuing::Own(issuer) => params.signed_by(&key, issuer),
            Issuing::Loaded(issuer, _) => params.signed_by(&key, issuer),
        }
        .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A CA from its certificate and key (the stack's Kafka CA).
    pub fn from_pem(cert: &str, key: &str) -> Ca {
        let key = KeyPair::from_pem(key).unwrap();
        Ca {
            issuer: Issuing::Loaded(
                rcgen::Issuer::from_ca_cert_pem(cert, key).unwrap(),
                cert.to_owned(),
            ),
        }
    }
}
