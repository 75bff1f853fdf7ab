//! Authorization by policy: when `[gateway.policy]` names a Cedar policy file, every request on
//! a non-public route must be permitted by it (after the route's scopes were checked), else
//! 403 `access_denied`. The rules, the schema and the fail-closed evaluation are
//! [`rampart_policy`]'s; this layer turns the request and its principal into the facts the
//! policies see, and records which policies decided (audit field `policy`).
//!
//! The file is read when the configuration is (re)loaded; an invalid file rejects the whole
//! configuration, so the previous one keeps serving.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, StatusCode};
use rampart_guard::Principal;
use rampart_policy::{AccessRequest, Caller, CallerKind, Policies, Reason, Verdict};
use serde::Deserialize;
use tower::{Layer, Service};

use crate::config::ConfigError;
use crate::context::{BoxBody, ClientIp};
use crate::error::{error_response, internal};
use crate::future::{InsertExtension, OrInner, Then};
use crate::log_limit::LogLimit;
use crate::route::{Route, request_host};

/// The `[gateway.policy]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The Cedar policy file (at most [`rampart_policy::MAX_POLICY_BYTES`]). Read again on
    /// every reload and whenever it changes.
    pub file: PathBuf,
}

/// Reads and validates the policy file of `config`.
pub fn load(config: &PolicyConfig) -> Result<Policies, ConfigError> {
    let error = |message: &dyn std::fmt::Display| {
        ConfigError::new(
            "gateway.policy.file",
            format!("{}: {message}", config.file.display()),
        )
    };
    let source = read_bounded(&config.file).map_err(|e| error(&e))?;
    Policies::parse(&source).map_err(|e| error(&e))
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut source = String::new();
    // One byte over the limit is enough for the parser to refuse the file as too large.
    let limit = u64::try_from(rampart_policy::MAX_POLICY_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit).read_to_string(&mut source)?;
    Ok(source)
}

/// Which policies decided a request (response extension, for the audit log): their ids,
/// comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyIds(pub Arc<str>);

impl PolicyIds {
    /// The ids that decided `verdict`; none when no policy applied.
    fn of(verdict: &Verdict) -> Option<PolicyIds> {
        (!verdict.policies.is_empty()).then(|| PolicyIds(Arc::from(verdict.policies.join(","))))
    }
}

/// The policy layer; passes every request through when no policy is configured.
#[derive(Debug, Clone, Default)]
pub struct PolicyLayer {
    policies: Option<Arc<Policies>>,
}

impl PolicyLayer {
    /// A layer enforcing `policies` (none: no policy check).
    pub fn new(policies: Option<Arc<Policies>>) -> Self {
        Self { policies }
    }
}

impl<S> Layer<S> for PolicyLayer {
    type Service = PolicyCheck<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PolicyCheck {
            inner,
            policies: self.policies.clone(),
        }
    }
}

/// See [`PolicyLayer`].
#[derive(Debug, Clone)]
pub struct PolicyCheck<S> {
    inner: S,
    policies: Option<Arc<Policies>>,
}

/// The facts of `req` for the policies.
fn access_request<'a>(
    principal: &'a Principal,
    route: &'a Route,
    method: &'a str,
    path: &'a str,
    host: &'a str,
    client_ip: IpAddr,
) -> AccessRequest<'a> {
    AccessRequest {
        caller: Caller {
            kind: CallerKind::of(&principal.subject, principal.client_id.as_deref()),
            id: &principal.subject,
            client_id: principal.client_id.as_deref().unwrap_or(""),
            roles: &principal.roles,
            groups: &principal.groups,
            scopes: &principal.scopes,
            issuer: &principal.issuer,
            auth: principal.method.as_str(),
        },
        method,
        route: &route.id,
        path,
        host,
        client_ip,
    }
}

fn denied(verdict: &Verdict) -> http::Response<BoxBody> {
    let mut resp = error_response(
        StatusCode::FORBIDDEN,
        "access_denied",
        "the request is not permitted by policy",
        verdict.reason.label(),
    );
    if let Some(ids) = PolicyIds::of(verdict) {
        resp.extensions_mut().insert(ids);
    }
    resp
}

