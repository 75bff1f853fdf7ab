//! Properties over generated inputs: no text makes the parser panic, and decisions follow the
//! policies for any caller, route, method, path and address, however odd the strings.

use std::net::IpAddr;

use proptest::prelude::*;
use rampart_policy::{AccessRequest, Caller, CallerKind, Policies, Reason};

const POLICIES: &str = r#"
@id("read-orders")
permit(principal, action in Rampart::Action::"read", resource == Rampart::Route::"orders")
when { principal.scopes.contains("orders:read") };
@id("admins")
permit(principal in Rampart::Role::"admin", action, resource);
@id("outside-deletes")
forbid(principal, action == Rampart::Action::"DELETE", resource)
unless { context.client_ip.isInRange(ip("10.0.0.0/8")) };
"#;

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("orders".to_owned()),
        Just("orders:read".to_owned()),
        Just("admin".to_owned()),
        // Quotes, backslashes, Cedar syntax and non-ASCII in ids and values.
        "\\PC{0,24}",
        "[a-z\"\\\\:/ ().*]{0,16}",
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_owned()),
        Just("HEAD".to_owned()),
        Just("POST".to_owned()),
        Just("DELETE".to_owned()),
        "[A-Za-z]{1,10}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_parsed_or_refused_without_panicking(text in "\\PC{0,300}") {
        let _ = Policies::parse(&text);
    }

    #[test]
    fn mutated_policies_are_parsed_or_refused_without_panicking(
        at in 0usize..POLICIES.len(),
        insert in "\\PC{0,8}",
        cut in 0usize..16,
    ) {
        let mut text = POLICIES.to_owned();
        let at = text.floor_char_boundary(at);
        let end = text.floor_char_boundary((at + cut).min(text.len()));
        text.replace_range(at..end, &insert);
        if let Ok(policies) = Policies::parse(&text) {
            // Whatever survived still decides without panicking.
            let scopes = vec!["orders:read".to_owned()];
            let _ = policies.authorize(&AccessRequest {
                caller: Caller {
                    kind: CallerKind::Client,
                    id: "svc",
                    client_id: "svc",
                    roles: &[],
                    groups: &[],
                    scopes: &scopes,
                    issuer: "",
                    auth: "jwt",
                },
                method: "GET",
                route: "orders",
                path: "/",
                host: "",
                client_ip: IpAddr::from([10, 0, 0, 1]),
            });
        }
    }

    #[test]
    fn decisions_follow_the_policies(
        user in any::<bool>(),
        subject in label(),
        client_id in label(),
        scopes in proptest::collection::vec(label(), 0..4),
        roles in proptest::collection::vec(label(), 0..3),
        method in method(),
        route in label(),
        path in "\\PC{0,40}",
        host in "\\PC{0,20}",
        ip in any::<[u8; 4]>(),
    ) {
        let policies = Policies::parse(POLICIES).expect("valid");
        let client_ip = IpAddr::from(ip);
        let verdict = policies.authorize(&AccessRequest {
            caller: Caller {
                kind: if user { CallerKind::User } else { CallerKind::Client },
                id: &subject,
                client_id: &client_id,
                roles: &roles,
                groups: &[],
                scopes: &scopes,
                issuer: "https://issuer",
                auth: "jwt",
            },
            method: &method,
            route: &route,
            path: &path,
            host: &host,
            client_ip,
        });
        let read = matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
        let reader = read && route == "orders" && scopes.iter().any(|s| s == "orders:read");
        // Only users have roles.
        let admin = user && roles.iter().any(|r| r == "admin");
        let forbidden = method == "DELETE" && ip[0] != 10;
        // A forbid that applies decides, with or without a permit.
        let expected = if forbidden {
            Reason::Forbidden
        } else if reader || admin {
            Reason::Permitted
        } else {
            Reason::NoPermit
        };
        prop_assert_eq!(verdict.reason, expected, "{:?}", verdict);
        prop_assert!(verdict.errors.is_empty());
    }
}
