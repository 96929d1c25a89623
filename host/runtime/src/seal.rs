//! Sealed links (`[run] seal`, default on): every `zenoh` link of a run is TLS 1.3 with mutual
//! authentication under a certificate authority made for that run alone.
//!
//! **Who holds which key.** The supervisor makes the run's authority ([`RunCa`]: a fresh
//! ECDSA P-256 key that lives in its memory for the run and is never written anywhere). Each
//! worker with `zenoh` ports makes its own key ([`Request::new`]) and sends only a signing
//! request (`FromWorker::Csr`) over its control socket (a worker on another host: through its
//! agent, over the agent's control session, itself TLS under an authority derived from the
//! token: [`token_identity`]). The supervisor signs it for
//! the addresses that worker's host listens on ([`RunCa::sign`]) and answers with the
//! certificate and the authority's certificate (`ToWorker::Cert`). No private key crosses a
//! socket.
//!
//! **What the engine checks.** Every `zenoh` session of a sealed run listens and connects on
//! `tls/` endpoints with `enable_mtls`: the listening side asks for a client certificate and
//! refuses a handshake without one the run's authority signed, before any Zenoh message (so
//! before anything can be subscribed or published); the connecting side checks the listener's
//! certificate and that it names the IP address it dialled (`verify_name_on_connect`).
//!
//! **Validity.** The authority and its certificates are valid from a day before the run
//! (clocks of other hosts may be behind) to [`VALIDITY_DAYS`] after; the authority's key dies
//! with the supervisor's process, so nothing it signed can be extended.

use std::net::IpAddr;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};

/// The test-only hook (`WASM_IPC_TEST_HOLD_START=MS`, at most 10 s): every worker waits this
/// long between connecting its ports and its lock-down, so a test can dial its listeners in
/// the start-up window.
pub const HOLD_START_VAR: &str = "WASM_IPC_TEST_HOLD_START";

/// How long a run's certificates stay valid, in days: beyond the longest run
/// (`scenario::MAX_TIMEOUT`, 7 days), so that a link the engine dials again late in a run still
/// passes its handshake.
pub const VALIDITY_DAYS: i64 = 8;

/// How long a certificate is valid.
#[derive(Clone, Copy)]
enum Validity {
    /// A run's: a day back (other hosts' clocks may be behind), [`VALIDITY_DAYS`] on.
    Run,
    /// The control link's: as long-lived as the token (an agent serves for days).
    Token,
}

impl Validity {
    fn set(self, params: &mut CertificateParams) {
        let (from, to) = match self {
            Validity::Run => {
                let now = time::OffsetDateTime::now_utc();
                (
                    now - time::Duration::days(1),
                    now + time::Duration::days(VALIDITY_DAYS),
                )
            }
            Validity::Token => (
                rcgen::date_time_ymd(2000, 1, 1),
                rcgen::date_time_ymd(9999, 12, 31),
            ),
        };
        params.not_before = from;
        params.not_after = to;
    }
}

/// An authority's parameters: named `name`, signing leaves only (no intermediate authority
/// below it).
fn authority(name: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity.set(&mut params);
    params
}

/// A leaf's parameters: `who`, for `ips`, no authority rights, for a session that both
/// listens (a producer's, an agent's) and dials (a consumer's, a supervisor's).
fn leaf(who: &str, ips: &[IpAddr], validity: Validity) -> anyhow::Result<CertificateParams> {
    let mut params =
        CertificateParams::new(ips.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, who);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    validity.set(&mut params);
    Ok(params)
}

/// A run's certificate authority: its key and its self-signed certificate.
pub struct RunCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl std::fmt::Debug for RunCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCa").finish_non_exhaustive()
    }
}

impl RunCa {
    /// A fresh authority for run `run_id`.
    pub fn new(run_id: &str) -> anyhow::Result<RunCa> {
        let key = KeyPair::generate().context("making the run's authority key")?;
        let params = authority(&format!("wasm-ipc run {run_id}"), Validity::Run);
        let cert = params
            .self_signed(&key)
            .context("signing the run's authority certificate")?;
        Ok(RunCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The authority's certificate (PEM): what every session of the run trusts, and only that.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Signs `who`'s request (PEM) for `ips`: the certificate (PEM). The request's own
    /// signature is checked (its sender holds the key); what it asks for beyond its public key
    /// is ignored: the names, usages and validity are the supervisor's.
    pub fn sign(&self, who: &str, csr_pem: &str, ips: &[IpAddr]) -> anyhow::Result<String> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .with_context(|| format!("{who}: its certificate signing request"))?;
        let cert = leaf(who, ips, Validity::Run)?
            .signed_by(&csr.public_key, &self.issuer)
            .with_context(|| format!("{who}: signing its certificate"))?;
        Ok(cert.pem())
    }
}

/// A worker's own key and the signing request it sends.
pub struct Request {
    key: KeyPair,
    /// The request (PEM).
    pub csr: String,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").finish_non_exhaustive()
    }
}