/// Warnings about failing policies, shared by every pipeline.
static POLICY_ERROR_WARNINGS: LogLimit = LogLimit::new();
/// Time between two such warnings (every failure is counted in the metric).
const ERROR_WARNING_INTERVAL: Duration = Duration::from_secs(10);

fn warn_policy_errors(route: &str, errors: &[String]) {
    if POLICY_ERROR_WARNINGS.ready(ERROR_WARNING_INTERVAL) {
        tracing::warn!(
            route,
            errors = %errors.join("; "),
            "a policy failed to evaluate: the request was denied (fail closed); \
             further failures in the next 10 s are only counted"
        );
    }
}

impl<S, B> Service<Request<B>> for PolicyCheck<S>
where
    S: Service<Request<B>, Response = http::Response<BoxBody>, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<BoxBody>;
    type Error = std::convert::Infallible;
    type Future = OrInner<Then<S::Future, InsertExtension<PolicyIds>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(policies) = &self.policies else {
            return OrInner::inner(Then::new(self.inner.call(req), InsertExtension(None)));
        };
        let Some(route) = req.extensions().get::<Arc<Route>>() else {
            let resp = internal("no_route_context");
            return OrInner::answer(resp);
        };
        if route.public {
            return OrInner::inner(Then::new(self.inner.call(req), InsertExtension(None)));
        }
        let Some(principal) = req.extensions().get::<Arc<Principal>>() else {
            let resp = internal("no_principal");
            return OrInner::answer(resp);
        };
        let Some(&ClientIp(client_ip)) = req.extensions().get::<ClientIp>() else {
            let resp = internal("no_client_ip");
            return OrInner::answer(resp);
        };
        let host = request_host(&req).unwrap_or_default();
        let verdict = policies.authorize(&access_request(
            principal,
            route,
            req.method().as_str(),
            req.uri().path(),
            &host,
            client_ip,
        ));
        if !verdict.allowed() {
            metrics::counter!("rampart_gateway_auth_failures_total",
                "reason" => verdict.reason.label())
            .increment(1);
            if verdict.reason == Reason::Error {
                warn_policy_errors(&route.id, &verdict.errors);
            }
            let resp = denied(&verdict);
            return OrInner::answer(resp);
        }
        let ids = PolicyIds::of(&verdict);
        OrInner::inner(Then::new(self.inner.call(req), InsertExtension(ids)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use rampart_guard::AuthMethod;

    fn principal(subject: &str, client_id: Option<&str>, method: AuthMethod) -> Principal {
        Principal {
            roles: Vec::new(),
            groups: Vec::new(),
            subject: subject.into(),
            client_id: client_id.map(Into::into),
            scopes: vec!["a".into()],
            audiences: vec![],
            issuer: "https://iss".into(),
            expires_at: 0,
            token_id: None,
            method,
        }
    }

    #[test]
    fn users_are_those_acting_through_another_client() {
        let route: RouteConfig = toml::from_str(
            r#"id = "orders"
               match = { path_prefix = "/orders" }
               upstreams = ["http://127.0.0.1:1"]
               auth = ["jwt", "mtls"]
               audience = "api://orders""#,
        )
        .expect("route");
        let route = Route::from_config(&route);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let cases = [
            (
                principal("alice", Some("web"), AuthMethod::Jwt),
                CallerKind::User,
            ),
            (
                principal("svc", Some("svc"), AuthMethod::Jwt),
                CallerKind::Client,
            ),
            (
                principal("spiffe://a/b", None, AuthMethod::Mtls),
                CallerKind::Client,
            ),
        ];
        for (p, kind) in cases {
            let r = access_request(&p, &route, "GET", "/orders", "api.local", ip);
            assert_eq!(r.caller.kind, kind, "{p:?}");
            assert_eq!(r.caller.id, p.subject);
            assert_eq!(r.caller.auth, p.method.as_str());
            assert_eq!(r.route, "orders");
        }
    }
}
