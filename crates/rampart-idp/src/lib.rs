//! The Rampart authorization server: OAuth 2.0 token endpoint (client credentials with
//! `client_secret_basic`, `client_secret_post` and `private_key_jwt`), introspection
//! (RFC 7662), revocation (RFC 7009), metadata (RFC 8414, OpenID discovery), the JWKS and
//! PASERK sets, API keys verified through introspection, and the admin API.
//!
//! The binary builds an [`AuthServer`] over a store and serves [`AuthServer::router`]; the
//! CLI uses the same [`ClientRegistry`](clients::ClientRegistry),
//! [`KeyManager`](keys::KeyManager) and [`ApiKeyRegistry`](api_keys::ApiKeyRegistry) on the
//! same database.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The sign-in steps return the page to show as their error (`Result<_, Response>`); boxing
// it would only add an allocation on a path that renders a page anyway.
#![allow(clippy::result_large_err)]

pub mod api_keys;
pub mod browser;
pub mod client_auth;
pub mod clients;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod form;
pub mod grant;
pub mod keys;
pub mod people;
pub mod revocation;
pub mod token_cache;
pub mod users;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use rampart_crypto::{MasterKey, SecretString};
use rampart_store::{ClientAuthMethod, ClientTokenFormat, ReplayStore, Store, StoreError};
use tower_http::set_header::SetResponseHeaderLayer;

pub use api_keys::ApiKeyRegistry;
pub use clients::ClientRegistry;
pub use config::IdpConfig;
pub use keys::KeyManager;
pub use revocation::RevocationList;

use crate::clients::{NewClient, RegistryError};
use crate::config::{ADMIN_AUDIENCE, ADMIN_CLIENT_ID, ADMIN_SCOPE};
use crate::keys::KeyError;

