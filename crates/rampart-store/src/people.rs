//! Records and storage traits for people: users, their second factors, browser sessions,
//! authorization requests, codes, refresh-token families and consents.
//!
//! Every secret-bearing value arrives here already hashed (session cookies, codes, refresh
//! tokens, recovery codes: keyed hashes) or sealed (personal data, TOTP secrets: envelope
//! encryption under the master key). The store never sees plaintext.

use crate::Result;

/// A person who signs in.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    /// Stable, random identifier; the OpenID Connect `sub`.
    pub user_id: String,
    /// Normalized (lower-case) login name, unique.
    pub username: String,
    /// Keyed blind index of the normalized e-mail address, unique; lookup by e-mail.
    pub email_index: Vec<u8>,
    /// Personal data (e-mail, name, phone) as an envelope-sealed JSON document.
    pub sealed_profile: Vec<u8>,
    /// Password hash in PHC string format (Argon2id).
    pub password_hash: String,
    /// Roles, emitted as a claim.
    pub roles: Vec<String>,
    /// Groups, emitted as a claim.
    pub groups: Vec<String>,
    /// A disabled user cannot sign in and their tokens cannot be refreshed.
    pub disabled: bool,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last modification time, unix seconds.
    pub updated_at: i64,
}

/// A user's TOTP (RFC 6238) enrollment.
#[derive(Clone, Debug, PartialEq)]
pub struct TotpRecord {
    /// Owner.
    pub user_id: String,
    /// The shared secret, envelope-sealed.
    pub sealed_secret: Vec<u8>,
    /// `false` until the user proved possession with a first code.
    pub confirmed: bool,
    /// The last accepted time step; a code of this step or an earlier one is a replay.
    pub last_step: Option<i64>,
    /// Creation time, unix seconds.
    pub created_at: i64,
}

/// A registered WebAuthn credential (passkey or security key).
#[derive(Clone, Debug, PartialEq)]
pub struct WebauthnCredentialRecord {
    /// The credential id chosen by the authenticator, unique.
    pub credential_id: Vec<u8>,
    /// Owner.
    pub user_id: String,
    /// A label the user recognizes.
    pub name: String,
    /// The credential as serialized by the WebAuthn library (public key and counter: no secret).
    pub credential_json: String,
    /// Registration time, unix seconds.
    pub created_at: i64,
    /// Last successful use, unix seconds.
    pub last_used_at: Option<i64>,
}

/// A signed-in browser session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRecord {
    /// Public identifier (listing, revocation, the `sid` claim).
    pub session_id: String,
    /// Keyed hash of the cookie value, unique; the lookup key.
    pub cookie_hash: Vec<u8>,
    /// The signed-in user.
    pub user_id: String,
    /// When the user last actively authenticated, unix seconds.
    pub auth_time: i64,
    /// Authentication methods used (`pwd`, `otp`, `hwk`, ...; RFC 8176).
    pub amr: Vec<String>,
    /// Authentication context class reached.
    pub acr: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last request seen with this session, unix seconds (idle timeout).
    pub last_seen_at: i64,
    /// Absolute expiry, unix seconds.
    pub expires_at: i64,
}

/// A validated authorization request waiting for the user (login, MFA, consent), possibly
/// pushed by the client (RFC 9126).
#[derive(Clone, Debug, PartialEq)]
pub struct AuthRequestRecord {
    /// Random public identifier (in page URLs and the PAR `request_uri`).
    pub request_id: String,
    /// The requesting client.
    pub client_id: String,
    /// The validated parameters, as JSON owned by the authorization server.
    pub params_json: String,
    /// Whether it arrived by PAR.
    pub pushed: bool,
    /// The user who passed the password step but still owes a second factor.
    pub pending_user_id: Option<String>,
    /// A keyed hash tying the pending user to the browser that passed the password step.
    pub pending_binding: Option<Vec<u8>>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Expiry, unix seconds.
    pub expires_at: i64,
}

/// An authorization code (RFC 6749 §4.1), stored by its keyed hash.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthCodeRecord {
    /// Keyed hash of the code, unique.
    pub code_hash: Vec<u8>,
    /// The client it was issued to.
    pub client_id: String,
    /// The user who authorized it.
    pub user_id: String,
    /// The session it came from.
    pub session_id: String,
    /// The redirect URI it was sent to (must match exactly at the token endpoint).
    pub redirect_uri: String,
    /// Granted scope, space separated.
    pub scope: String,
    /// The `nonce` of the authorization request, for the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 code challenge.
    pub code_challenge: String,
    /// Authentication time, unix seconds.
    pub auth_time: i64,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// Authentication context class.
    pub acr: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Expiry, unix seconds.
    pub expires_at: i64,
}

/// What the first redemption of a code issued, so that a second redemption can revoke it.
#[derive(Clone, Debug, PartialEq)]
pub struct IssuedGrant {
    /// The access token's `jti`.
    pub access_jti: String,
    /// The access token's expiry, unix seconds.
    pub access_expires_at: i64,
    /// The refresh-token family started, if any.
    pub refresh_family_id: Option<String>,
}

