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
    /// The caller's `sub` (generated ids may start with `-`).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) subject: String,
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
    #[arg(long, default_value = "")]
    issuer: String,
    /// How the caller authenticated: jwt, paseto, introspection, api_key or mtls.
    #[arg(long, default_value = "jwt")]
    auth: String,
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
            let principal = match kind {
                CallerKind::User => "Rampart::User",
                CallerKind::Client => "Rampart::Client",
            };
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
