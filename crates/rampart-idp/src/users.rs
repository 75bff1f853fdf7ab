//! People who sign in: creation with the password policy, lookup, password checks with
//! uniform timing, and management (disable, delete, set password, reset MFA).
//!
//! Personal data (e-mail, name, phone) is sealed under the master key; the e-mail is found
//! through a keyed blind index. Passwords are Argon2id hashes computed on a bounded pool.

use std::sync::Arc;

use rampart_authn::{
    Argon2Params, HashingLimits, PasswordError, PasswordHasher, PasswordRejection, Profile,
    ProfileVault, check_new_password, normalize_email, normalize_username,
};
use rampart_crypto::{MasterKey, SecretString, random_identifier};
use rampart_store::{
    AuthCodeStore, MfaStore, SessionRecord, SessionStore, Store, StoreError, UserRecord, UserStore,
};

use crate::config::PeopleConfig;

/// Most roles or groups per user.
const MAX_LABELS: usize = 64;
/// Longest role or group name, name or phone number.
const MAX_LABEL_LEN: usize = 128;

/// Errors of the user directory.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A field is invalid; the message names it and never echoes a password.
    #[error("{0}")]
    Invalid(String),
    /// The password does not meet the policy.
    #[error("password: {0}")]
    WeakPassword(#[from] PasswordRejection),
    /// A user with this username or e-mail exists.
    #[error("a user with this username or e-mail already exists")]
    Conflict,
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// Too many password hashes are being computed; try again shortly.
    #[error("busy, try again")]
    Busy,
    /// Hashing, sealing or randomness failed.
    #[error("cryptographic operation failed")]
    Crypto,
    /// The store failed.
    #[error("storage failed")]
    Store(#[source] StoreError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => UserError::Conflict,
            StoreError::NotFound => UserError::NotFound,
            other => UserError::Store(other),
        }
    }
}

impl From<PasswordError> for UserError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => UserError::Busy,
            _ => UserError::Crypto,
        }
    }
}

/// What a caller gives to create a user.
#[derive(Debug)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Full name.
    pub name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Roles (claim `roles`).
    pub roles: Vec<String>,
    /// Groups (claim `groups`).
    pub groups: Vec<String>,
    /// The initial password.
    pub password: SecretString,
}

/// A user with their opened profile.
#[derive(Clone, Debug)]
pub struct User {
    /// The stored record (hashes and sealed data only).
    pub record: UserRecord,
    /// The opened personal data.
    pub profile: Profile,
}

/// A user's second factors, as shown to administrators (no secrets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MfaStatus {
    /// A TOTP authenticator is enrolled and confirmed.
    pub totp_confirmed: bool,
    /// A TOTP enrollment was started but not confirmed yet.
    pub totp_pending: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u64,
    /// Registered passkeys and security keys.
    pub passkeys: usize,
}

/// The directory of people.
pub struct UserDirectory {
    users: Arc<dyn UserStore>,
    mfa: Arc<dyn MfaStore>,
    sessions: Arc<dyn SessionStore>,
    flows: Arc<dyn AuthCodeStore>,
    passwords: PasswordHasher,
    vault: ProfileVault,
}

impl UserDirectory {
    /// A directory over the stores.
    pub fn new(
        users: Arc<dyn UserStore>,
        mfa: Arc<dyn MfaStore>,
        sessions: Arc<dyn SessionStore>,
        flows: Arc<dyn AuthCodeStore>,
        passwords: PasswordHasher,
        vault: ProfileVault,
    ) -> Self {
        Self {
            users,
            mfa,
            sessions,
            flows,
            passwords,
            vault,
        }
    }

    /// A directory over one store that implements every people store, with the default
    /// Argon2id parameters and hashing limits (used by the CLI).
    pub fn open(store: Arc<dyn Store>, master: &MasterKey) -> Result<Self, UserError> {
        Ok(Self::open_with(
            store,
            master,
            Argon2Params::default(),
            HashingLimits::default(),
        )?)
    }

    /// Like [`UserDirectory::open`], with the Argon2id parameters and hashing limits of the
    /// `[login]` settings (what the server uses, so the CLI hashes the same way).
    pub fn open_configured(
        store: Arc<dyn Store>,
        master: &MasterKey,
        people: &PeopleConfig,
    ) -> Result<Self, PasswordError> {
        let params = Argon2Params {
            m_cost_kib: people.argon2_memory_kib,
            t_cost: people.argon2_iterations,
            p_cost: 1,
        };
        let mut limits = HashingLimits::default();
        if people.max_concurrent_hashes > 0 {
            limits.max_concurrent = people.max_concurrent_hashes;
        }
        limits.max_queued = people.max_queued_hashes;
        Self::open_with(store, master, params, limits)
    }