impl Request {
    /// A fresh key for `who` and a request signed with it.
    pub fn new(who: &str) -> anyhow::Result<Request> {
        let key = KeyPair::generate().context("making the worker's key")?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, who);
        params.distinguished_name = name;
        let csr = params
            .serialize_request(&key)
            .context("making the certificate signing request")?
            .pem()
            .context("encoding the certificate signing request")?;
        Ok(Request { key, csr })
    }

    /// The identity a `zenoh` session presents, with the certificate and authority the
    /// supervisor answered.
    pub fn identity(self, cert: String, ca: String) -> Identity {
        Identity {
            key: self.key.serialize_pem(),
            cert,
            ca,
        }
    }
}

/// What a sealed `zenoh` session needs: its own key and certificate, and the one authority it
/// trusts (all PEM). It stays inside the worker: the key is never serialised onto a socket.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    key: String,
    cert: String,
    ca: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

impl Identity {
    /// Sets a session's TLS to this identity: mutual authentication, its authority the only
    /// root, and (`verify_name`) the dialled address checked against the listener's
    /// certificate.
    pub fn configure(&self, c: &mut zenoh::Config, verify_name: bool) -> anyhow::Result<()> {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let set = |c: &mut zenoh::Config, k: &str, v: String| {
            c.insert_json5(&format!("transport/link/tls/{k}"), &v)
                .map_err(|e| anyhow::anyhow!("zenoh config transport/link/tls/{k}: {e}"))
        };
        let text = |v: String| serde_json::to_string(&v).expect("a string serialises");
        set(c, "root_ca_certificate_base64", text(b64(&self.ca)))?;
        set(c, "listen_private_key_base64", text(b64(&self.key)))?;
        set(c, "listen_certificate_base64", text(b64(&self.cert)))?;
        set(c, "connect_private_key_base64", text(b64(&self.key)))?;
        set(c, "connect_certificate_base64", text(b64(&self.cert)))?;
        set(c, "enable_mtls", "true".into())?;
        set(c, "verify_name_on_connect", verify_name.to_string())?;
        Ok(())
    }
}

/// The control link's identity for a process that holds `token` (an agent, or the supervisor
/// reaching one): a leaf key of its own, signed by the authority every holder of the token
/// derives alike. That authority's Ed25519 key comes from the token
/// (`HMAC-SHA256(token, "wasm-ipc control authority")` as its seed), so it is never sent
/// anywhere; nobody without the token can make a certificate the other side accepts, and the
/// TLS handshake refuses them before any Zenoh message. Names are not checked on this link
/// (every holder of the token could sign any name): the authority is the check. The token
/// proofs of the control protocol then run inside the encrypted session, as before.
pub fn token_identity(token: &[u8], who: &str) -> anyhow::Result<Identity> {
    let seed = crate::agent::mac(token, &[b"wasm-ipc control authority"]);
    // PKCS#8 v1 for an Ed25519 key (RFC 8410): the fixed prefix, then the 32-byte seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    let ca_key = KeyPair::try_from(der.as_slice()).context("deriving the control authority")?;
    let params = authority("wasm-ipc control authority", Validity::Token);
    let ca_pem = params
        .self_signed(&ca_key)
        .context("signing the control authority")?
        .pem();
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().context("making the control link's key")?;
    let cert = leaf(who, &[], Validity::Token)?
        .signed_by(&key, &issuer)
        .context("signing the control link's certificate")?;
    Ok(Identity {
        key: key.serialize_pem(),
        cert: cert.pem(),
        ca: ca_pem,
    })
}

/// Connections the engine's listeners refused in this process: its TLS and TCP transports
/// log every failed accept (a handshake without a certificate of the run, a client that
/// speaks no TLS, an accept the lock-down forbids) as a warning, and [`watch_refusals`]
/// counts those.
static REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many refused connections a worker names on its stderr; the rest are only counted.
const REFUSALS_SHOWN: u64 = 3;

/// The engine's modules whose warnings include a listener's failed accepts.
const LISTENERS: [&str; 2] = ["zenoh_link_tls", "zenoh_link_tcp"];

