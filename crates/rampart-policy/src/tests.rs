use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

const NO_LABELS: &[String] = &[];

fn user<'a>(sub: &'a str, scopes: &'a [String]) -> Caller<'a> {
    Caller {
        kind: CallerKind::User,
        id: sub,
        client_id: "web-app",
        roles: NO_LABELS,
        groups: NO_LABELS,
        scopes,
        issuer: "https://id.example",
        auth: "jwt",
    }
}

fn client<'a>(id: &'a str, scopes: &'a [String]) -> Caller<'a> {
    Caller {
        kind: CallerKind::Client,
        id,
        client_id: id,
        roles: NO_LABELS,
        groups: NO_LABELS,
        scopes,
        issuer: "https://id.example",
        auth: "jwt",
    }
}

fn request<'a>(caller: Caller<'a>, method: &'a str, route: &'a str) -> AccessRequest<'a> {
    AccessRequest {
        caller,
        method,
        route,
        path: "/orders/42",
        host: "api.local",
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
    }
}

const READERS_AND_BILLING: &str = r#"
@id("read-orders")
permit(principal, action in Rampart::Action::"read", resource == Rampart::Route::"orders")
when { principal.scopes.contains("orders:read") };

@id("billing-writes")
permit(principal == Rampart::Client::"billing", action in Rampart::Action::"write",
       resource == Rampart::Route::"orders");

@id("no-deletes-from-outside")
forbid(principal, action == Rampart::Action::"DELETE", resource)
unless { context.client_ip.isInRange(ip("10.0.0.0/8")) };
"#;

#[test]
fn the_built_in_schema_loads() {
    assert!(schema().is_ok());
    assert!(Policies::parse("").is_ok_and(|p| p.ids().is_empty()));
}

#[test]
fn a_permit_allows_and_names_itself() {
    let policies = Policies::parse(READERS_AND_BILLING).expect("valid");
    assert_eq!(
        policies.ids(),
        ["read-orders", "billing-writes", "no-deletes-from-outside"]
    );
    let granted = scopes(&["orders:read"]);
    let verdict = policies.authorize(&request(user("alice", &granted), "GET", "orders"));
    assert!(verdict.allowed(), "{verdict:?}");
    assert_eq!(verdict.reason, Reason::Permitted);
    assert_eq!(verdict.policies, ["read-orders"]);
    // HEAD and OPTIONS are in the read group too.
    for method in ["HEAD", "OPTIONS"] {
        assert!(
            policies
                .authorize(&request(user("alice", &granted), method, "orders"))
                .allowed()
        );
    }
}

#[test]
fn without_a_permit_access_is_denied() {
    let policies = Policies::parse(READERS_AND_BILLING).expect("valid");
    let none = scopes(&[]);
    let granted = scopes(&["orders:read"]);
    // No scope: the read permit's condition is false.
    let verdict = policies.authorize(&request(user("alice", &none), "GET", "orders"));
    assert_eq!(verdict.reason, Reason::NoPermit);
    assert!(verdict.policies.is_empty());
    // The scope does not make a write a read.
    let verdict = policies.authorize(&request(user("alice", &granted), "POST", "orders"));
    assert_eq!(verdict.reason, Reason::NoPermit);
    // Another route.
    let verdict = policies.authorize(&request(user("alice", &granted), "GET", "admin"));
    assert_eq!(verdict.reason, Reason::NoPermit);
    // A user named like the permitted client is not that client.
    let verdict = policies.authorize(&request(user("billing", &none), "POST", "orders"));
    assert_eq!(verdict.reason, Reason::NoPermit);
}

#[test]
fn a_forbid_overrides_a_permit() {
    let policies = Policies::parse(READERS_AND_BILLING).expect("valid");
    let none = scopes(&[]);
    let inside = request(client("billing", &none), "DELETE", "orders");
    assert!(policies.authorize(&inside).allowed());
    let outside = AccessRequest {
        client_ip: "203.0.113.9".parse().expect("ip"),
        ..inside
    };
    let verdict = policies.authorize(&outside);
    assert_eq!(verdict.reason, Reason::Forbidden);
    assert_eq!(verdict.policies, ["no-deletes-from-outside"]);
    assert!(!verdict.allowed());
}

