//! Security events: sign-ins, failures, lockouts, second factors, token reuse.
//!
//! Each event is logged on the `rampart::security` target and, if a webhook is configured,
//! posted to it as JSON by a background task through a bounded queue: a slow or dead
//! webhook never delays a login; when the queue is full the event is still logged, the post
//! is dropped and counted. Events carry ids (user id, client id, session id), never names,
//! e-mail addresses, passwords or tokens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

/// Queue length between the request path and the webhook sender.
const WEBHOOK_QUEUE: usize = 1024;
/// Time limit of one webhook post.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A user signed in (password, and a second factor if any).
    LoginSucceeded,
    /// A password check failed (unknown user or wrong password: not distinguished).
    LoginFailed,
    /// Too many failures: the account or address is locked for a while.
    LockedOut,
    /// A second-factor code was wrong or replayed.
    MfaFailed,
    /// A user enrolled TOTP.
    MfaEnrolled,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// A refresh token was used twice: its family was revoked.
    RefreshTokenReuse,
    /// An authorization code was used twice: what it issued was revoked.
    CodeReuse,
    /// A user signed out.
    Logout,
}

/// One security event.
#[derive(Clone, Debug, Serialize)]
pub struct SecurityEvent {
    /// What happened.
    pub kind: EventKind,
    /// Unix seconds.
    pub time: i64,
    /// The user's id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The client, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The session, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// The sink of security events.
#[derive(Clone)]
pub struct SecurityEvents {
    webhook: Option<mpsc::Sender<SecurityEvent>>,
    dropped: Arc<AtomicU64>,
}

impl SecurityEvents {
    /// Logs only.
    pub fn log_only() -> Self {
        Self {
            webhook: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Logs and posts to `url`; must be called inside a tokio runtime.
    pub fn with_webhook(url: String) -> Self {
        let (tx, mut rx) = mpsc::channel::<SecurityEvent>(WEBHOOK_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build();
        tokio::spawn(async move {
            let Ok(client) = client else {
                tracing::error!("security webhook client could not be built");
                return;
            };
            while let Some(event) = rx.recv().await {
                match client.post(&url).json(&event).send().await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => tracing::warn!(
                        status = r.status().as_u16(),
                        "security webhook refused an event"
                    ),
                    Err(e) => tracing::warn!(error = %e, "security webhook unreachable"),
                }
            }
        });
        Self {
            webhook: Some(tx),
            dropped,
        }
    }

    /// Records an event.
    pub fn emit(&self, event: SecurityEvent) {
        tracing::info!(
            target: "rampart::security",
            kind = ?event.kind,
            user_id = event.user_id.as_deref().unwrap_or(""),
            client_id = event.client_id.as_deref().unwrap_or(""),
            session_id = event.session_id.as_deref().unwrap_or(""),
            "security event"
        );
        if let Some(tx) = &self.webhook
            && tx.try_send(event).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events not posted because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Shorthand for an event now.
pub fn event(
    kind: EventKind,
    user_id: Option<&str>,
    client_id: Option<&str>,
    session_id: Option<&str>,
) -> SecurityEvent {
    SecurityEvent {
        kind,
        time: crate::unix_now(),
        user_id: user_id.map(str::to_owned),
        client_id: client_id.map(str::to_owned),
        session_id: session_id.map(str::to_owned),
    }
}