    /// Like [`UserDirectory::open`], with chosen Argon2id parameters and hashing limits.
    pub fn open_with(
        store: Arc<dyn Store>,
        master: &MasterKey,
        params: Argon2Params,
        limits: HashingLimits,
    ) -> Result<Self, PasswordError> {
        let passwords = PasswordHasher::new(params, limits)?;
        Ok(Self::new(
            store.clone(),
            store.clone(),
            store.clone(),
            store,
            passwords,
            ProfileVault::new(master),
        ))
    }

    /// The password hasher (its bounded pool).
    pub fn passwords(&self) -> &PasswordHasher {
        &self.passwords
    }

    /// The vault that seals personal data and second-factor secrets.
    pub fn vault(&self) -> &ProfileVault {
        &self.vault
    }

    /// The second-factor store.
    pub fn mfa(&self) -> &Arc<dyn MfaStore> {
        &self.mfa
    }

    /// Validates and stores a new user. Durable when this returns.
    pub async fn create(&self, new: NewUser, now: i64) -> Result<User, UserError> {
        let username = normalize_username(&new.username).ok_or_else(|| {
            UserError::Invalid(
                "username: 1 to 64 characters among a-z, 0-9, '.', '_', '-', '@'".into(),
            )
        })?;
        let email = normalize_email(&new.email)
            .ok_or_else(|| UserError::Invalid("email: not a valid e-mail address".into()))?;
        let name = optional_text("name", new.name)?;
        let phone = optional_text("phone", new.phone)?;
        let roles = labels("role", &new.roles)?;
        let groups = labels("group", &new.groups)?;
        let local_part = email.split('@').next().unwrap_or_default().to_owned();
        check_new_password(
            rampart_crypto::ExposeSecret::expose_secret(&new.password),
            &[&username, &local_part],
        )?;
        let user_id = random_identifier(16).map_err(|_| UserError::Crypto)?;
        let profile = Profile {
            email: email.clone(),
            name,
            phone,
            email_verified: false,
        };
        let sealed_profile = self
            .vault
            .seal(&user_id, &profile)
            .map_err(|_| UserError::Crypto)?;
        let password_hash = self.passwords.hash(&new.password).await?;
        let record = UserRecord {
            user_id,
            username,
            email_index: self.vault.email_index(&email).to_vec(),
            sealed_profile,
            password_hash,
            roles,
            groups,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        self.users.create_user(&record).await?;
        Ok(User { record, profile })
    }

    /// Finds a user by id, username or e-mail address.
    pub async fn find(&self, who: &str) -> Result<User, UserError> {
        let record = match self.users.get_user(who).await? {
            Some(r) => Some(r),
            None => self.lookup_login(who).await?,
        };
        let record = record.ok_or(UserError::NotFound)?;
        self.open_record(record)
    }

    /// Fetches a user by id.
    pub async fn get(&self, user_id: &str) -> Result<User, UserError> {
        let record = self
            .users
            .get_user(user_id)
            .await?
            .ok_or(UserError::NotFound)?;
        self.open_record(record)
    }

    /// All users, oldest first.
    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        let records = self.users.list_users().await?;
        records.into_iter().map(|r| self.open_record(r)).collect()
    }

