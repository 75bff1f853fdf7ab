//! Passkeys (WebAuthn): the relying party built from the issuer, and the ceremonies in
//! flight.
//!
//! The relying party id is the issuer's host and the only accepted origin is the issuer's
//! origin (scheme, host and port). Browsers refuse WebAuthn for IP addresses, so on an issuer
//! such as `https://127.0.0.1:8443` passkeys are off ([`Passkeys::enabled`] is `false`) and
//! the pages do not offer them.
//!
//! A ceremony's server state (its challenge, the user, the allowed credentials) stays in this
//! process: a bounded map keyed by a random id that travels in the `__Host-rampart-webauthn`
//! cookie (SameSite=Strict, HttpOnly, Secure, five minutes). Each state is used at most once,
//! only by the browser that started it (a keyed hash of its CSRF token is kept with it), and
//! never after its expiry. When the map is full, expired entries go first, then the oldest.
//! Nothing here is persisted: a restart only aborts ceremonies in flight.
//!
//! WebAuthn user handles are the user's id: ids are 16 random bytes in base64url, so the
//! handle is those 16 bytes (as the UUID webauthn-rs wants) and maps back without a lookup.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_crypto::{constant_time_eq, random_token};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, PasskeyAuthentication,
    PasskeyRegistration, Url, Uuid, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

/// The cookie that names this browser's ceremony.
pub const CEREMONY_COOKIE: &str = "__Host-rampart-webauthn";
/// How long a ceremony may take, start to finish.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Most ceremonies in flight.
pub const MAX_CEREMONIES: usize = 10_000;
/// Most passkeys one user may register.
pub const MAX_PASSKEYS_PER_USER: usize = 20;

/// Who may register a passkey: the user of a session, or the user who passed the password
/// step of an authorization request (enrollment during sign-in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registrant {
    /// A signed-in session (the account page).
    Session(String),
    /// An authorization request with a pending user bound to this browser.
    Request(String),
}

/// How a passkey sign-in identifies the user.
pub enum SignInMode {
    /// Usernameless: the authenticator picks a discoverable credential and tells the user.
    Discoverable(DiscoverableAuthentication),
    /// After the password step: one of the pending user's passkeys as a second factor.
    SecondFactor {
        /// The pending user.
        user_id: String,
        /// The challenge and the allowed credentials.
        state: PasskeyAuthentication,
    },
}

/// A ceremony in flight.
pub enum Ceremony {
    /// Registering a new passkey.
    Register {
        /// Whose passkey.
        user_id: String,
        /// How the user is known.
        via: Registrant,
        /// The challenge.
        state: PasskeyRegistration,
    },
    /// Signing in to an authorization request.
    SignIn {
        /// The authorization request.
        request_id: String,
        /// Usernameless or second factor.
        mode: SignInMode,
    },
}

impl fmt::Debug for Ceremony {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ceremony::Register { user_id, via, .. } => f
                .debug_struct("Register")
                .field("user_id", user_id)
                .field("via", via)
                .finish_non_exhaustive(),
            Ceremony::SignIn { request_id, mode } => f
                .debug_struct("SignIn")
                .field("request_id", request_id)
                .field(
                    "mode",
                    &match mode {
                        SignInMode::Discoverable(_) => "discoverable",
                        SignInMode::SecondFactor { .. } => "second factor",
                    },
                )
                .finish_non_exhaustive(),
        }
    }
}

struct Pending {
    ceremony: Ceremony,
    browser: Vec<u8>,
    created: Instant,
}

/// Passkeys could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// Randomness failed.
    #[error("no randomness for a ceremony id")]
    Random,
}

/// The WebAuthn relying party and the ceremonies in flight.
pub struct Passkeys {
    webauthn: Option<Webauthn>,
    pending: Mutex<HashMap<String, Pending>>,
    ttl: Duration,
    capacity: usize,
}

