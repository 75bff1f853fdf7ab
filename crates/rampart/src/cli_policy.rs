//! `rampart policy`: check a Cedar policy file against the gateway's schema, print the schema,
//! and explain the decision on one request without running the gateway (as `opa eval` does).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use rampart_gateway::policy::{PolicyConfig, load};
use rampart_policy::{AccessRequest, Caller, CallerKind, Policies, SCHEMA};

use crate::settings::Settings;

/// Exit status of `policy explain` when the request is denied (0: allowed, 1: error).
pub const EXIT_DENIED: u8 = 2;

/// `rampart policy …`.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file against the schema; prints the policy ids.
    Check {
        #[command(flatten)]
        source: PolicySource,
    },
    /// Print the Cedar schema policies are written against.
    Schema,
    /// Decide one request as the gateway would, and say which policies decided. Exit status:
    /// 0 allowed, 2 denied, 1 error.
    Explain(Box<ExplainArgs>),
}

/// The request `policy explain` decides.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    source: PolicySource,
    /// The route id (the resource `Rampart::Route::"<id>"`).
    #[arg(long)]
    route: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Request host (lower case, no port).
    #[arg(long, default_value = "")]
    host: String,
    /// Client address.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// An access token (JWT or PASETO v4.public) whose claims give the caller: `sub`,
    /// `client_id`, `scope`, `roles`, `groups`, `iss`. Read WITHOUT verifying the signature
    /// (an offline explanation, not an authentication); flags given as well override it.
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// The caller's `sub` (generated ids may start with `-`); required without `--token`.
    #[arg(long, allow_hyphen_values = true, required_unless_present = "token")]
    pub(crate) subject: Option<String>,
    /// The caller's `client_id`; one other than the subject makes the caller a
    /// `Rampart::User`.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) client_id: Option<String>,
    /// A granted scope (repeat for more).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A role of the user (repeat for more): the user is `in Rampart::Role::"<role>"`.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// A group of the user (repeat for more): the user is `in Rampart::Group::"<group>"`.
    #[arg(long = "group")]
    groups: Vec<String>,
    /// The token's issuer.
    #[arg(long)]
    issuer: Option<String>,
    /// How the caller authenticated: jwt, paseto, introspection, api_key or mtls (default:
    /// the kind of `--token`, else jwt).
    #[arg(long)]
    auth: Option<String>,
    /// Print the decision as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where the policies come from: `--file`, else `[gateway.policy] file` of the configuration.
#[derive(clap::Args, Debug)]
pub struct PolicySource {
    /// The Cedar policy file.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Configuration file (TOML) whose `[gateway.policy] file` to use.
    #[arg(long, value_name = "FILE", env = "RAMPART_CONFIG")]
    config: Option<PathBuf>,
}

impl PolicySource {
    fn load(&self) -> Result<(PathBuf, Policies), String> {
        let file = match &self.file {
            Some(file) => file.clone(),
            None => configured_file(self.config.as_deref())?,
        };
        let policies = load(&PolicyConfig { file: file.clone() }).map_err(|e| e.to_string())?;
        Ok((file, policies))
    }
}

fn configured_file(config: Option<&Path>) -> Result<PathBuf, String> {
    let settings = Settings::load(config).map_err(|e| e.to_string())?;
    settings
        .gateway
        .and_then(|g| g.policy)
        .map(|p| p.file)
        .ok_or_else(|| "no policy file: pass --file, or --config with [gateway.policy] file".into())
}

/// The claims `policy explain --token` reads from a token, unverified.
#[derive(Debug, Default, serde::Deserialize)]
struct TokenClaims {
    sub: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    iss: Option<String>,
    /// `jwt` or `paseto` (not a claim).
    #[serde(skip)]
    kind: &'static str,
}

impl TokenClaims {
    /// The payload of a JWT or a PASETO v4.public token, WITHOUT signature verification.
    fn read(token: &str) -> Result<TokenClaims, String> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = token.trim();
        let (payload, kind) = if let Some(rest) = token.strip_prefix("v4.public.") {
            let body = rest.split('.').next().unwrap_or_default();
            let bytes = URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| "--token: not a PASETO v4.public token")?;
            // The message, then a 64-byte Ed25519 signature.
            let message = bytes
                .len()
                .checked_sub(64)
                .map(|n| bytes[..n].to_vec())
                .ok_or("--token: PASETO token too short")?;
            (message, "paseto")
        } else if token.starts_with("v4.local.") {
            return Err("--token: a v4.local token is encrypted; pass the claims as flags".into());
        } else {
            let mut parts = token.split('.');
            let (Some(_header), Some(body), Some(_signature), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err("--token: not a JWT (three dot-separated parts) nor PASETO".into());
            };
            let bytes = URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| "--token: the JWT payload is not base64url")?;
            (bytes, "jwt")
        };
        let mut claims: TokenClaims = serde_json::from_slice(&payload)
            .map_err(|e| format!("--token: the claims are not the expected JSON: {e}"))?;
        claims.kind = kind;
        Ok(claims)
    }
}

