//! Route matching: host (case-insensitive, port stripped), path prefix on a segment boundary,
//! method list. The longest prefix wins; a route with a host beats one without at equal length.
//! No route → 404; a route that matches but not for this method → 405 with `Allow`.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Method, Request, StatusCode, header};
use rampart_guard::Accepted;
use tower::{Layer, Service};

use crate::config::{RateLimitConfig, RouteConfig};
use crate::context::{BoxBody, RouteId};
use crate::error::error_response;
use crate::future::{InsertExtension, OrInner, Then};

/// A compiled route (request extension after matching).
#[derive(Debug, Clone)]
pub struct Route {
    /// The route id.
    pub id: Arc<str>,
    /// Lower-case host, if the route is host-specific.
    pub host: Option<String>,
    /// Path prefix without a trailing slash (`/` for the root).
    pub prefix: String,
    /// Allowed methods (`None` = all).
    pub methods: Option<Vec<Method>>,
    /// No authentication.
    pub public: bool,
    /// Audience for the authenticator.
    pub audience: String,
    /// Bearer token kinds accepted (all false for a route listing only `api_key`/`mtls`).
    pub accepted: Accepted,
    /// API keys (in the `api_key_header` header, checked by introspection) are accepted.
    pub api_key: bool,
    /// A verified TLS client certificate identity is accepted.
    pub mtls: bool,
    /// Scopes required.
    pub require_scopes: Vec<String>,
    /// Rate limit, if any.
    pub rate_limit: Option<RateLimitConfig>,
    /// Forward `Authorization` upstream.
    pub forward_token: bool,
}

impl Route {
    /// Compiles a validated route config.
    pub fn from_config(c: &RouteConfig) -> Self {
        let prefix = c.matcher.path_prefix.trim_end_matches('/');
        let has = |k: &str| c.auth.iter().any(|a| a == k);
        Self {
            id: Arc::from(c.id.as_str()),
            host: c.matcher.host.as_ref().map(|h| h.to_ascii_lowercase()),
            prefix: if prefix.is_empty() {
                "/".into()
            } else {
                prefix.into()
            },
            methods: c.matcher.methods.as_ref().map(|ms| {
                ms.iter()
                    .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                    .collect()
            }),
            public: c.is_public(),
            audience: c.audience.clone().unwrap_or_default(),
            accepted: Accepted {
                jwt: has("jwt"),
                paseto: has("paseto"),
                introspection: has("introspection"),
                api_key: false,
            },
            api_key: has("api_key"),
            mtls: has("mtls"),
            require_scopes: c.require_scopes.clone(),
            rate_limit: c.rate_limit.clone(),
            forward_token: c.forward_token,
        }
    }

    fn matches_path(&self, path: &str) -> bool {
        self.prefix == "/"
            || path == self.prefix
            || (path.starts_with(&self.prefix)
                && path.as_bytes().get(self.prefix.len()) == Some(&b'/'))
    }

    fn allows(&self, m: &Method) -> bool {
        self.methods.as_ref().is_none_or(|ms| ms.contains(m))
    }
}

/// The result of matching.
#[derive(Debug)]
pub enum RouteMatch {
    /// A route takes the request.
    Found(Arc<Route>),
    /// Routes match the path but not the method; the allowed methods.
    MethodNotAllowed(Vec<Method>),
    /// Nothing matches.
    NotFound,
}

/// All routes.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Arc<Vec<Arc<Route>>>,
}

/// The request's host: URI authority or `Host`, port stripped, lower case.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    let normal = |host: &str| host.trim_end_matches('.').to_ascii_lowercase();
    match req.uri().authority() {
        Some(a) => Some(normal(a.host())),
        None => {
            let mut hosts = req.headers().get_all(header::HOST).iter();
            let h = hosts.next()?;
            if hosts.next().is_some() {
                return None;
            }
            let h = h.to_str().ok()?;
            let a: http::uri::Authority = h.parse().ok()?;
            Some(normal(a.host()))
        }
    }
}

impl RouteTable {
    /// From compiled routes.
    pub fn new(routes: Vec<Route>) -> Self {
        Self {
            routes: Arc::new(routes.into_iter().map(Arc::new).collect()),
        }
    }