/// The outcome of redeeming a code.
#[derive(Clone, Debug, PartialEq)]
pub enum CodeRedemption {
    /// First redemption of a valid, unexpired code: it is now marked used.
    Redeemed(AuthCodeRecord),
    /// The code was redeemed before: an attack or a bug. Carries what the first
    /// redemption recorded with [`AuthCodeStore::record_code_grant`], if anything.
    AlreadyRedeemed(AuthCodeRecord, Option<IssuedGrant>),
    /// Unknown or expired.
    Invalid,
}

/// A chain of refresh tokens descending from one authorization.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshFamilyRecord {
    /// Random identifier.
    pub family_id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// The browser session it came from, if any (logout revokes the family).
    pub session_id: Option<String>,
    /// Granted scope, space separated.
    pub scope: String,
    /// Authentication time of the original login.
    pub auth_time: i64,
    /// Authentication methods of the original login.
    pub amr: Vec<String>,
    /// Authentication context class of the original login.
    pub acr: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// No token of the family is valid after this, unix seconds.
    pub absolute_expires_at: i64,
    /// Set when the family was revoked (reuse, logout, user disabled).
    pub revoked_at: Option<i64>,
}

/// One refresh token, stored by its keyed hash.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshTokenRecord {
    /// Keyed hash of the token, unique.
    pub token_hash: Vec<u8>,
    /// Its family.
    pub family_id: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Expiry if unused (idle lifetime), unix seconds.
    pub idle_expires_at: i64,
    /// When it was exchanged for its successor.
    pub used_at: Option<i64>,
}

/// The outcome of exchanging a refresh token.
#[derive(Clone, Debug, PartialEq)]
pub enum RefreshRotation {
    /// The token was current: it is now used and its successor stored.
    Rotated(RefreshFamilyRecord),
    /// The token was already used: the whole family is now revoked.
    Reused(RefreshFamilyRecord),
    /// Unknown, expired (idle or absolute) or its family was revoked.
    Invalid,
}

/// Users.
#[async_trait::async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user. `Conflict` if the `user_id`, `username` or `email_index` exists.
    async fn create_user(&self, user: &UserRecord) -> Result<()>;
    /// Fetches a user by id.
    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>>;
    /// Fetches a user by normalized username.
    async fn get_user_by_username(&self, username: &str) -> Result<Option<UserRecord>>;
    /// Fetches a user by e-mail blind index.
    async fn get_user_by_email_index(&self, email_index: &[u8]) -> Result<Option<UserRecord>>;
    /// Lists all users ordered by `created_at`, then `user_id`.
    async fn list_users(&self) -> Result<Vec<UserRecord>>;
    /// Replaces the password hash. `NotFound` if absent.
    async fn set_password_hash(&self, user_id: &str, hash: &str, updated_at: i64) -> Result<()>;
    /// Enables or disables. `NotFound` if absent.
    async fn set_user_disabled(&self, user_id: &str, disabled: bool, updated_at: i64)
    -> Result<()>;
    /// Deletes a user and, in the same transaction, everything that belongs to them
    /// (factors, sessions, pending requests, codes, refresh families, consents).
    /// `NotFound` if absent.
    async fn delete_user(&self, user_id: &str) -> Result<()>;
}

/// Second factors.
#[async_trait::async_trait]
pub trait MfaStore: Send + Sync {
    /// Stores a new, unconfirmed TOTP secret, replacing an unconfirmed one. `Conflict` if a
    /// confirmed one exists (reset first).
    async fn put_pending_totp(&self, record: &TotpRecord) -> Result<()>;
    /// The user's TOTP enrollment, confirmed or not.
    async fn get_totp(&self, user_id: &str) -> Result<Option<TotpRecord>>;
    /// Records `step` as used if it is later than the last used step, atomically, and marks
    /// the enrollment confirmed. `Ok(false)`: a replay (or no enrollment).
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool>;
    /// Replaces the user's recovery codes with these keyed hashes.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[Vec<u8>],
        now: i64,
    ) -> Result<()>;
    /// Marks an unused recovery code used, atomically. `Ok(false)` if unknown or used.
    async fn use_recovery_code(&self, user_id: &str, hash: &[u8], now: i64) -> Result<bool>;
    /// How many unused recovery codes remain.
    async fn remaining_recovery_codes(&self, user_id: &str) -> Result<u64>;
    /// Adds a WebAuthn credential. `Conflict` if the credential id exists.
    async fn add_webauthn_credential(&self, credential: &WebauthnCredentialRecord) -> Result<()>;
    /// The user's WebAuthn credentials, oldest first.
    async fn list_webauthn_credentials(
        &self,
        user_id: &str,
    ) -> Result<Vec<WebauthnCredentialRecord>>;
    /// Replaces a credential's serialized state (counter) and last use. `NotFound` if absent.
    async fn update_webauthn_credential(
        &self,
        credential_id: &[u8],
        credential_json: &str,
        last_used_at: i64,
    ) -> Result<()>;
    /// Removes every second factor of the user (TOTP, recovery codes, WebAuthn), in one
    /// transaction.
    async fn reset_mfa(&self, user_id: &str) -> Result<()>;
}