impl fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passkeys")
            .field("enabled", &self.enabled())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Passkeys {
    /// The relying party for `issuer`: id = its host, origin = its origin. Off (with a
    /// warning) when the host is an IP address or the issuer is not an `https` URL with a
    /// host.
    pub fn new(issuer: &str) -> Self {
        Self::with_limits(issuer, CEREMONY_TTL, MAX_CEREMONIES)
    }

    /// As [`Passkeys::new`] with other bounds (tests).
    pub fn with_limits(issuer: &str, ttl: Duration, capacity: usize) -> Self {
        let webauthn = match relying_party(issuer) {
            Ok(w) => Some(w),
            Err(why) => {
                tracing::warn!(issuer, "passkeys are off: {why}");
                None
            }
        };
        Self {
            webauthn,
            pending: Mutex::new(HashMap::new()),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Whether passkeys can be used on this issuer.
    pub fn enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    /// The relying party, when passkeys are on.
    pub fn webauthn(&self) -> Option<&Webauthn> {
        self.webauthn.as_ref()
    }

    /// Keeps `ceremony` for the browser identified by `browser` (a keyed hash of its CSRF
    /// token) and returns its id, for [`ceremony_cookie`].
    pub fn begin(
        &self,
        ceremony: Ceremony,
        browser: Vec<u8>,
        now: Instant,
    ) -> Result<String, PasskeyError> {
        let id = random_token(32).map_err(|_| PasskeyError::Random)?;
        let mut pending = self.lock();
        if pending.len() >= self.capacity {
            let ttl = self.ttl;
            pending.retain(|_, p| now.saturating_duration_since(p.created) < ttl);
        }
        while pending.len() >= self.capacity {
            let oldest = pending
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    pending.remove(&k);
                }
                None => break,
            }
        }
        pending.insert(
            id.clone(),
            Pending {
                ceremony,
                browser,
                created: now,
            },
        );
        Ok(id)
    }

    /// Takes the ceremony `id` out (it can be finished once, even when this fails): `None`
    /// when unknown, expired, or started by another browser.
    pub fn take(&self, id: &str, browser: &[u8], now: Instant) -> Option<Ceremony> {
        let found = self.lock().remove(id)?;
        let fresh = now.saturating_duration_since(found.created) < self.ttl;
        (fresh && constant_time_eq(&found.browser, browser)).then_some(found.ceremony)
    }

    /// How many ceremonies are kept.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn relying_party(issuer: &str) -> Result<Webauthn, String> {
    let url = Url::parse(issuer).map_err(|e| format!("issuer is not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err("the issuer is not https".into());
    }
    let Some(host) = url.domain() else {
        return Err("WebAuthn needs a domain name, not an IP address, in the issuer".into());
    };
    let origin = Url::parse(&url.origin().ascii_serialization())
        .map_err(|e| format!("issuer origin: {e}"))?;
    WebauthnBuilder::new(host, &origin)
        .and_then(|b| b.rp_name("Rampart").timeout(CEREMONY_TTL).build())
        .map_err(|e| format!("relying party: {e}"))
}

/// Asks the authenticator for a discoverable credential (a passkey in the proper sense),
/// so that it can later sign in without a username. webauthn-rs asks for a
/// server-side credential by default; the registration check does not depend on it.
pub fn require_discoverable(ccr: &mut CreationChallengeResponse) {
    if let Some(selection) = ccr.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
}

/// The WebAuthn user handle of `user_id`, when the id is 16 bytes in base64url (the ids
/// Rampart creates).
pub fn user_handle(user_id: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(user_id).ok()?;
    let handle = Uuid::from_slice(&bytes).ok()?;
    // Only the canonical encoding maps back to the same id.
    (user_id_of(handle) == user_id).then_some(handle)
}

/// The user id behind a user handle.
pub fn user_id_of(handle: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(handle.as_bytes())
}

/// `Set-Cookie` for the ceremony cookie (`Some(id)`), or its deletion (`None`).
pub fn ceremony_cookie(id: Option<&str>) -> HeaderValue {
    let value = match id {
        Some(id) => format!(
            "{CEREMONY_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
            CEREMONY_TTL.as_secs()
        ),
        None => {
            format!("{CEREMONY_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
        }
    };
    // Our own name and a base64url id: always valid header bytes.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://id.example.com:8443";

    fn registration(passkeys: &Passkeys, user_id: &str) -> Ceremony {
        let (_, state) = passkeys
            .webauthn()
            .unwrap()
            .start_passkey_registration(user_handle(user_id).unwrap(), "ada", "Ada", None)
            .unwrap();
        Ceremony::Register {
            user_id: user_id.to_owned(),
            via: Registrant::Session("s1".into()),
            state,
        }
    }

    fn user_id() -> String {
        random_token(16).unwrap()
    }

    #[test]
    fn relying_party_comes_from_the_issuer() {
        let passkeys = Passkeys::new(ISSUER);
        assert!(passkeys.enabled());
        let w = passkeys.webauthn().unwrap();
        let origins: Vec<String> = w
            .get_allowed_origins()
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(origins, ["https://id.example.com:8443/"]);
        let (mut ccr, _) = w
            .start_passkey_registration(user_handle(&user_id()).unwrap(), "ada", "Ada", None)
            .unwrap();
        require_discoverable(&mut ccr);
        let json = serde_json::to_value(&ccr).unwrap();
        let pk = &json["publicKey"];
        assert_eq!(pk["rp"]["id"], "id.example.com");
        assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], true);
        assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
        // A path on the issuer does not change the origin.
        assert!(Passkeys::new("https://id.example.com/tenant").enabled());
    }

    #[test]
    fn ip_addresses_and_plain_http_turn_passkeys_off() {
        for issuer in [
            "https://127.0.0.1:8443",
            "https://[::1]:8443",
            "http://id.example.com",
            "not a url",
        ] {
            assert!(!Passkeys::new(issuer).enabled(), "{issuer}");
        }
        assert!(Passkeys::new("https://localhost:8443").enabled());
    }

    #[test]
    fn user_handles_round_trip() {
        let id = user_id();
        let handle = user_handle(&id).unwrap();
        assert_eq!(user_id_of(handle), id);
        for other in ["", "short", "not base64!", "AAAAAAAAAAAAAAAAAAAAAAAA"] {
            assert!(user_handle(other).is_none(), "{other}");
        }
    }

    #[test]
    fn a_ceremony_is_taken_once_by_its_browser() {
        let passkeys = Passkeys::new(ISSUER);
        let now = Instant::now();
        let id = passkeys
            .begin(
                registration(&passkeys, &user_id()),
                b"browser-a".to_vec(),
                now,
            )
            .unwrap();
        assert_eq!(passkeys.in_flight(), 1);
        // Another browser: refused, and the ceremony is gone (single use).
        assert!(passkeys.take(&id, b"browser-b", now).is_none());
        assert!(passkeys.take(&id, b"browser-a", now).is_none());

        let id = passkeys
            .begin(
                registration(&passkeys, &user_id()),
                b"browser-a".to_vec(),
                now,
            )
            .unwrap();
        assert!(matches!(
            passkeys.take(&id, b"browser-a", now),
            Some(Ceremony::Register { .. })
        ));
        assert!(passkeys.take(&id, b"browser-a", now).is_none(), "used once");
        assert!(passkeys.take("unknown", b"browser-a", now).is_none());
    }

    #[test]
    fn ceremonies_expire() {
        let passkeys = Passkeys::with_limits(ISSUER, Duration::from_secs(300), 10);
        let now = Instant::now();
        let id = passkeys
            .begin(registration(&passkeys, &user_id()), b"b".to_vec(), now)
            .unwrap();
        assert!(
            passkeys
                .take(&id, b"b", now + Duration::from_secs(301))
                .is_none()
        );
    }

    #[test]
    fn the_map_is_bounded() {
        let passkeys = Passkeys::with_limits(ISSUER, Duration::from_secs(300), 3);
        let start = Instant::now();
        let ids: Vec<String> = (0..5u64)
            .map(|i| {
                passkeys
                    .begin(
                        registration(&passkeys, &user_id()),
                        b"b".to_vec(),
                        start + Duration::from_secs(i),
                    )
                    .unwrap()
            })
            .collect();
        assert_eq!(passkeys.in_flight(), 3);
        let later = start + Duration::from_secs(10);
        // The oldest were evicted, the newest are kept.
        assert!(passkeys.take(&ids[0], b"b", later).is_none());
        assert!(passkeys.take(&ids[1], b"b", later).is_none());
        assert!(passkeys.take(&ids[4], b"b", later).is_some());
        // Expired entries go before live ones.
        let passkeys = Passkeys::with_limits(ISSUER, Duration::from_secs(300), 2);
        let old = passkeys
            .begin(registration(&passkeys, &user_id()), b"b".to_vec(), start)
            .unwrap();
        let live = passkeys
            .begin(
                registration(&passkeys, &user_id()),
                b"b".to_vec(),
                start + Duration::from_secs(200),
            )
            .unwrap();
        let now = start + Duration::from_secs(400);
        passkeys
            .begin(registration(&passkeys, &user_id()), b"b".to_vec(), now)
            .unwrap();
        assert_eq!(passkeys.in_flight(), 2);
        assert!(passkeys.take(&old, b"b", now).is_none());
        assert!(passkeys.take(&live, b"b", now).is_some());
    }

    #[test]
    fn the_cookie_is_strict_and_host_only() {
        let set = ceremony_cookie(Some("abc"));
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-rampart-webauthn=abc; Path=/;"));
        for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Max-Age=300"] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(!set.contains("Domain"));
        let gone = ceremony_cookie(None);
        assert!(gone.to_str().unwrap().contains("Max-Age=0"));
    }
}
