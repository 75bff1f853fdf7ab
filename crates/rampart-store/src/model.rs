//! Records and enums exchanged with the stores.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with `client_id:client_secret`.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with a key from the client's JWKS.
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// The canonical string (`"client_secret_basic"`, `"client_secret_post"`, `"private_key_jwt"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Parses the canonical string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(ClientAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(ClientAuthMethod::ClientSecretPost),
            "private_key_jwt" => Some(ClientAuthMethod::PrivateKeyJwt),
            _ => None,
        }
    }
}

impl fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format of access tokens issued to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientTokenFormat {
    /// Signed JWT (`"jwt"`).
    #[serde(rename = "jwt")]
    Jwt,
    /// PASETO v4.public (`"paseto-public"`).
    #[serde(rename = "paseto-public")]
    PasetoPublic,
    /// PASETO v4.local (`"paseto-local"`).
    #[serde(rename = "paseto-local")]
    PasetoLocal,
}

impl ClientTokenFormat {
    /// The canonical string (`"jwt"`, `"paseto-public"`, `"paseto-local"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientTokenFormat::Jwt => "jwt",
            ClientTokenFormat::PasetoPublic => "paseto-public",
            ClientTokenFormat::PasetoLocal => "paseto-local",
        }
    }

    /// Parses the canonical string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jwt" => Some(ClientTokenFormat::Jwt),
            "paseto-public" => Some(ClientTokenFormat::PasetoPublic),
            "paseto-local" => Some(ClientTokenFormat::PasetoLocal),
            _ => None,
        }
    }
}

impl fmt::Display for ClientTokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered OAuth2 client.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRecord {
    /// Unique client identifier.
    pub client_id: String,
    /// Human-readable name.
    pub name: String,
    /// Keyed hash of the client secret; `None` for `private_key_jwt`.
    pub secret_hash: Option<Vec<u8>>,
    /// Token endpoint authentication method.
    pub auth_method: ClientAuthMethod,
    /// Public JWKS JSON for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// Audiences the client may request tokens for.
    pub audiences: Vec<String>,
    /// Access token format issued to this client.
    pub token_format: ClientTokenFormat,
    /// Access token lifetime in seconds.
    pub access_token_ttl_secs: i64,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last modification time, unix seconds.
    pub updated_at: i64,
}

/// Lifecycle state of a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published but not yet used for signing.
    Next,
    /// Used for signing.
    Active,
    /// No longer signing; still published until tokens expire.
    Retired,
}

impl KeyState {
    /// The canonical string (`"next"`, `"active"`, `"retired"`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }

    /// Parses the canonical string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(KeyState::Next),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key as persisted: its private part is sealed by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredKey {
    /// Unique key identifier.
    pub kid: String,
    /// Key kind, e.g. `"jwt-EdDSA"` or `"paseto-v4.public"` (opaque to the store).
    pub kind: String,
    /// Lifecycle state.
    pub state: KeyState,
    /// Private key material sealed by the caller (opaque bytes).
    pub sealed_secret: Vec<u8>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// When the key became active, unix seconds.
    pub activated_at: Option<i64>,
    /// When the key was retired, unix seconds.
    pub retired_at: Option<i64>,
}

/// One change in an atomic batch passed to [`crate::KeyStore::apply_key_changes`].
#[derive(Clone, Debug, PartialEq)]
pub enum KeyChange {
    /// Insert a new key (`Conflict` if the kid exists).
    Insert(StoredKey),
    /// Change a key's state (`NotFound` if absent). Sets `activated_at = at`
    /// when the new state is `Active`, `retired_at = at` when `Retired`.
    SetState {
        /// Key to change.
        kid: String,
        /// New state.
        state: KeyState,
        /// Time of the transition, unix seconds.
        at: i64,
    },
    /// Delete a key (`NotFound` if absent).
    Delete {
        /// Key to delete.
        kid: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_strings_round_trip_and_match_serde() {
        for m in [
            ClientAuthMethod::ClientSecretBasic,
            ClientAuthMethod::ClientSecretPost,
            ClientAuthMethod::PrivateKeyJwt,
        ] {
            assert_eq!(ClientAuthMethod::parse(m.as_str()), Some(m));
            let json = serde_json::to_string(&m).expect("serialize");
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
        for f in [
            ClientTokenFormat::Jwt,
            ClientTokenFormat::PasetoPublic,
            ClientTokenFormat::PasetoLocal,
        ] {
            assert_eq!(ClientTokenFormat::parse(f.as_str()), Some(f));
            let json = serde_json::to_string(&f).expect("serialize");
            assert_eq!(json, format!("\"{}\"", f.as_str()));
        }
        for s in [KeyState::Next, KeyState::Active, KeyState::Retired] {
            assert_eq!(KeyState::parse(s.as_str()), Some(s));
        }
        assert_eq!(ClientAuthMethod::parse("none"), None);
        assert_eq!(ClientTokenFormat::parse("JWT"), None);
        assert_eq!(KeyState::parse(""), None);
    }
}