/// Browser sessions.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a session. `Conflict` if the id or cookie hash exists.
    async fn create_session(&self, session: &SessionRecord) -> Result<()>;
    /// Fetches a session by its cookie hash (expired ones included; the caller checks).
    async fn get_session_by_cookie(&self, cookie_hash: &[u8]) -> Result<Option<SessionRecord>>;
    /// Fetches a session by id.
    async fn get_session(&self, session_id: &str) -> Result<Option<SessionRecord>>;
    /// Sets `last_seen_at`. `NotFound` if absent.
    async fn touch_session(&self, session_id: &str, now: i64) -> Result<()>;
    /// Records a fresh authentication (step-up): `auth_time`, `amr`, `acr`. `NotFound` if absent.
    async fn update_session_auth(
        &self,
        session_id: &str,
        auth_time: i64,
        amr: &[String],
        acr: &str,
    ) -> Result<()>;
    /// Lists a user's sessions, newest first.
    async fn list_sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>>;
    /// Deletes a session and revokes (sets `revoked_at` on) the refresh families tied to it,
    /// in one transaction. `NotFound` if absent.
    async fn delete_session(&self, session_id: &str, now: i64) -> Result<()>;
    /// Deletes all of a user's sessions and revokes all their refresh families; returns
    /// how many sessions were deleted.
    async fn delete_user_sessions(&self, user_id: &str, now: i64) -> Result<u64>;
    /// Deletes sessions with `expires_at <= now`; returns how many.
    async fn purge_expired_sessions(&self, now: i64) -> Result<u64>;
}

/// Authorization requests, codes, refresh tokens and consents.
#[async_trait::async_trait]
pub trait AuthCodeStore: Send + Sync {
    /// Stores a validated authorization request. `Conflict` if the id exists.
    async fn create_auth_request(&self, request: &AuthRequestRecord) -> Result<()>;
    /// Fetches an unexpired authorization request (`None` if absent or `expires_at <= now`).
    async fn get_auth_request(
        &self,
        request_id: &str,
        now: i64,
    ) -> Result<Option<AuthRequestRecord>>;
    /// Sets (user id and browser binding) or clears the user who owes a second factor.
    /// `NotFound` if the request (or the user) is absent.
    async fn set_auth_request_pending_user(
        &self,
        request_id: &str,
        pending: Option<(&str, &[u8])>,
    ) -> Result<()>;
    /// Replaces the parameters of a request (e.g. to record that the user signed in during
    /// it). `NotFound` if absent.
    async fn set_auth_request_params(&self, request_id: &str, params_json: &str) -> Result<()>;
    /// Deletes a request (done or abandoned). Succeeds if absent.
    async fn delete_auth_request(&self, request_id: &str) -> Result<()>;

    /// Stores a code. `Conflict` if the hash exists.
    async fn create_code(&self, code: &AuthCodeRecord) -> Result<()>;
    /// Redeems a code atomically: exactly one concurrent caller gets `Redeemed`.
    async fn redeem_code(&self, code_hash: &[u8], now: i64) -> Result<CodeRedemption>;
    /// Records what the redemption of a code issued. `NotFound` if absent.
    async fn record_code_grant(&self, code_hash: &[u8], grant: &IssuedGrant) -> Result<()>;

    /// Starts a refresh-token family with its first token, in one transaction.
    async fn create_refresh_family(
        &self,
        family: &RefreshFamilyRecord,
        first: &RefreshTokenRecord,
    ) -> Result<()>;
    /// Exchanges the token with hash `token_hash` for `next` (whose `family_id` is
    /// overwritten with the old token's), in one transaction; see [`RefreshRotation`].
    /// A token whose `idle_expires_at <= now`, or whose family is revoked or past
    /// `absolute_expires_at`, is `Invalid`.
    async fn rotate_refresh_token(
        &self,
        token_hash: &[u8],
        next: &RefreshTokenRecord,
        now: i64,
    ) -> Result<RefreshRotation>;
    /// The family of a token (for revocation and introspection), whatever its state.
    async fn get_refresh_family_by_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(RefreshTokenRecord, RefreshFamilyRecord)>>;
    /// Revokes a family. Idempotent; `NotFound` if absent.
    async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<()>;
    /// Revokes every family of a user; returns how many were newly revoked.
    async fn revoke_user_refresh_families(&self, user_id: &str, now: i64) -> Result<u64>;

    /// Records the scopes a user granted a client (replacing earlier ones).
    async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<()>;
    /// The scopes a user granted a client.
    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Option<Vec<String>>>;

    /// Deletes expired requests, codes (kept a day past expiry for reuse detection) and
    /// refresh tokens/families past their absolute expiry; returns how many rows went.
    async fn purge_expired_flows(&self, now: i64) -> Result<u64>;
}
