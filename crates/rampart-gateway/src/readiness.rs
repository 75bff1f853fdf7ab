//! Readiness (`/readyz` on the admin listener): the gateway is ready once it can serve every
//! route, that is when
//!
//! - the keys of every configured issuer have been fetched at least once (JWKS/PASERK, see
//!   `rampart_guard::Guard::issuers_without_keys`), and
//! - every route with a `health_check` has at least one upstream that passed its probes
//!   ([`crate::Gateway::unready_routes`]). Routes without a health check count as ready: passive
//!   ejection (after a failed connection) is not taken into account, so that one failed request
//!   never takes a replica out of its load balancer.
//!
//! Ready: `200 {"ready":true}`. Not ready: `503` with a short reason and the lists, e.g.
//! `{"ready":false,"reason":"no healthy upstream for route orders","issuers_without_keys":[],
//! "routes_without_healthy_upstream":["orders"]}`.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

/// What is still missing before the gateway is ready (both lists empty: ready).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Issuers whose keys were never fetched.
    pub issuers_without_keys: Vec<String>,
    /// Routes with a health check and no upstream up.
    pub routes_without_healthy_upstream: Vec<String>,
}

/// Computes the current [`Readiness`]; called for every `/readyz` request.
pub type ReadinessProbe = Arc<dyn Fn() -> Readiness + Send + Sync>;

impl Readiness {
    /// Whether nothing is missing.
    pub fn is_ready(&self) -> bool {
        self.issuers_without_keys.is_empty() && self.routes_without_healthy_upstream.is_empty()
    }

    /// One line saying what is missing (empty when ready).
    pub fn reason(&self) -> String {
        let mut parts = Vec::new();
        if !self.issuers_without_keys.is_empty() {
            parts.push(format!(
                "keys not fetched yet for issuer {}",
                self.issuers_without_keys.join(", ")
            ));
        }
        if !self.routes_without_healthy_upstream.is_empty() {
            parts.push(format!(
                "no healthy upstream for route {}",
                self.routes_without_healthy_upstream.join(", ")
            ));
        }
        parts.join("; ")
    }

    /// The `/readyz` response.
    pub fn response(&self) -> Response {
        let no_store = [(http::header::CACHE_CONTROL, "no-store")];
        if self.is_ready() {
            return (
                StatusCode::OK,
                no_store,
                axum::Json(serde_json::json!({"ready": true})),
            )
                .into_response();
        }
        (
            StatusCode::SERVICE_UNAVAILABLE,
            no_store,
            axum::Json(serde_json::json!({
                "ready": false,
                "reason": self.reason(),
                "issuers_without_keys": self.issuers_without_keys,
                "routes_without_healthy_upstream": self.routes_without_healthy_upstream,
            })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_what_is_missing() {
        let r = Readiness {
            issuers_without_keys: vec!["https://a".into()],
            routes_without_healthy_upstream: vec!["orders".into(), "items".into()],
        };
        assert!(!r.is_ready());
        assert_eq!(
            r.reason(),
            "keys not fetched yet for issuer https://a; no healthy upstream for route orders, items"
        );
        assert_eq!(r.response().status(), StatusCode::SERVICE_UNAVAILABLE);
        let ok = Readiness::default();
        assert!(ok.is_ready());
        assert_eq!(ok.response().status(), StatusCode::OK);
    }
}
