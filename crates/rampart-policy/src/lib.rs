//! Rampart policy: authorization rules in [Cedar](https://www.cedarpolicy.com), kept out of the
//! services and evaluated by the gateway after authentication.
//!
//! A policy file is a list of Cedar `permit`/`forbid` policies written against one fixed
//! schema, [`SCHEMA`]:
//!
//! - the **principal** is the verified caller: `Rampart::User::"<sub>"` for a person signed in
//!   through a client (the token's `client_id` differs from its `sub`), `Rampart::Client::"<id>"`
//!   for a service acting for itself (client credentials, an API key, a client certificate);
//!   both carry `scopes`, `issuer` and `auth` (how the caller was authenticated); a user is
//!   `in` each `Rampart::Role` and `Rampart::Group` its token names (`roles`, `groups`);
//! - the **action** is the HTTP method (`Rampart::Action::"GET"`, …), each in one of two groups,
//!   `Rampart::Action::"read"` (GET, HEAD, OPTIONS) and `Rampart::Action::"write"` (all others);
//! - the **resource** is the gateway route, `Rampart::Route::"<route id>"`;
//! - the **context** holds the request: `method`, `path` (normalized), `host` and `client_ip`.
//!
//! [`Policies::parse`] validates every policy against the schema in Cedar's strict mode, so a
//! misspelt attribute or entity type is an error when the file is loaded, not a silent deny (or
//! allow) at request time. [`Policies::authorize`] fails closed: access is allowed only when a
//! `permit` applies, no `forbid` does, **and no policy failed to evaluate** (Cedar itself skips a
//! policy whose evaluation errs, which would let a failing `forbid` fall away).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicyId, PolicySet, Request, ResourceConstraint, RestrictedExpression, Schema, ValidationMode,
    Validator,
};
use miette::Diagnostic;

/// The Cedar schema every policy is validated against (Cedar schema syntax).
pub const SCHEMA: &str = r#"namespace Rampart {
  // A role or group of people, from the token's roles and groups claims (RFC 9068).
  entity Role, Group;
  // A person, signed in through a client application (the token's client_id is not its sub).
  entity User in [Role, Group] = {
    "client_id": String,
    "scopes": Set<String>,
    "issuer": String,
    "auth": String,
  };
  // A service acting for itself: client credentials, an API key or a client certificate.
  entity Client = {
    "scopes": Set<String>,
    "issuer": String,
    "auth": String,
  };
  // A gateway route, by its id.
  entity Route;

  type Request = {
    "method": String,
    "path": String,
    "host": String,
    "client_ip": __cedar::ipaddr,
  };

  action read, write;
  action "GET", "HEAD", "OPTIONS" in [read]
    appliesTo { principal: [User, Client], resource: Route, context: Request };
  action "POST", "PUT", "PATCH", "DELETE", "OTHER" in [write]
    appliesTo { principal: [User, Client], resource: Route, context: Request };
}
"#;

/// Methods with an action of their own; any other method is `Rampart::Action::"OTHER"`.
const NAMED_METHODS: [&str; 7] = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"];

/// Longest policy id (`@id`), characters.
pub const MAX_ID_LEN: usize = 128;

/// Largest policy file accepted, bytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// Why a policy file was refused. The message names the policy and, where Cedar gives one,
/// the line and column.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The text is not Cedar.
    #[error("policy syntax: {0}")]
    Syntax(String),
    /// A policy does not fit the schema (unknown attribute, entity type or action, type error).
    #[error("policy does not match the Rampart schema: {0}")]
    Invalid(String),
    /// Templates (policies with `?principal`/`?resource` slots) are not used here.
    #[error("policy {0}: templates (?principal, ?resource) are not supported")]
    Template(String),
    /// Two policies have the same `@id`.
    #[error("two policies have the id {0:?}")]
    DuplicateId(String),
    /// An `@id` that is empty, longer than [`MAX_ID_LEN`] or has a comma or a control
    /// character (ids are listed comma-separated in audit lines).
    #[error("policy id {0:?}: 1 to 128 characters, no comma or control character")]
    BadId(String),
    /// The file is larger than [`MAX_POLICY_BYTES`].
    #[error("the policy file is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    /// The built-in schema did not load (a bug: tested).
    #[error("internal schema error: {0}")]
    Schema(String),
}

/// What kind of caller the principal is; decides its Cedar entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    /// `Rampart::User`: a person through a client application.
    User,
    /// `Rampart::Client`: a service acting for itself.
    Client,
}

