//! Cost of one policy decision at the gateway: a small policy set (3 policies) and a larger
//! one (100 route-specific permits plus the same forbid), against the cost of building the
//! request alone.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_policy::{AccessRequest, Caller, CallerKind, Policies};

const SMALL: &str = r#"
@id("read-orders")
permit(principal, action in Rampart::Action::"read", resource == Rampart::Route::"orders")
when { principal.scopes.contains("orders:read") };
@id("billing-writes")
permit(principal == Rampart::Client::"billing", action, resource == Rampart::Route::"orders");
@id("deletes-from-inside-only")
forbid(principal, action == Rampart::Action::"DELETE", resource)
unless { context.client_ip.isInRange(ip("10.0.0.0/8")) };
"#;

fn large() -> String {
    let mut source: String = (0..100)
        .map(|i| {
            format!(
                "permit(principal, action in Rampart::Action::\"read\", \
                 resource == Rampart::Route::\"route-{i}\") \
                 when {{ principal.scopes.contains(\"scope-{i}\") }};\n"
            )
        })
        .collect();
    source.push_str(SMALL);
    source
}

fn bench(c: &mut Criterion) {
    let scopes = vec!["orders:read".to_owned(), "profile".to_owned()];
    let ip: IpAddr = "10.1.2.3".parse().expect("ip");
    let request = AccessRequest {
        caller: Caller {
            kind: CallerKind::User,
            id: "user-42",
            client_id: "web-app",
            roles: &[],
            groups: &[],
            scopes: &scopes,
            issuer: "https://auth.example.test",
            auth: "jwt",
        },
        method: "GET",
        route: "orders",
        path: "/orders/42",
        host: "api.example.test",
        client_ip: ip,
    };
    let small = Policies::parse(SMALL).expect("valid");
    let large = Policies::parse(&large()).expect("valid");
    assert!(small.authorize(&request).allowed());
    assert!(large.authorize(&request).allowed());
    let trivial = Policies::parse("permit(principal, action, resource);").expect("valid");
    c.bench_function("policy decision, 1 unconditional permit", |b| {
        b.iter(|| black_box(trivial.authorize(black_box(&request))))
    });
    c.bench_function("policy decision, 3 policies", |b| {
        b.iter(|| black_box(small.authorize(black_box(&request))))
    });
    c.bench_function("policy decision, 103 policies", |b| {
        b.iter(|| black_box(large.authorize(black_box(&request))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