    /// Finds the route for `host`, `path` and `method`.
    pub fn find(&self, host: Option<&str>, path: &str, method: &Method) -> RouteMatch {
        // Two passes over the routes instead of collecting the candidates: no allocation on
        // the way to a match.
        let candidates = || {
            self.routes
                .iter()
                .filter(move |r| r.host.as_deref().is_none_or(|h| Some(h) == host))
                .filter(move |r| r.matches_path(path))
        };
        let rank = |r: &Route| (r.prefix.len(), r.host.is_some());
        let Some(best) = candidates().map(|r| rank(r)).max() else {
            return RouteMatch::NotFound;
        };
        let top = || candidates().filter(move |r| rank(r) == best);
        if let Some(r) = top().find(|r| r.allows(method)) {
            return RouteMatch::Found(Arc::clone(r));
        }
        let mut allowed: Vec<Method> = top()
            .flat_map(|r| r.methods.clone().unwrap_or_default())
            .collect();
        allowed.dedup();
        RouteMatch::MethodNotAllowed(allowed)
    }
}

/// Matches the route and inserts `Arc<Route>` into the request's extensions.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    table: RouteTable,
}

impl RouteLayer {
    /// A layer over `table`.
    pub fn new(table: RouteTable) -> Self {
        Self { table }
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = RouteService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RouteService {
            inner,
            table: self.table.clone(),
        }
    }
}

/// See [`RouteLayer`].
#[derive(Debug, Clone)]
pub struct RouteService<S> {
    inner: S,
    table: RouteTable,
}

impl<S, B> Service<Request<B>> for RouteService<S>
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
    type Future = OrInner<Then<S::Future, InsertExtension<RouteId>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let host = request_host(&req);
        match self
            .table
            .find(host.as_deref(), req.uri().path(), req.method())
        {
            RouteMatch::Found(route) => {
                let id = RouteId(Arc::clone(&route.id));
                req.extensions_mut().insert(route);
                OrInner::inner(Then::new(self.inner.call(req), InsertExtension(Some(id))))
            }
            RouteMatch::MethodNotAllowed(allowed) => {
                let mut resp = error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "the method is not allowed for this resource",
                    "method_not_allowed",
                );
                let list = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(v) = HeaderValue::from_str(&list) {
                    resp.headers_mut().insert(header::ALLOW, v);
                }
                OrInner::answer(resp)
            }
            RouteMatch::NotFound => {
                let resp = error_response(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no route matches the request",
                    "no_route",
                );
                OrInner::answer(resp)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteMatch as M;

    fn rc(id: &str, host: Option<&str>, prefix: &str, methods: Option<&[&str]>) -> Route {
        Route::from_config(&RouteConfig {
            id: id.into(),
            matcher: M {
                host: host.map(Into::into),
                path_prefix: prefix.into(),
                methods: methods.map(|m| m.iter().map(|s| s.to_string()).collect()),
            },
            upstreams: vec!["http://127.0.0.1:1".into()],
            auth: vec!["public".into()],
            audience: None,
            require_scopes: vec![],
            rate_limit: None,
            forward_token: false,
            health_check: None,
        })
    }

    fn id(m: RouteMatch) -> String {
        match m {
            RouteMatch::Found(r) => r.id.to_string(),
            RouteMatch::MethodNotAllowed(_) => "405".into(),
            RouteMatch::NotFound => "404".into(),
        }
    }

    #[test]
    fn segment_boundary_and_longest_prefix() {
        let t = RouteTable::new(vec![
            rc("orders", None, "/orders", Some(&["GET", "POST"])),
            rc("items", None, "/orders/items/", None),
            rc("hosted", Some("API.local"), "/orders", None),
        ]);
        let get = Method::GET;
        assert_eq!(id(t.find(None, "/orders", &get)), "orders");
        assert_eq!(id(t.find(None, "/orders/1", &get)), "orders");
        assert_eq!(id(t.find(None, "/ordersx", &get)), "404");
        assert_eq!(id(t.find(None, "/orders/items/3", &get)), "items");
        assert_eq!(id(t.find(None, "/orders", &Method::DELETE)), "405");
        assert_eq!(
            id(t.find(Some("api.local"), "/orders", &Method::DELETE)),
            "hosted"
        );
    }

    #[test]
    fn host_from_header_strips_port() {
        let req = Request::builder()
            .uri("/x")
            .header("host", "API.Local:9443")
            .body(())
            .expect("req");
        assert_eq!(request_host(&req).as_deref(), Some("api.local"));
    }
}