impl CallerKind {
    /// Its Cedar entity type: `Rampart::User` or `Rampart::Client`.
    pub fn entity_type(self) -> &'static str {
        match self {
            CallerKind::User => "Rampart::User",
            CallerKind::Client => "Rampart::Client",
        }
    }

    /// A user when the token names a client application other than its subject; otherwise a
    /// client (client credentials, an API key, a client certificate).
    pub fn of(subject: &str, client_id: Option<&str>) -> Self {
        match client_id {
            Some(client) if client != subject => CallerKind::User,
            _ => CallerKind::Client,
        }
    }
}

/// The verified caller, as facts for the policies.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// User or client.
    pub kind: CallerKind,
    /// The entity id: `sub` for a user, the client's identity for a client.
    pub id: &'a str,
    /// The client application a user came through (ignored for a client).
    pub client_id: &'a str,
    /// A user's roles: the user is `in Rampart::Role::"<role>"` (ignored for a client).
    pub roles: &'a [String],
    /// A user's groups: the user is `in Rampart::Group::"<group>"` (ignored for a client).
    pub groups: &'a [String],
    /// Granted scopes.
    pub scopes: &'a [String],
    /// The token's issuer (empty for a client certificate).
    pub issuer: &'a str,
    /// How the caller was authenticated: `jwt`, `paseto`, `introspection`, `api_key`, `mtls`.
    pub auth: &'a str,
}

/// One request to decide.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// Who asks.
    pub caller: Caller<'a>,
    /// The HTTP method.
    pub method: &'a str,
    /// The matched route's id.
    pub route: &'a str,
    /// The normalized request path (no query).
    pub path: &'a str,
    /// The request's host, lower case, without port (empty when the request has none).
    pub host: &'a str,
    /// The client's address (after trusted proxies).
    pub client_ip: IpAddr,
}

/// Why a request was allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A `permit` applied and no `forbid`.
    Permitted,
    /// No `permit` applied (Cedar's default deny).
    NoPermit,
    /// A `forbid` applied.
    Forbidden,
    /// A policy failed to evaluate, or the request did not fit the schema: denied whatever the
    /// other policies said (fail closed).
    Error,
}

impl Reason {
    /// A short stable label (audit logs, metrics).
    pub fn label(self) -> &'static str {
        match self {
            Reason::Permitted => "policy_permit",
            Reason::NoPermit => "policy_no_permit",
            Reason::Forbidden => "policy_forbid",
            Reason::Error => "policy_error",
        }
    }
}

/// The decision on one request, with what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Why.
    pub reason: Reason,
    /// Ids of the policies that determined the decision (the permits for an allow, the
    /// forbids for a deny), sorted; empty for [`Reason::NoPermit`].
    pub policies: Vec<String>,
    /// Evaluation errors, one line each (policy id and Cedar's message).
    pub errors: Vec<String>,
}

impl Verdict {
    /// Whether the request may proceed.
    pub fn allowed(&self) -> bool {
        self.reason == Reason::Permitted
    }

    fn error(message: String) -> Self {
        Self {
            reason: Reason::Error,
            policies: Vec::new(),
            errors: vec![message],
        }
    }
}

/// A validated policy set, ready to decide requests. Cheap to share behind an `Arc`.
pub struct Policies {
    /// The policies for each route that some policy names in its resource scope.
    by_route: HashMap<String, PolicySet>,
    /// The policies for any other route (those naming no route).
    any_route: PolicySet,
    #[cfg(test)]
    schema: Schema,
    /// Parsed once: parsing a name runs Cedar's parser.
    names: Names,
    authorizer: Authorizer,
    ids: Vec<String>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

impl Policies {
    /// Parses `source` and validates every policy against [`SCHEMA`] (strict mode). A policy's
    /// id is its `@id("…")` annotation, else `policy<N>` by position.
    pub fn parse(source: &str) -> Result<Self, PolicyError> {
        if source.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        let schema = schema()?;
        let parsed =
            PolicySet::from_str(source).map_err(|e| PolicyError::Syntax(located(&e, source)))?;
        if let Some(t) = parsed.templates().next() {
            return Err(PolicyError::Template(t.id().to_string()));
        }
        let mut set = PolicySet::new();
        let mut ids = Vec::new();
        // Positional order, so that `policy<N>` names the N-th policy of the file.
        let mut policies: Vec<&Policy> = parsed.policies().collect();
        policies.sort_by_key(|p| positional_index(p.id()));
        for policy in policies {
            let id = policy
                .annotation("id")
                .map_or_else(|| policy.id().to_string(), str::to_owned);
            if id.is_empty()
                || id.chars().count() > MAX_ID_LEN
                || id.chars().any(|c| c == ',' || c.is_control())
            {
                return Err(PolicyError::BadId(id.chars().take(MAX_ID_LEN).collect()));
            }
            if ids.contains(&id) {
                return Err(PolicyError::DuplicateId(id));
            }
            set.add(policy.new_id(PolicyId::new(&id)))
                .map_err(|e| PolicyError::DuplicateId(e.to_string()))?;
            ids.push(id);
        }
        let validation = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        if !validation.validation_passed() {
            let messages: Vec<String> = validation
                .validation_errors()
                .map(|e| located(e, source))
                .collect();
            return Err(PolicyError::Invalid(messages.join("; ")));
        }
        let names = Names::new(&schema)?;
        let (by_route, any_route) = slice_by_route(&set, &names.route)?;
        Ok(Self {
            by_route,
            any_route,
            #[cfg(test)]
            schema,
            names,
            authorizer: Authorizer::new(),
            ids,
        })
    }