    /// Checks a login name (username or e-mail) and password. Unknown users, wrong
    /// passwords and disabled users all cost one Argon2id verification and give `None`,
    /// so neither the answer nor its timing tells them apart. A correct password hashed with
    /// old parameters is re-hashed.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &SecretString,
        now: i64,
    ) -> Result<Option<User>, UserError> {
        self.authenticate_from(login, password, now, false).await
    }

    /// [`Self::authenticate`]; `trusted_device` (a browser that signed in to this account
    /// before) may use the hashing pool's reserve queue when the ordinary one is full.
    pub async fn authenticate_from(
        &self,
        login: &str,
        password: &SecretString,
        now: i64,
        trusted_device: bool,
    ) -> Result<Option<User>, UserError> {
        let record = self.lookup_login(login).await?;
        let phc = record.as_ref().map(|r| r.password_hash.as_str());
        let check = if trusted_device {
            self.passwords.verify_trusted(phc, password).await?
        } else {
            self.passwords.verify(phc, password).await?
        };
        let Some(record) = record else {
            return Ok(None);
        };
        if !check.valid || record.disabled {
            return Ok(None);
        }
        if check.needs_rehash {
            match self.passwords.hash(password).await {
                Ok(hash) => {
                    if let Err(e) = self
                        .users
                        .set_password_hash(&record.user_id, &hash, now)
                        .await
                    {
                        tracing::warn!(error = %e, "password re-hash not stored");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "password re-hash failed"),
            }
        }
        self.open_record(record).map(Some)
    }

    /// Enables or disables a user. Disabling signs them out everywhere and revokes their
    /// refresh tokens.
    pub async fn set_disabled(&self, who: &str, disabled: bool, now: i64) -> Result<(), UserError> {
        let user = self.find(who).await?;
        self.users
            .set_user_disabled(&user.record.user_id, disabled, now)
            .await?;
        if disabled {
            self.sign_out_everywhere(&user.record.user_id, now).await?;
        }
        Ok(())
    }

    /// Deletes a user and everything that belongs to them.
    pub async fn delete(&self, who: &str) -> Result<(), UserError> {
        let user = self.find(who).await?;
        self.users.delete_user(&user.record.user_id).await?;
        Ok(())
    }

    /// Sets a new password (policy checked) and signs the user out everywhere.
    pub async fn set_password(
        &self,
        who: &str,
        password: &SecretString,
        now: i64,
    ) -> Result<(), UserError> {
        let user = self.find(who).await?;
        let local_part = user.profile.email.split('@').next().unwrap_or_default();
        check_new_password(
            rampart_crypto::ExposeSecret::expose_secret(password),
            &[&user.record.username, local_part],
        )?;
        let hash = self.passwords.hash(password).await?;
        self.users
            .set_password_hash(&user.record.user_id, &hash, now)
            .await?;
        self.sign_out_everywhere(&user.record.user_id, now).await
    }

    /// Removes every second factor of a user (TOTP, recovery codes, passkeys).
    pub async fn reset_mfa(&self, who: &str) -> Result<(), UserError> {
        let user = self.find(who).await?;
        self.mfa.reset_mfa(&user.record.user_id).await?;
        Ok(())
    }

    /// The state of a user's second factors.
    pub async fn mfa_status(&self, user_id: &str) -> Result<MfaStatus, UserError> {
        let totp = self.mfa.get_totp(user_id).await?;
        Ok(MfaStatus {
            totp_confirmed: totp.as_ref().is_some_and(|t| t.confirmed),
            totp_pending: totp.as_ref().is_some_and(|t| !t.confirmed),
            recovery_codes_left: self.mfa.remaining_recovery_codes(user_id).await?,
            passkeys: self.mfa.list_webauthn_credentials(user_id).await?.len(),
        })
    }

    /// A user's sessions, newest first.
    pub async fn sessions(&self, who: &str) -> Result<Vec<SessionRecord>, UserError> {
        let user = self.find(who).await?;
        Ok(self.sessions.list_sessions(&user.record.user_id).await?)
    }

    /// Ends one session (and the refresh tokens that came from it).
    pub async fn revoke_session(&self, session_id: &str, now: i64) -> Result<(), UserError> {
        Ok(self.sessions.delete_session(session_id, now).await?)
    }

    /// Ends every session of the user and revokes all their refresh tokens.
    pub async fn sign_out_everywhere(&self, user_id: &str, now: i64) -> Result<(), UserError> {
        self.sessions.delete_user_sessions(user_id, now).await?;
        self.flows
            .revoke_user_refresh_families(user_id, now)
            .await?;
        Ok(())
    }

    async fn lookup_login(&self, login: &str) -> Result<Option<UserRecord>, UserError> {
        if login.contains('@')
            && let Some(email) = normalize_email(login)
        {
            let index = self.vault.email_index(&email);
            if let Some(r) = self.users.get_user_by_email_index(&index).await? {
                return Ok(Some(r));
            }
        }
        match normalize_username(login) {
            Some(username) => Ok(self.users.get_user_by_username(&username).await?),
            None => Ok(None),
        }
    }

    fn open_record(&self, record: UserRecord) -> Result<User, UserError> {
        let profile = self
            .vault
            .open(&record.user_id, &record.sealed_profile)
            .map_err(|_| {
                tracing::error!(user_id = %record.user_id, "user profile could not be opened");
                UserError::Crypto
            })?;
        Ok(User { record, profile })
    }
}

fn optional_text(field: &str, value: Option<String>) -> Result<Option<String>, UserError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_LABEL_LEN || value.chars().any(char::is_control) {
        return Err(UserError::Invalid(format!(
            "{field}: at most {MAX_LABEL_LEN} printable characters"
        )));
    }
    Ok(Some(value))
}

fn labels(field: &str, values: &[String]) -> Result<Vec<String>, UserError> {
    if values.len() > MAX_LABELS {
        return Err(UserError::Invalid(format!("{field}: at most {MAX_LABELS}")));
    }
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let v = v.trim();
        let ok = !v.is_empty()
            && v.len() <= MAX_LABEL_LEN
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c));
        if !ok {
            return Err(UserError::Invalid(format!(
                "{field}: '{}' must be 1 to {MAX_LABEL_LEN} characters among a-z, A-Z, 0-9, '.', '_', '-', ':', '/'",
                v.chars()
                    .take(MAX_LABEL_LEN)
                    .collect::<String>()
                    .escape_default()
            )));
        }
        if !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    Ok(out)
}