/// How both listeners' accept loops end the warning of a failed accept (zenoh 1.10, pinned:
/// `tests/all/seal.rs` fails if it changes). Their other warnings (a socket option that could
/// not be set) are not refusals.
const ACCEPT_FAILED: &str = ". Hint: increase the system open file limit";

/// Connections refused so far in this process ([`watch_refusals`]).
pub fn refused() -> u64 {
    REFUSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Installs the process's `tracing` subscriber: it takes only the engine's listeners'
/// warnings (every other event of the engine is never even built: its call sites are
/// disabled), counts each as a refused connection, and names the first few on stderr, which
/// is the supervisor's (an agent's: its log). Called once, by a worker with `zenoh` ports before
/// it opens them, and by an agent before it listens.
/// `said` starts each line (e.g. "wasm-ipc worker producer: refused a connection from outside
/// the run").
pub fn watch_refusals(said: String) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry().with(Refusals { said });
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| anyhow::anyhow!("installing the refusal counter: {e}"))
}

struct Refusals {
    said: String,
}

impl Refusals {
    fn wanted(m: &tracing::Metadata<'_>) -> bool {
        // `tracing` orders levels by verbosity: ERROR < WARN < INFO.
        *m.level() <= tracing::Level::WARN
            && LISTENERS.iter().any(|l| {
                m.target()
                    .strip_prefix(l)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Refusals {
    fn register_callsite(
        &self,
        m: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Refusals::wanted(m) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(
        &self,
        m: &tracing::Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        Refusals::wanted(m)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::WARN)
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !Refusals::wanted(event.metadata()) {
            return;
        }
        let mut text = String::new();
        event.record(&mut Message(&mut text));
        // The engine's hint names the open-file limit; here the cause is the connection
        // itself (no certificate of the run, not TLS), or the lock-down.
        let Some(at) = text.find(ACCEPT_FAILED) else {
            return;
        };
        text.truncate(at);
        let n = REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n < REFUSALS_SHOWN {
            eprintln!("{}: {text}", self.said);
        }
    }
}

/// An event's `message` field as text.
struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_signed_by_the_run_carries_the_given_addresses_not_the_requested_ones() {
        let ca = RunCa::new("t1").unwrap();
        let req = Request::new("producer").unwrap();
        let ip: IpAddr = "198.18.0.1".parse().unwrap();
        let cert = ca.sign("producer", &req.csr, &[ip]).unwrap();
        let der = pem_body(&cert);
        let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
        let sans = x.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            format!("{:?}", sans.value.general_names),
            "[IPAddress([198, 18, 0, 1])]"
        );
        let ca_der = pem_body(ca.pem());
        let (_, ca_x) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert_eq!(x.issuer(), ca_x.subject());
        x.verify_signature(Some(ca_x.public_key())).unwrap();
        // Another run's authority did not sign it.
        let other = RunCa::new("t2").unwrap();
        let other_der = pem_body(other.pem());
        let (_, other_x) = x509_parser::parse_x509_certificate(&other_der).unwrap();
        assert!(x.verify_signature(Some(other_x.public_key())).is_err());
    }

    #[test]
    fn a_tampered_request_is_refused() {
        let ca = RunCa::new("t").unwrap();
        let req = Request::new("consumer").unwrap();
        let mut der = pem_body(&req.csr);
        let n = der.len();
        der[n - 10] ^= 1;
        let bad = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
        let e = ca.sign("consumer", &bad, &[]).unwrap_err();
        assert!(format!("{e:#}").contains("consumer: its certificate signing request"));
    }

    #[test]
    fn holders_of_one_token_derive_one_control_authority_and_another_token_does_not_sign() {
        let a = token_identity(b"0123456789abcdef", "agent").unwrap();
        let s = token_identity(b"0123456789abcdef", "supervisor").unwrap();
        let other = token_identity(b"0123456789abcdeF", "supervisor").unwrap();
        assert_eq!(a.ca, s.ca, "the authority is derived alike on both sides");
        assert_ne!(a.key, s.key, "each side's key is its own");
        let ca_der = pem_body(&a.ca);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        for (leaf, signed) in [(&a, true), (&s, true), (&other, false)] {
            let der = pem_body(&leaf.cert);
            let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
            assert_eq!(x.verify_signature(Some(ca.public_key())).is_ok(), signed);
        }
    }

    fn pem_body(text: &str) -> Vec<u8> {
        pem::parse(text).unwrap().into_contents()
    }
}