    /// The ids of the policies, in file order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Decides `request`. Allowed only when a `permit` applies, no `forbid` applies and no
    /// policy failed to evaluate.
    pub fn authorize(&self, request: &AccessRequest<'_>) -> Verdict {
        match self.try_authorize(request) {
            Ok(v) => v,
            Err(message) => Verdict::error(message),
        }
    }

    fn try_authorize(&self, request: &AccessRequest<'_>) -> Result<Verdict, String> {
        let (cedar_request, entities) = self.facts(request, None)?;
        let set = self.by_route.get(request.route).unwrap_or(&self.any_route);
        let response = self
            .authorizer
            .is_authorized(&cedar_request, set, &entities);
        let diagnostics = response.diagnostics();
        let mut policies: Vec<String> = diagnostics.reason().map(ToString::to_string).collect();
        policies.sort();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        let reason = if !errors.is_empty() {
            Reason::Error
        } else {
            match response.decision() {
                Decision::Allow => Reason::Permitted,
                Decision::Deny if policies.is_empty() => Reason::NoPermit,
                Decision::Deny => Reason::Forbidden,
            }
        };
        Ok(Verdict {
            reason,
            policies,
            errors,
        })
    }

    /// The Cedar request and entities for `request`. They fit [`SCHEMA`] by construction
    /// (checked in the tests by passing `schema`); requests skip the check.
    fn facts(
        &self,
        request: &AccessRequest<'_>,
        schema: Option<&Schema>,
    ) -> Result<(Request, Entities), String> {
        let caller = &request.caller;
        let scopes = RestrictedExpression::new_set(
            caller
                .scopes
                .iter()
                .map(|s| RestrictedExpression::new_string(s.clone())),
        );
        let mut attrs = HashMap::from([
            ("scopes".to_owned(), scopes),
            (
                "issuer".to_owned(),
                RestrictedExpression::new_string(caller.issuer.to_owned()),
            ),
            (
                "auth".to_owned(),
                RestrictedExpression::new_string(caller.auth.to_owned()),
            ),
        ]);
        let mut parents = HashSet::new();
        let type_name = match caller.kind {
            CallerKind::User => {
                attrs.insert(
                    "client_id".to_owned(),
                    RestrictedExpression::new_string(caller.client_id.to_owned()),
                );
                parents.extend(caller.roles.iter().map(|r| uid(&self.names.role, r)));
                parents.extend(caller.groups.iter().map(|g| uid(&self.names.group, g)));
                &self.names.user
            }
            CallerKind::Client => &self.names.client,
        };
        let principal_uid = uid(type_name, caller.id);
        let principal =
            Entity::new(principal_uid.clone(), attrs, parents).map_err(|e| e.to_string())?;
        let resource_uid = uid(&self.names.route, request.route);
        let resource = Entity::new_no_attrs(resource_uid.clone(), HashSet::new());
        let action = self
            .names
            .actions
            .iter()
            .find(|(name, _)| *name == request.method)
            .map_or(&self.names.other, |(_, action)| action);
        let entities = action
            .entities
            .clone()
            .add_entities([principal, resource], schema)
            .map_err(|e| e.to_string())?;
        let context = [
            (
                "method".to_owned(),
                RestrictedExpression::new_string(request.method.to_owned()),
            ),
            (
                "path".to_owned(),
                RestrictedExpression::new_string(request.path.to_owned()),
            ),
            (
                "host".to_owned(),
                RestrictedExpression::new_string(request.host.to_owned()),
            ),
            ("client_ip".to_owned(), ip_value(request.client_ip)),
        ];
        let context = Context::from_pairs(context).map_err(|e| e.to_string())?;
        let cedar_request = Request::new(
            principal_uid,
            action.uid.clone(),
            resource_uid,
            context,
            schema,
        )
        .map_err(|e| e.to_string())?;
        Ok((cedar_request, entities))
    }
}

/// Most addresses kept by [`ip_value`]'s cache, per thread.
const IP_CACHE_SIZE: usize = 4096;

thread_local! {
    static IP_VALUES: std::cell::RefCell<HashMap<IpAddr, RestrictedExpression>> =
        std::cell::RefCell::new(HashMap::new());
}

/// The Cedar value of `ip`. Building one runs Cedar's parser on the function name `ip` (half
/// of a decision's cost), so values are kept per thread for the addresses seen last; the
/// cache is emptied when full, so it never holds more than [`IP_CACHE_SIZE`] per thread.
fn ip_value(ip: IpAddr) -> RestrictedExpression {
    IP_VALUES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(value) = cache.get(&ip) {
            return value.clone();
        }
        if cache.len() >= IP_CACHE_SIZE {
            cache.clear();
        }
        let value = RestrictedExpression::new_ip(ip.to_string());
        cache.insert(ip, value.clone());
        value
    })
}

