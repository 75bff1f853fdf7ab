//! The admin API for people (`/admin/v1/users/...`, `/admin/v1/sessions/...`): the same
//! operations as the `rampart user` commands.
//!
//! Same Bearer admin authentication and RFC 9457 problem details as [`super::admin`]. Views
//! never carry a password hash, a sealed blob or the e-mail blind index.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rampart_crypto::SecretString;
use rampart_store::SessionRecord;
use serde::{Deserialize, Serialize};

use super::admin::{parse_json, require_admin};
use crate::error::Problem;
use crate::users::{MfaStatus, NewUser, User, UserError};
use crate::{AuthServer, unix_now};

/// A user as shown to administrators: the opened profile and the record's public fields.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// Stable identifier (the OpenID Connect `sub`).
    pub user_id: String,
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Whether the e-mail address was verified.
    pub email_verified: bool,
    /// Full name.
    pub name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last changed, unix seconds.
    pub updated_at: i64,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            user_id: u.record.user_id.clone(),
            username: u.record.username.clone(),
            email: u.profile.email.clone(),
            email_verified: u.profile.email_verified,
            name: u.profile.name.clone(),
            phone: u.profile.phone.clone(),
            roles: u.record.roles.clone(),
            groups: u.record.groups.clone(),
            disabled: u.record.disabled,
            created_at: u.record.created_at,
            updated_at: u.record.updated_at,
        }
    }
}

/// One user with the state of their second factors and their number of sessions.
#[derive(Debug, Serialize)]
pub struct UserDetailView {
    /// The user.
    #[serde(flatten)]
    pub user: UserView,
    /// Second factors.
    pub mfa: MfaStatus,
    /// Browser sessions (unexpired ones).
    pub sessions: usize,
}

/// A browser session as shown to administrators: never its cookie or cookie hash.
#[derive(Debug, Serialize)]
pub struct SessionView {
    /// Public identifier (the `sid` claim).
    pub session_id: String,
    /// The signed-in user.
    pub user_id: String,
    /// Last active authentication, unix seconds.
    pub auth_time: i64,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// Authentication context class.
    pub acr: String,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last seen, unix seconds.
    pub last_seen_at: i64,
    /// Absolute expiry, unix seconds.
    pub expires_at: i64,
}

impl From<&SessionRecord> for SessionView {
    fn from(s: &SessionRecord) -> Self {
        Self {
            session_id: s.session_id.clone(),
            user_id: s.user_id.clone(),
            auth_time: s.auth_time,
            amr: s.amr.clone(),
            acr: s.acr.clone(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
        }
    }
}

/// The sessions of a user that have not expired, newest first.
pub async fn live_sessions(
    users: &crate::users::UserDirectory,
    who: &str,
    now: i64,
) -> Result<Vec<SessionRecord>, UserError> {
    let mut sessions = users.sessions(who).await?;
    sessions.retain(|s| s.expires_at > now);
    Ok(sessions)
}

/// The detailed view of one user.
pub async fn user_detail(
    users: &crate::users::UserDirectory,
    user: &User,
    now: i64,
) -> Result<UserDetailView, UserError> {
    let mfa = users.mfa_status(&user.record.user_id).await?;
    let sessions = live_sessions(users, &user.record.user_id, now).await?.len();
    Ok(UserDetailView {
        user: UserView::from(user),
        mfa,
        sessions,
    })
}

/// The body of `POST /admin/v1/users`. No `Debug`: it holds a password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Full name.
    pub name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The initial password.
    pub password: String,
}

/// The body of `POST /admin/v1/users/{user}/password`. No `Debug`: it holds a password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The new password.
    pub password: String,
}

/// An error of the admin API for people.
#[derive(Debug)]
pub struct AdminError(Response);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<Problem> for AdminError {
    fn from(p: Problem) -> Self {
        Self(p.into_response())
    }
}

impl From<UserError> for AdminError {
    fn from(e: UserError) -> Self {
        let problem = match e {
            UserError::Invalid(_) | UserError::WeakPassword(_) => {
                Problem::bad_request(e.to_string())
            }
            UserError::Conflict => Problem::conflict(e.to_string()),
            UserError::NotFound => Problem::not_found("no such user"),
            UserError::Busy => {
                let mut response = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                    Some("too many password hashes in progress, try again".into()),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Self(response);
            }
            UserError::Crypto | UserError::Store(_) => {
                tracing::error!(error = %e, "admin user operation failed");
                Problem::internal()
            }
        };
        Self(problem.into_response())
    }
}