/// Current time in unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Errors while starting the authorization server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The keyring could not be loaded.
    #[error("keyring: {0}")]
    Keys(#[from] KeyError),
    /// The bootstrap admin client could not be created.
    #[error("admin client: {0}")]
    Admin(#[from] RegistryError),
    /// The sign-in pages or the password hasher could not be set up.
    #[error("sign-in setup: {0}")]
    People(String),
}

/// Longest wait for the database in a readiness check.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything the endpoints share.
pub struct AuthServer {
    /// Settings.
    pub config: IdpConfig,
    /// Registered clients.
    pub clients: ClientRegistry,
    /// Signing keys.
    pub keys: KeyManager,
    /// Revoked tokens.
    pub revocations: RevocationList,
    /// API keys.
    pub api_keys: ApiKeyRegistry,
    /// One-time identifiers (client assertion `jti`s).
    pub replay: Arc<dyn ReplayStore>,
    /// The whole store, for readiness checks.
    store: Arc<dyn Store>,
    /// Tokens whose signature was already checked.
    pub verified_tokens: token_cache::TokenCache,
    /// Users, sessions and the sign-in flows.
    pub people: people::People,
}

impl AuthServer {
    /// Opens the server state over `store`: loads clients lazily, the keyring (creating
    /// missing keys) and the revocation list.
    pub async fn open(
        store: Arc<dyn Store>,
        master: &MasterKey,
        config: IdpConfig,
    ) -> Result<Self, StartError> {
        let now = unix_now();
        let clients = ClientRegistry::new(store.clone(), master.secret_hasher(), &config);
        clients.refresh_if_changed().await?;
        let keys = KeyManager::load(store.clone(), master.envelope(), &config, now).await?;
        let revocations = RevocationList::load(store.clone(), now).await?;
        let api_keys = ApiKeyRegistry::new(store.clone(), master.secret_hasher());
        api_keys.refresh_if_changed().await?;
        let people = open_people(store.clone(), master, &config)?;
        Ok(Self {
            config,
            clients,
            keys,
            revocations,
            api_keys,
            replay: store.clone(),
            store,
            verified_tokens: token_cache::TokenCache::default(),
            people,
        })
    }

    /// Whether the server can serve: the database answers within [`READY_TIMEOUT`] and the
    /// keyring has an active key per family. `Err` names what is missing.
    pub async fn ready(&self) -> Result<(), &'static str> {
        match tokio::time::timeout(READY_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let cause = std::error::Error::source(&e).map(ToString::to_string);
                tracing::warn!(error = %e, cause, backend = self.store.backend(), "readiness: database check failed");
                return Err("database");
            }
            Err(_) => {
                tracing::warn!(
                    backend = self.store.backend(),
                    "readiness: database did not answer"
                );
                return Err("database");
            }
        }
        let keys = self.keys.snapshot();
        if keys::KeyFamily::ALL
            .iter()
            .any(|family| keys.active(*family).is_none())
        {
            return Err("signing keys");
        }
        Ok(())
    }

    /// Registers the `rampart-admin` client on first start and returns its secret, which
    /// is shown once; `None` when it exists already.
    pub async fn ensure_admin_client(&self) -> Result<Option<SecretString>, RegistryError> {
        match self.clients.get(ADMIN_CLIENT_ID).await {
            Ok(_) => return Ok(None),
            Err(RegistryError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let created = self
            .clients
            .create(
                NewClient {
                    client_id: Some(ADMIN_CLIENT_ID.to_owned()),
                    name: "Rampart administrator".to_owned(),
                    scopes: vec![ADMIN_SCOPE.to_owned()],
                    audiences: vec![ADMIN_AUDIENCE.to_owned()],
                    token_format: ClientTokenFormat::Jwt,
                    auth_method: ClientAuthMethod::ClientSecretBasic,
                    jwks: None,
                    ttl_secs: Some(300),
                    flows: Default::default(),
                },
                unix_now(),
            )
            .await;
        match created {
            Ok(created) => Ok(created.secret),
            // Another process created it first.
            Err(RegistryError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The HTTP routes of the authorization server.
    pub fn router(self: Arc<Self>) -> Router {
        use endpoints::{
            account, admin, admin_users, authorize, consent, discovery, introspect, login, logout,
            revoke, token, userinfo, webauthn,
        };
        let body_limit = self.config.max_body_bytes;
        Router::new()
            .route("/token", post(token::token))
            .route("/introspect", post(introspect::introspect))
            .route("/revoke", post(revoke::revoke))
            .route(
                "/authorize",
                get(authorize::authorize_get).post(authorize::authorize_post),
            )
            .route("/par", post(authorize::par))
            .route("/login", get(login::login_page).post(login::login_submit))
            .route("/login/mfa", get(login::mfa_page).post(login::mfa_submit))
            .route(
                "/login/totp",
                get(login::totp_page).post(login::totp_submit),
            )
            .route("/login/continue", post(login::continue_submit))
            .route(
                "/consent",
                get(consent::consent_page).post(consent::consent_submit),
            )
            .route("/logout", get(logout::logout_get).post(logout::logout_post))
            .route("/account", get(account::account_page))
            .route("/account/sessions/revoke", post(account::revoke_session))
            .route(
                "/account/totp",
                get(account::totp_page).post(account::totp_submit),
            )
            .route("/account/done", post(account::done))
            .route(
                "/account/confirm",
                get(account::confirm_page).post(account::confirm_submit),
            )
            .route("/webauthn/register/start", post(webauthn::register_start))
            .route("/webauthn/register/finish", post(webauthn::register_finish))
            .route("/webauthn/login/start", post(webauthn::login_start))
            .route("/webauthn/login/finish", post(webauthn::login_finish))
            .route(
                "/userinfo",
                get(userinfo::userinfo).post(userinfo::userinfo),
            )
            .route(
                "/assets/rampart.css",
                get(|| async { people::page_static(rampart_pages::Pages::stylesheet()) }),
            )
            .route(
                "/assets/webauthn.js",
                get(|| async { people::page_static(rampart_pages::Pages::webauthn_script()) }),
            )
            .route("/jwks.json", get(discovery::jwks))
            .route("/paserk.json", get(discovery::paserk))
            .route(
                "/.well-known/oauth-authorization-server",
                get(discovery::oauth_metadata),
            )
            .route(
                "/.well-known/openid-configuration",
                get(discovery::openid_configuration),
            )
            .route(
                "/admin/v1/clients",
                get(admin::list_clients).post(admin::create_client),
            )
            .route(
                "/admin/v1/clients/{client_id}",
                get(admin::get_client).delete(admin::delete_client),
            )
            .route(
                "/admin/v1/clients/{client_id}/rotate-secret",
                post(admin::rotate_secret),
            )
            .route("/admin/v1/keys", get(admin::list_keys))
            .route(
                "/admin/v1/api-keys",
                get(admin::list_api_keys).post(admin::create_api_key),
            )
            .route(
                "/admin/v1/api-keys/{key_id}",
                axum::routing::delete(admin::delete_api_key),
            )
            .route(
                "/admin/v1/api-keys/{key_id}/revoke",
                post(admin::revoke_api_key),
            )
            .route("/admin/v1/keys/rotate", post(admin::rotate_keys))
            .route(
                "/admin/v1/users",
                get(admin_users::list_users).post(admin_users::create_user),
            )
            .route(
                "/admin/v1/users/{user}",
                get(admin_users::get_user).delete(admin_users::delete_user),
            )
            .route(
                "/admin/v1/users/{user}/disable",
                post(admin_users::disable_user),
            )
            .route(
                "/admin/v1/users/{user}/enable",
                post(admin_users::enable_user),
            )
            .route(
                "/admin/v1/users/{user}/password",
                post(admin_users::set_password),
            )
            .route(
                "/admin/v1/users/{user}/reset-mfa",
                post(admin_users::reset_mfa),
            )
            .route(
                "/admin/v1/users/{user}/sessions",
                get(admin_users::list_sessions),
            )
            .route(
                "/admin/v1/sessions/{session_id}",
                axum::routing::delete(admin_users::revoke_session),
            )
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(discovery::readyz))
            .layer(DefaultBodyLimit::max(body_limit))
            .layer(SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            // Pages set their own (same-origin); everything else sends no referrer.
            .layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static("referrer-policy"),
                HeaderValue::from_static("no-referrer"),
            ))
            .with_state(self)
    }

    /// Background upkeep, forever: picks up client, key and API key changes made by other
    /// processes, rotates keys on schedule, and purges expired revocations and replay ids.
    pub async fn maintenance_loop(self: Arc<Self>) {
        let poll = Duration::from_millis(self.config.change_poll_interval_ms.max(50));
        let mut ticks: u64 = 0;
        let slow_every = (60_000 / poll.as_millis().max(1) as u64).max(1);
        loop {
            tokio::time::sleep(poll).await;
            if let Err(e) = self.clients.refresh_if_changed().await {
                tracing::warn!(error = %e, "client change check failed");
            }
            if let Err(e) = self.keys.refresh_if_changed().await {
                tracing::warn!(error = %e, "key change check failed");
            }
            if let Err(e) = self.api_keys.refresh_if_changed().await {
                tracing::warn!(error = %e, "API key change check failed");
            }
            if let Err(e) = self.revocations.refresh_if_changed(unix_now()).await {
                tracing::warn!(error = %e, "revocation change check failed");
            }
            ticks += 1;
            if !ticks.is_multiple_of(slow_every) {
                continue;
            }
            let now = unix_now();
            match self.keys.maintain(now).await {
                Ok(rotations) => {
                    for r in rotations {
                        tracing::info!(family = r.family, activated = %r.activated, "scheduled key rotation");
                    }
                }
                Err(e) => tracing::error!(error = %e, "scheduled key maintenance failed"),
            }
            self.verified_tokens.purge(now);
            if let Err(e) = self.revocations.purge(now).await {
                tracing::warn!(error = %e, "revocation purge failed");
            }
            if let Err(e) = self.replay.purge_expired_replays(now).await {
                tracing::warn!(error = %e, "replay purge failed");
            }
            if let Err(e) = self.people.sessions.purge_expired_sessions(now).await {
                tracing::warn!(error = %e, "session purge failed");
            }
            if let Err(e) = self.people.flows.purge_expired_flows(now).await {
                tracing::warn!(error = %e, "authorization flow purge failed");
            }
        }
    }
}

/// Builds the state of the flows for people over `store`.
fn open_people(
    store: Arc<dyn Store>,
    master: &MasterKey,
    config: &IdpConfig,
) -> Result<people::People, StartError> {
    let p = &config.people;
    let throttle = match &p.shared_throttle {
        None => rampart_authn::SharedLoginThrottle::local(p.throttle.clone()),
        Some(shared) => rampart_authn::SharedLoginThrottle::with_redis(
            p.throttle.clone(),
            shared,
            master.keyed_hasher("rampart/login-throttle/v1"),
        )
        .map_err(|e| StartError::People(e.to_string()))?,
    };
    let users = users::UserDirectory::open_configured(store.clone(), master, p)
        .map_err(|e| StartError::People(format!("password hasher: {e}")))?;
    let pages = rampart_pages::Pages::new("Rampart")
        .map_err(|e| StartError::People(format!("pages: {e}")))?;
    let events = match &p.security_webhook {
        Some(url) => people::SecurityEvents::with_webhook(url.clone()),
        None => people::SecurityEvents::log_only(),
    };
    Ok(people::People {
        users,
        sessions: store.clone(),
        flows: store.clone(),
        mfa: store,
        pages,
        throttle,
        csrf: browser::Csrf::new(master.keyed_hasher("rampart/csrf/v1")),
        hasher: master.keyed_hasher("rampart/people-secrets/v1"),
        events,
        passkeys: people::passkeys::Passkeys::new(&config.issuer),
        session_idle_secs: p.session_idle_secs,
    })
}