#[test]
fn unknown_methods_are_writes() {
    let policies = Policies::parse(
        r#"permit(principal, action in Rampart::Action::"write", resource)
           when { context.method == "PROPFIND" };"#,
    )
    .expect("valid");
    let none = scopes(&[]);
    assert!(
        policies
            .authorize(&request(client("svc", &none), "PROPFIND", "orders"))
            .allowed()
    );
    assert!(
        !policies
            .authorize(&request(client("svc", &none), "GET", "orders"))
            .allowed()
    );
}

#[test]
fn context_and_attributes_reach_the_policies() {
    let policies = Policies::parse(
        r#"permit(principal is Rampart::User, action, resource)
           when { principal.client_id == "web-app" && principal.auth == "jwt"
                  && principal.issuer == "https://id.example"
                  && context.host == "api.local" && context.path like "/orders/*" };"#,
    )
    .expect("valid");
    let none = scopes(&[]);
    let base = request(user("alice", &none), "GET", "orders");
    assert!(policies.authorize(&base).allowed());
    for changed in [
        AccessRequest {
            host: "other.local",
            ..base
        },
        AccessRequest {
            path: "/admin",
            ..base
        },
        AccessRequest {
            caller: client("alice", &none),
            ..base
        },
    ] {
        assert_eq!(policies.authorize(&changed).reason, Reason::NoPermit);
    }
}

#[test]
fn a_forbid_that_fails_to_evaluate_still_denies() {
    // Cedar skips a policy whose evaluation errs; here that would drop the forbid and let the
    // permit through. Rampart denies instead.
    let policies = Policies::parse(
        r#"permit(principal, action, resource);
           @id("overflowing-forbid")
           forbid(principal, action, resource)
           when { 9223372036854775807 + (if principal.scopes.contains("a") then 1 else 0) > 0 };"#,
    )
    .expect("valid");
    let one = scopes(&["a"]);
    let verdict = policies.authorize(&request(client("svc", &one), "GET", "orders"));
    assert_eq!(verdict.reason, Reason::Error, "{verdict:?}");
    assert!(!verdict.allowed());
    assert!(
        verdict.errors[0].contains("overflowing-forbid"),
        "{:?}",
        verdict.errors
    );
}