type Reply = Result<Response, AdminError>;

/// `GET /admin/v1/users`: every user, oldest first.
pub async fn list_users(State(server): State<Arc<AuthServer>>, headers: HeaderMap) -> Reply {
    require_admin(&server, &headers)?;
    let users = server.people.users.list().await?;
    let views: Vec<UserView> = users.iter().map(UserView::from).collect();
    Ok(super::no_store_json(views))
}

/// `POST /admin/v1/users`: 201 with the new user.
pub async fn create_user(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    require_admin(&server, &headers)?;
    let request: CreateUserRequest = parse_json(&body)?;
    let new = NewUser {
        username: request.username,
        email: request.email,
        name: request.name,
        phone: request.phone,
        roles: request.roles,
        groups: request.groups,
        password: SecretString::from(request.password),
    };
    let user = server.people.users.create(new, unix_now()).await?;
    tracing::info!(user_id = %user.record.user_id, "user created");
    let mut response = super::no_store_json(UserView::from(&user));
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `GET /admin/v1/users/{user}` (id, username or e-mail): the user, their second factors
/// and number of sessions.
pub async fn get_user(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(who): Path<String>,
) -> Reply {
    require_admin(&server, &headers)?;
    let users = &server.people.users;
    let user = users.find(&who).await?;
    let view = user_detail(users, &user, unix_now()).await?;
    Ok(super::no_store_json(view))
}

/// `DELETE /admin/v1/users/{user}`: 204.
pub async fn delete_user(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(who): Path<String>,
) -> Reply {
    require_admin(&server, &headers)?;
    server.people.users.delete(&who).await?;
    tracing::info!("user deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_disabled(server: &AuthServer, who: &str, disabled: bool) -> Reply {
    let users = &server.people.users;
    users.set_disabled(who, disabled, unix_now()).await?;
    let user = users.find(who).await?;
    tracing::info!(user_id = %user.record.user_id, disabled, "user state changed");
    Ok(super::no_store_json(UserView::from(&user)))
}

/// `POST /admin/v1/users/{user}/disable`: the user; their sessions end and their refresh
/// tokens are revoked.
pub async fn disable_user(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(who): Path<String>,
) -> Reply {
    require_admin(&server, &headers)?;
    set_disabled(&server, &who, true).await
}

/// `POST /admin/v1/users/{user}/enable`: the user.
pub async fn enable_user(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(who): Path<String>,
) -> Reply {
    require_admin(&server, &headers)?;
    set_disabled(&server, &who, false).await
}

/// `POST /admin/v1/users/{user}/password` with `{"password": ...}`: 204; the user is signed
/// out everywhere.
pub async fn set_password(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(who): Path<String>,
    body: Bytes,
) -> Reply {
    require_admin(&server, &headers)?;
    let request: SetPasswordRequest = parse_json(&body)?;
    let password = SecretString::from(request.password);
    server
        .people
        .users
        .set_password(&who, &password, unix_now())
        .await?;
    tracing::info!("user password set by an administrator");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /admin/v1/users/{user}/reset-mfa`: 204; every second factor is removed.
pub async fn reset_mfa(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(who): Path<String>,
) -> Reply {
    require_admin(&server, &headers)?;
    server.people.users.reset_mfa(&who).await?;
    tracing::info!("user second factors reset by an administrator");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /admin/v1/users/{user}/sessions`: unexpired sessions, newest first.
pub async fn list_sessions(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(who): Path<String>,
) -> Reply {
    require_admin(&server, &headers)?;
    let sessions = live_sessions(&server.people.users, &who, unix_now()).await?;
    let views: Vec<SessionView> = sessions.iter().map(SessionView::from).collect();
    Ok(super::no_store_json(views))
}

/// `DELETE /admin/v1/sessions/{session_id}`: 204; the refresh tokens of the session are
/// revoked.
pub async fn revoke_session(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
) -> Reply {
    require_admin(&server, &headers)?;
    match server
        .people
        .users
        .revoke_session(&session_id, unix_now())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(UserError::NotFound) => Err(Problem::not_found("no such session").into()),
        Err(e) => Err(e.into()),
    }
}