/// Splits `set` by route: a policy whose resource scope names one route (`resource ==
/// Rampart::Route::"x"`, or `in`) can only apply to requests for that route, so each route
/// gets the policies that name it plus those that name none; routes no policy names get the
/// latter alone. The decision is the same as with the whole set (a policy whose scope does not
/// match is never evaluated), at the cost of the route's policies only.
fn slice_by_route(
    set: &PolicySet,
    route_type: &EntityTypeName,
) -> Result<(HashMap<String, PolicySet>, PolicySet), PolicyError> {
    let route_of = |policy: &Policy| match policy.resource_constraint() {
        ResourceConstraint::Eq(uid)
        | ResourceConstraint::In(uid)
        | ResourceConstraint::IsIn(_, uid)
            if uid.type_name() == route_type =>
        {
            Some(uid.id().unescaped().to_owned())
        }
        _ => None,
    };
    let add = |set: &mut PolicySet, policy: &Policy| {
        set.add(policy.clone())
            .map_err(|e| PolicyError::DuplicateId(e.to_string()))
    };
    let mut any_route = PolicySet::new();
    for policy in set.policies().filter(|p| route_of(p).is_none()) {
        add(&mut any_route, policy)?;
    }
    let mut by_route: HashMap<String, PolicySet> = HashMap::new();
    for policy in set.policies() {
        if let Some(route) = route_of(policy) {
            let route_set = match by_route.entry(route) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(any_route.clone()),
            };
            add(route_set, policy)?;
        }
    }
    Ok((by_route, any_route))
}

fn schema() -> Result<Schema, PolicyError> {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| PolicyError::Schema(e.to_string()))
}

/// Entity type names and actions, built once.
struct Names {
    user: EntityTypeName,
    client: EntityTypeName,
    role: EntityTypeName,
    group: EntityTypeName,
    route: EntityTypeName,
    actions: Vec<(&'static str, Action)>,
    other: Action,
}

/// An action and the entity store a request for it starts from: the action and its groups
/// (a store of all actions made every request pay for the others in Cedar's hierarchy
/// computation).
struct Action {
    uid: EntityUid,
    entities: Entities,
}

impl Names {
    fn new(schema: &Schema) -> Result<Self, PolicyError> {
        let schema_error = |e: &dyn std::fmt::Display| PolicyError::Schema(e.to_string());
        let name = |n: &str| EntityTypeName::from_str(n).map_err(|e| schema_error(&e));
        let all = schema.action_entities().map_err(|e| schema_error(&e))?;
        let action_type = name("Rampart::Action")?;
        let action = |id: &str| -> Result<Action, PolicyError> {
            let uid = uid(&action_type, id);
            let own = all
                .get(&uid)
                .ok_or_else(|| PolicyError::Schema(format!("no action {id}")))?;
            let groups = all
                .ancestors(&uid)
                .into_iter()
                .flatten()
                .filter_map(|a| all.get(a));
            let entities =
                Entities::from_entities(std::iter::once(own).chain(groups).cloned(), None)
                    .map_err(|e| schema_error(&e))?;
            Ok(Action { uid, entities })
        };
        Ok(Self {
            user: name(CallerKind::User.entity_type())?,
            client: name(CallerKind::Client.entity_type())?,
            role: name("Rampart::Role")?,
            group: name("Rampart::Group")?,
            route: name("Rampart::Route")?,
            actions: NAMED_METHODS
                .iter()
                .map(|m| Ok((*m, action(m)?)))
                .collect::<Result<_, PolicyError>>()?,
            other: action("OTHER")?,
        })
    }
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

/// `policy<N>` → N (Cedar's default ids); others sort last.
fn positional_index(id: &PolicyId) -> usize {
    id.to_string()
        .strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// The error's message with the line and column of its first label in `source`.
fn located(error: &(impl Diagnostic + std::fmt::Display), source: &str) -> String {
    let mut message = error.to_string();
    if let Some(help) = error.help() {
        message.push_str(&format!(" ({help})"));
    }
    let offset = error
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    match offset {
        Some(offset) if offset <= source.len() => {
            let before = &source[..source.floor_char_boundary(offset)];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests;