#[test]
fn entity_ids_with_quotes_or_odd_characters_stay_ids() {
    let policies =
        Policies::parse(r#"permit(principal == Rampart::User::"a\"b", action, resource);"#)
            .expect("valid");
    let none = scopes(&[]);
    assert!(
        policies
            .authorize(&request(user("a\"b", &none), "GET", "orders"))
            .allowed()
    );
    // A subject that looks like Cedar syntax is just a string.
    let verdict = policies.authorize(&request(
        user(r#"a" || true || "b"#, &none),
        "GET",
        "orders",
    ));
    assert_eq!(verdict.reason, Reason::NoPermit);
}

#[test]
fn misspelt_attributes_are_refused_at_load_with_the_line() {
    let err = Policies::parse(
        "permit(principal, action, resource)\n  when { principal.scope.contains(\"x\") };",
    )
    .expect_err("invalid");
    let message = err.to_string();
    assert!(matches!(err, PolicyError::Invalid(_)), "{message}");
    assert!(message.contains("scope"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn unknown_types_actions_and_syntax_are_refused() {
    for (source, kind) in [
        (
            r#"permit(principal == Rampart::Admin::"x", action, resource);"#,
            "invalid",
        ),
        (
            r#"permit(principal, action == Rampart::Action::"TRACE", resource);"#,
            "invalid",
        ),
        (
            r#"permit(principal, action, resource) when { context.method == 1 };"#,
            "invalid",
        ),
        (r#"permit(principal, action, resource"#, "syntax"),
        (r#"allow(principal, action, resource);"#, "syntax"),
    ] {
        let err = Policies::parse(source).expect_err(source);
        let matched = match kind {
            "invalid" => matches!(err, PolicyError::Invalid(_)),
            _ => matches!(err, PolicyError::Syntax(_)),
        };
        assert!(matched, "{source}: {err}");
    }
}

#[test]
fn templates_duplicate_ids_and_huge_files_are_refused() {
    assert!(matches!(
        Policies::parse("permit(principal == ?principal, action, resource);"),
        Err(PolicyError::Template(_))
    ));
    assert!(matches!(
        Policies::parse(
            r#"@id("a") permit(principal, action, resource);
               @id("a") forbid(principal, action, resource);"#
        ),
        Err(PolicyError::DuplicateId(id)) if id == "a"
    ));
    for bad in ["", "a,b", "line\nbreak"] {
        let source = format!("@id({bad:?}) permit(principal, action, resource);");
        assert!(
            matches!(Policies::parse(&source), Err(PolicyError::BadId(_))),
            "{source}"
        );
    }
    let long = format!(
        "@id({:?}) permit(principal, action, resource);",
        "x".repeat(129)
    );
    assert!(matches!(Policies::parse(&long), Err(PolicyError::BadId(_))));
    let huge = "//".repeat(MAX_POLICY_BYTES);
    assert!(matches!(Policies::parse(&huge), Err(PolicyError::TooLarge)));
}

#[test]
fn positional_ids_follow_the_file_order() {
    let source = (0..12)
        .map(|i| {
            format!("permit(principal, action, resource) when {{ context.path == \"/{i}\" }};")
        })
        .collect::<String>();
    let policies = Policies::parse(&source).expect("valid");
    let expected: Vec<String> = (0..12).map(|i| format!("policy{i}")).collect();
    assert_eq!(policies.ids(), expected);
    let none = scopes(&[]);
    let verdict = policies.authorize(&AccessRequest {
        path: "/11",
        ..request(client("svc", &none), "GET", "orders")
    });
    assert_eq!(verdict.policies, ["policy11"]);
}

#[test]
fn the_facts_fit_the_schema() {
    let policies = Policies::parse(READERS_AND_BILLING).expect("valid");
    let granted = scopes(&["orders:read", "x"]);
    for caller in [user("alice", &granted), client("billing", &granted)] {
        for method in [
            "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "PROPFIND",
        ] {
            let built = policies.facts(&request(caller, method, "orders"), Some(&policies.schema));
            assert!(built.is_ok(), "{caller:?} {method}: {:?}", built.err());
        }
    }
}

#[test]
fn slicing_by_route_decides_as_the_whole_set() {
    // Route-specific policies, generic ones, a route-specific forbid, and `is ... in`.
    let source = r#"
        @id("a-read") permit(principal, action in Rampart::Action::"read", resource == Rampart::Route::"a");
        @id("b-any") permit(principal, action, resource in Rampart::Route::"b");
        @id("c-is-in") permit(principal, action, resource is Rampart::Route in Rampart::Route::"c");
        @id("all-admins") permit(principal, action, resource) when { principal.scopes.contains("admin") };
        @id("no-b-deletes") forbid(principal, action == Rampart::Action::"DELETE", resource == Rampart::Route::"b");
        @id("routes-only") forbid(principal, action, resource is Rampart::Route) when { context.path == "/forbidden" };
    "#;
    let policies = Policies::parse(source).expect("valid");
    assert_eq!(policies.by_route.len(), 3, "a, b and c have their own sets");
    assert_eq!(policies.any_route.policies().count(), 2);
    let admin = scopes(&["admin"]);
    let none = scopes(&[]);
    let decide = |caller, method, route, path| {
        let verdict = policies.authorize(&AccessRequest {
            path,
            ..request(caller, method, route)
        });
        (verdict.reason, verdict.policies)
    };
    let ids = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        decide(client("s", &none), "GET", "a", "/"),
        (Reason::Permitted, ids(&["a-read"]))
    );
    assert_eq!(
        decide(client("s", &none), "POST", "a", "/").0,
        Reason::NoPermit
    );
    assert_eq!(
        decide(client("s", &none), "POST", "b", "/"),
        (Reason::Permitted, ids(&["b-any"]))
    );
    assert_eq!(
        decide(client("s", &admin), "DELETE", "b", "/"),
        (Reason::Forbidden, ids(&["no-b-deletes"]))
    );
    assert_eq!(
        decide(client("s", &admin), "DELETE", "a", "/"),
        (Reason::Permitted, ids(&["all-admins"]))
    );
    assert_eq!(
        decide(client("s", &none), "PUT", "c", "/"),
        (Reason::Permitted, ids(&["c-is-in"]))
    );
    assert_eq!(
        decide(client("s", &none), "GET", "z", "/").0,
        Reason::NoPermit
    );
    assert_eq!(
        decide(client("s", &admin), "GET", "z", "/"),
        (Reason::Permitted, ids(&["all-admins"]))
    );
    // A generic forbid reaches every route's set.
    for route in ["a", "b", "c", "z"] {
        assert_eq!(
            decide(client("s", &admin), "GET", route, "/forbidden"),
            (Reason::Forbidden, ids(&["routes-only"])),
            "{route}"
        );
    }
}

#[test]
fn the_client_address_is_there_however_a_policy_names_it() {
    let none = scopes(&[]);
    let outside = AccessRequest {
        client_ip: "203.0.113.9".parse().expect("ip"),
        ..request(client("svc", &none), "GET", "orders")
    };
    // Spelt with an escape, the attribute must still be present for the forbid to apply.
    for forbid in [
        r#"forbid(principal, action, resource) when { context has client_ip && !context.client_ip.isInRange(ip("10.0.0.0/8")) };"#,
        r#"forbid(principal, action, resource) when { context has "client\u{5f}ip" && !context["client\u{5f}ip"].isInRange(ip("10.0.0.0/8")) };"#,
    ] {
        let policies = Policies::parse(&format!("permit(principal, action, resource);\n{forbid}"))
            .expect("valid");
        assert_eq!(
            policies.authorize(&outside).reason,
            Reason::Forbidden,
            "{forbid}"
        );
    }
}

#[test]
fn cached_address_values_are_the_addresses() {
    let none = scopes(&[]);
    let policies = Policies::parse(
        r#"permit(principal, action, resource) when { context.client_ip == ip("10.0.0.1") };"#,
    )
    .expect("valid");
    // More addresses than the cache holds, twice: every decision sees its own address.
    for round in 0..2 {
        for i in 0..(IP_CACHE_SIZE as u32 + 10) {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let verdict = policies.authorize(&AccessRequest {
                client_ip: ip,
                ..request(client("svc", &none), "GET", "orders")
            });
            assert_eq!(verdict.allowed(), i == 1, "round {round}, {ip}");
        }
    }
}

#[test]
fn users_are_in_their_roles_and_groups() {
    let policies = Policies::parse(
        r#"@id("admins") permit(principal in Rampart::Role::"admin", action, resource);
           @id("ops-reads") permit(principal in Rampart::Group::"ops", action in Rampart::Action::"read", resource);
           @id("no-contractors") forbid(principal in Rampart::Group::"contractors", action == Rampart::Action::"DELETE", resource);"#,
    )
    .expect("valid");
    let none = scopes(&[]);
    let admin = scopes(&["admin"]);
    let ops = scopes(&["ops"]);
    let contractors = scopes(&["contractors", "ops"]);
    fn with<'a>(roles: &'a [String], groups: &'a [String]) -> Caller<'a> {
        Caller {
            roles,
            groups,
            ..user("alice", NO_LABELS)
        }
    }
    let (admin, ops, contractors) = (&admin[..], &ops[..], &contractors[..]);
    let decide = |caller, method| policies.authorize(&request(caller, method, "orders"));
    assert_eq!(
        decide(with(admin, NO_LABELS), "DELETE").policies,
        ["admins"]
    );
    assert!(
        !decide(with(NO_LABELS, admin), "DELETE").allowed(),
        "a group named admin is no role"
    );
    assert!(decide(with(NO_LABELS, ops), "GET").allowed());
    assert!(!decide(with(NO_LABELS, ops), "POST").allowed());
    let verdict = decide(with(admin, contractors), "DELETE");
    assert_eq!(verdict.reason, Reason::Forbidden);
    assert_eq!(verdict.policies, ["no-contractors"]);
    // Clients have no roles, whatever they are given.
    let client_with_role = Caller {
        roles: admin,
        ..client("svc", &none)
    };
    assert_eq!(decide(client_with_role, "GET").reason, Reason::NoPermit);
    // The facts of a user with roles fit the schema.
    assert!(
        policies
            .facts(
                &request(with(admin, ops), "GET", "orders"),
                Some(&policies.schema)
            )
            .is_ok()
    );
}