/// Runs a `policy` command.
pub fn policy(command: PolicyCommand) -> Result<ExitCode, String> {
    match command {
        PolicyCommand::Schema => {
            print!("{SCHEMA}");
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check { source } => {
            let (file, policies) = source.load()?;
            println!(
                "{}: {} valid {}: {}",
                file.display(),
                policies.ids().len(),
                if policies.ids().len() == 1 {
                    "policy"
                } else {
                    "policies"
                },
                policies.ids().join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Explain(args) => {
            let ExplainArgs {
                source,
                route,
                method,
                path,
                host,
                ip,
                token,
                subject,
                client_id,
                scopes,
                roles,
                groups,
                issuer,
                auth,
                json,
            } = *args;
            let (_, policies) = source.load()?;
            let claims = match &token {
                Some(token) => TokenClaims::read(token)?,
                None => TokenClaims::default(),
            };
            let subject = subject.or(claims.sub).unwrap_or_default();
            let client_id = client_id.or(claims.client_id);
            let or_claims = |given: Vec<String>, from_token: Vec<String>| {
                if given.is_empty() { from_token } else { given }
            };
            let scopes = or_claims(
                scopes,
                claims
                    .scope
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            );
            let roles = or_claims(roles, claims.roles);
            let groups = or_claims(groups, claims.groups);
            let issuer = issuer.or(claims.iss).unwrap_or_default();
            let auth = auth.unwrap_or_else(|| claims.kind.to_owned());
            let method = method.to_ascii_uppercase();
            let kind = CallerKind::of(&subject, client_id.as_deref());
            let verdict = policies.authorize(&AccessRequest {
                caller: Caller {
                    kind,
                    id: &subject,
                    client_id: client_id.as_deref().unwrap_or(""),
                    roles: &roles,
                    groups: &groups,
                    scopes: &scopes,
                    issuer: &issuer,
                    auth: &auth,
                },
                method: &method,
                route: &route,
                path: &path,
                host: &host,
                client_ip: ip,
            });
            let principal = kind.entity_type();
            if json {
                let out = serde_json::json!({
                    "decision": if verdict.allowed() { "allow" } else { "deny" },
                    "reason": verdict.reason.label(),
                    "principal": format!("{principal}::{subject:?}"),
                    "policies": verdict.policies,
                    "errors": verdict.errors,
                });
                println!("{out}");
            } else {
                println!(
                    "{}: {} ({principal}::{subject:?}, {method} on route {route:?})",
                    if verdict.allowed() { "ALLOW" } else { "DENY" },
                    verdict.reason.label()
                );
                if !verdict.policies.is_empty() {
                    println!("decided by: {}", verdict.policies.join(", "));
                }
                for error in &verdict.errors {
                    println!("error: {error}");
                }
            }
            Ok(if verdict.allowed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_DENIED)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::TokenClaims;

    const CLAIMS: &str = r#"{"sub":"u1","client_id":"web","scope":"a b","roles":["admin"],
        "groups":["eng"],"iss":"https://idp","exp":1}"#;

    #[test]
    fn claims_are_read_from_jwt_and_paseto_payloads() {
        let jwt = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA"}"#),
            URL_SAFE_NO_PAD.encode(CLAIMS),
            URL_SAFE_NO_PAD.encode([7u8; 64])
        );
        let mut signed = CLAIMS.as_bytes().to_vec();
        signed.extend([9u8; 64]);
        let paseto = format!("v4.public.{}", URL_SAFE_NO_PAD.encode(&signed));
        for (token, kind) in [(jwt, "jwt"), (paseto, "paseto")] {
            let claims = TokenClaims::read(&token).expect("claims");
            assert_eq!(claims.kind, kind);
            assert_eq!(claims.sub.as_deref(), Some("u1"));
            assert_eq!(claims.client_id.as_deref(), Some("web"));
            assert_eq!(claims.scope.as_deref(), Some("a b"));
            assert_eq!(claims.roles, ["admin"]);
            assert_eq!(claims.groups, ["eng"]);
            assert_eq!(claims.iss.as_deref(), Some("https://idp"));
        }
    }

    #[test]
    fn other_tokens_are_refused_with_a_reason() {
        for (token, reason) in [
            ("v4.local.AAAA", "encrypted"),
            ("opaque-token", "not a JWT"),
            ("a.b.c.d", "not a JWT"),
            ("e30.!!!.e30", "base64url"),
            ("v4.public.AAAA", "too short"),
        ] {
            let err = TokenClaims::read(token).expect_err(token);
            assert!(err.contains(reason), "{token}: {err}");
        }
        let not_claims = format!(
            "e30.{}.e30",
            URL_SAFE_NO_PAD.encode(br#"{"roles":"admin"}"#)
        );
        assert!(TokenClaims::read(&not_claims).is_err());
    }
}
