//! A mock identity provider on 127.0.0.1:0 (axum) serving `/jwks.json`, `/paserk.json` and
//! `/introspect`, counting requests, plus helpers to mint tokens.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rampart_guard::{Guard, GuardConfig, IssuerConfig};
use rampart_token::{AccessClaims, JwtAlg, KeyKind, SigningKey};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const AUDIENCE: &str = "https://api.example";
pub const CLIENT_ID: &str = "gateway";
pub const CLIENT_SECRET: &str = "s3cr3t-gateway";

#[derive(Default)]
pub struct MockState {
    pub jwks_hits: AtomicUsize,
    pub paserk_hits: AtomicUsize,
    pub introspect_hits: AtomicUsize,
    /// Published (public halves of) signing keys.
    pub keys: Mutex<Vec<SigningKey>>,
    /// Introspection answers by token; unknown tokens are inactive.
    pub answers: Mutex<HashMap<String, Value>>,
    /// Delay before answering key documents (to make concurrent requests overlap).
    pub key_delay: Mutex<Duration>,
}

pub struct MockIdp {
    pub base: String,
    pub state: Arc<MockState>,
}

impl MockIdp {
    pub async fn start() -> MockIdp {
        let state = Arc::new(MockState::default());
        let app = Router::new()
            .route("/jwks.json", get(jwks))
            .route("/paserk.json", get(paserk))
            .route("/introspect", post(introspect))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockIdp {
            base: format!("http://{addr}"),
            state,
        }
    }

    pub fn publish(&self, key: &SigningKey) {
        self.state.keys.lock().unwrap().push(key.clone());
    }

    pub fn answer(&self, token: &str, response: Value) {
        self.state
            .answers
            .lock()
            .unwrap()
            .insert(token.to_owned(), response);
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn paserk_hits(&self) -> usize {
        self.state.paserk_hits.load(Ordering::SeqCst)
    }

    pub fn introspect_hits(&self) -> usize {
        self.state.introspect_hits.load(Ordering::SeqCst)
    }

    /// Issuer config with introspection and the right credentials.
    pub fn issuer_config(&self) -> IssuerConfig {
        let mut c = IssuerConfig::new(self.base.clone());
        c.introspection_uri = Some(format!("{}/introspect", self.base));
        c.client_id = Some(CLIENT_ID.to_owned());
        c.client_secret = Some(SecretString::from(CLIENT_SECRET));
        c
    }

    pub fn config(&self) -> GuardConfig {
        GuardConfig::new(vec![self.issuer_config()])
    }

    pub fn guard(&self) -> Guard {
        Guard::new(self.config()).unwrap()
    }
}

async fn key_delay(state: &MockState) {
    let d = *state.key_delay.lock().unwrap();
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

async fn jwks(State(state): State<Arc<MockState>>) -> Json<Value> {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    key_delay(&state).await;
    let keys = state.keys.lock().unwrap().clone();
    Json(rampart_token::jwks_document(&keys))
}

async fn paserk(State(state): State<Arc<MockState>>) -> Json<Value> {
    state.paserk_hits.fetch_add(1, Ordering::SeqCst);
    key_delay(&state).await;
    let keys = state.keys.lock().unwrap().clone();
    Json(rampart_token::paserk_document(&keys))
}

async fn introspect(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    state.introspect_hits.fetch_add(1, Ordering::SeqCst);
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error":"invalid_client"})),
        )
            .into_response();
    }
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let Some(token) = token else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error":"invalid_request"})),
        )
            .into_response();
    };
    let answer = state
        .answers
        .lock()
        .unwrap()
        .get(&token)
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    Json(answer).into_response()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn jwt_key() -> SigningKey {
    SigningKey::generate(KeyKind::Jwt(JwtAlg::EdDSA)).unwrap()
}

pub fn paseto_key() -> SigningKey {
    SigningKey::generate(KeyKind::PasetoV4Public).unwrap()
}

pub fn claims(iss: &str, aud: &str, lifetime_secs: i64) -> AccessClaims {
    let now = now();
    AccessClaims {
        roles: Vec::new(),
        groups: Vec::new(),
        iss: iss.to_owned(),
        sub: "alice".to_owned(),
        aud: vec![aud.to_owned()],
        exp: now + lifetime_secs,
        iat: now,
        nbf: now,
        jti: "jti-1".to_owned(),
        client_id: "web-app".to_owned(),
        scope: Some("read write".to_owned()),
    }
}

pub fn token(key: &SigningKey, claims: &AccessClaims) -> String {
    rampart_token::issue(key, claims).unwrap()
}
