//! Tests of the rendered pages: escaping, forms, accessibility basics and headers.

use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::samples::{self, all_responses};
use crate::{
    ErrorView, LoggedOutView, PageError, Pages, TEMPLATES, content_security_policy, group4,
    origin_of, valid_origin,
};

fn pages() -> Pages {
    Pages::new("Rampart").expect("templates build")
}

fn header(response: &Response<String>, name: http::header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Every `<name ...>` start tag in `html` (the text between `<name` and the next `>`).
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let boundary = after.chars().next().unwrap_or('>');
        let end = after.find('>').expect("tag is closed");
        if boundary.is_whitespace() || boundary == '>' {
            out.push(&after[..end]);
        }
        rest = &after[end..];
    }
    out
}

/// The value of attribute `name` in a start tag (values are double-quoted in our templates).
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let tag = tag.replace('\n', " ");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(decode(&tag[start..end]))
}

fn decode(value: &str) -> String {
    value
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// The inner HTML of every `<form>`.
fn forms(html: &str) -> Vec<&str> {
    html.split("<form")
        .skip(1)
        .map(|chunk| chunk.split("</form>").next().unwrap_or(""))
        .collect()
}

fn input_named<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    tags(html, "input")
        .into_iter()
        .find(|tag| attr(tag, "name").as_deref() == Some(name))
}

#[test]
fn pages_is_send_sync_and_builds() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pages>();
    let _ = pages();
}

#[test]
fn new_fails_on_template_syntax_errors() {
    let mut broken: Vec<(&str, &str)> = TEMPLATES.to_vec();
    broken.push(("broken.html", "{% if %}oops"));
    match Pages::from_templates("Rampart", &broken) {
        Err(PageError::Template { name, .. }) => assert_eq!(name, "broken.html"),
        Ok(_) => panic!("a syntax error must fail"),
    }
}

#[test]
fn new_fails_on_template_render_errors() {
    let broken: Vec<(&str, &str)> = TEMPLATES
        .iter()
        .map(|(name, source)| {
            if *name == "login.html" {
                (*name, "{% extends \"base.html\" %}{% block content %}{{ no_such_field.x }}{% endblock %}")
            } else {
                (*name, *source)
            }
        })
        .collect();
    let pages = Pages::from_templates("Rampart", &broken).expect("parses");
    let err = pages
        .self_check()
        .expect_err("undefined variables must fail");
    assert!(err.to_string().contains("login.html"), "{err}");
    // And at request time it turns into a 500 page, not a panic.
    let response = pages.login(&samples::login(true));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.body().contains("Something went wrong"));
}

#[test]
fn every_page_renders_with_sample_data_and_headers() {
    let pages = pages();
    let responses = all_responses(&pages);
    assert_eq!(responses.len(), 16);
    for (name, response) in &responses {
        let expected = if name == "error" {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        assert_eq!(response.status(), expected, "{name}");
        assert_eq!(
            header(response, CONTENT_TYPE),
            "text/html; charset=utf-8",
            "{name}"
        );
        assert_eq!(header(response, CACHE_CONTROL), "no-store", "{name}");
        assert_eq!(
            header(response, http::header::X_FRAME_OPTIONS),
            "DENY",
            "{name}"
        );
        assert_eq!(
            header(response, http::header::X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{name}"
        );
        assert_eq!(
            header(response, http::header::REFERRER_POLICY),
            "same-origin",
            "{name}"
        );
        assert!(header(response, CONTENT_SECURITY_POLICY).starts_with("default-src 'none'"));
        let html = response.body();
        assert!(
            html.starts_with("<!doctype html>\n<html lang=\"en\">"),
            "{name}"
        );
        assert_eq!(
            html.matches("<main").count(),
            1,
            "{name}: one main landmark"
        );
        assert!(html.contains(" · Rampart</title>"), "{name}: title");
        assert_eq!(html.matches("<h1").count(), 1, "{name}: one h1");
        assert!(
            html.contains("<link rel=\"stylesheet\" href=\"/assets/rampart.css?v="),
            "{name}"
        );
        assert!(html.trim_end().ends_with("</html>"), "{name}");
    }
}

#[test]
fn page_content_matches_the_views() {
    let pages = pages();
    let login = pages.login(&samples::login(true));
    let html = login.body();
    assert!(html.contains("<title>Sign in · Rampart</title>"));
    assert!(html.contains("Acme Dashboard"));
    assert!(html.contains("Incorrect username or password."));
    assert!(html.contains(">Sign in</button>"));
    assert!(html.contains("Sign in with a passkey"));
    assert!(html.contains("<script src=\"/assets/webauthn.js?v="));
    assert!(html.contains("<meta name=\"csrf-token\" content=\"csrf-sample-token\">"));

    let minimal = pages.login(&samples::login(false));
    assert!(
        !minimal.body().contains("passkey"),
        "no passkey UI when unavailable"
    );
    assert!(
        !minimal.body().contains("<script"),
        "no script when not needed"
    );

    let mfa = pages.mfa(&samples::mfa(true));
    assert!(mfa.body().contains("recovery code"));
    assert!(mfa.body().contains("Use a passkey"));
    let mfa_min = pages.mfa(&samples::mfa(false));
    assert!(
        mfa_min
            .body()
            .contains("<label for=\"code\">Recovery code</label>")
    );
    assert!(!mfa_min.body().contains("inputmode=\"numeric\""));

    let totp = pages.totp_enroll(&samples::totp_enroll(true));
    assert!(
        totp.body().contains(samples::SAMPLE_QR_SVG),
        "QR SVG is rendered raw"
    );
    assert!(
        totp.body()
            .contains("JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP")
    );
    let form = tags(totp.body(), "form")[0];
    assert_eq!(attr(form, "action").as_deref(), Some("/login/totp"));

    let codes = pages.recovery_codes(&samples::recovery_codes(true));
    for code in &samples::recovery_codes(true).codes {
        assert!(codes.body().contains(code.as_str()));
    }
    assert!(codes.body().contains("works only once"));
    let form = tags(codes.body(), "form")[0];
    assert_eq!(attr(form, "action").as_deref(), Some("/login/continue"));
    assert_eq!(attr(form, "method").as_deref(), Some("post"));

    let consent = pages.consent(&samples::consent(true));
    let buttons = tags(consent.body(), "button");
    let decisions: Vec<_> = buttons.iter().filter_map(|b| attr(b, "value")).collect();
    assert_eq!(
        decisions,
        ["deny", "allow"],
        "deny first: Enter never grants access"
    );
    assert!(
        buttons
            .iter()
            .all(|b| attr(b, "name").as_deref() == Some("decision"))
    );
    assert!(consent.body().contains("See your email address"));

    let logout = pages.logout_confirm(&samples::logout(true));
    for (name, value) in [
        ("id_token_hint", "eyJhbGciOiJFUzI1NiJ9.e30.sig"),
        (
            "post_logout_redirect_uri",
            "https://dashboard.acme.example/signed-out",
        ),
        ("state", "xyz-state"),
        ("client_id", "acme-dashboard"),
    ] {
        let input = input_named(logout.body(), name).expect(name);
        assert_eq!(attr(input, "type").as_deref(), Some("hidden"));
        assert_eq!(attr(input, "value").as_deref(), Some(value));
    }
    let logout_min = pages.logout_confirm(&samples::logout(false));
    assert!(input_named(logout_min.body(), "state").is_none());
    assert!(logout.body().contains(">Sign out</button>"));
    assert!(logout.body().contains("href=\"/account\""));

    let account = pages.account(&samples::account(true));
    let html = account.body();
    assert_eq!(
        forms(html)
            .iter()
            .filter(|f| f.contains("/account/sessions/revoke"))
            .count(),
        2
    );
    assert_eq!(
        attr(input_named(html, "session_id").expect("session"), "value").as_deref(),
        Some("s-current")
    );
    assert!(html.contains("data-webauthn=\"register\""));
    assert!(html.contains("action=\"/logout\""));
    assert!(html.contains("MacBook Touch ID"));
    assert!(
        !html.contains("href=\"/account/totp\""),
        "no enrol link when enabled"
    );
    let account_min = pages.account(&samples::account(false));
    assert!(account_min.body().contains("href=\"/account/totp\""));

    let out = pages.logged_out(&LoggedOutView {
        message: "Bye now.".to_owned(),
    });
    assert!(out.body().contains("Bye now."));
}

#[test]
fn hostile_values_are_escaped() {
    let pages = pages();
    let evil = "<script>alert(1)</script>\"'&";
    let mut login = samples::login(true);
    login.client_name = Some(evil.to_owned());
    login.username = evil.to_owned();
    login.error = Some(evil.to_owned());
    login.request_id = evil.to_owned();
    login.csrf_token = evil.to_owned();

    let mut mfa = samples::mfa(true);
    mfa.client_name = Some(evil.to_owned());
    mfa.error = Some(evil.to_owned());

    let mut totp = samples::totp_enroll(true);
    totp.secret_base32 = evil.to_owned();
    totp.error = Some(evil.to_owned());

    let mut codes = samples::recovery_codes(true);
    codes.codes = vec![evil.to_owned()];

    let mut consent = samples::consent(true);
    consent.client_name = evil.to_owned();
    consent.scopes[0].name = evil.to_owned();
    consent.scopes[0].description = evil.to_owned();

    let mut logout = samples::logout(true);
    logout.client_name = Some(evil.to_owned());
    logout.state = Some(evil.to_owned());
    logout.post_logout_redirect_uri = Some(evil.to_owned());

    let mut account = samples::account(true);
    account.username = evil.to_owned();
    account.display_name = Some(evil.to_owned());
    account.passkeys = vec![evil.to_owned()];
    account.sessions[0].amr = evil.to_owned();
    account.sessions[0].session_id = evil.to_owned();
    account.sessions[1].created_at = evil.to_owned();

    let error = ErrorView {
        status: 404,
        title: evil.to_owned(),
        message: evil.to_owned(),
    };
    let evil_pages = Pages::new(evil).expect("product names are escaped too");

    let rendered = [
        pages.login(&login),
        pages.mfa(&mfa),
        pages.totp_enroll(&totp),
        pages.recovery_codes(&codes),
        pages.consent(&consent),
        pages.logout_confirm(&logout),
        pages.logged_out(&LoggedOutView {
            message: evil.to_owned(),
        }),
        pages.account(&account),
        pages.error(&error),
        evil_pages.logged_out(&samples::logged_out()),
    ];
    for response in &rendered {
        let html = response.body();
        assert!(!html.contains("<script>alert"), "unescaped:\n{html}");
        assert!(!html.contains("\"'&<"), "unescaped quotes:\n{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;"),
            "escaped value present:\n{html}"
        );
    }
}

#[test]
fn every_form_posts_with_a_csrf_token() {
    let pages = pages();
    for (name, response) in all_responses(&pages) {
        let html = response.body();
        for form_tag in tags(html, "form") {
            assert_eq!(attr(form_tag, "method").as_deref(), Some("post"), "{name}");
            let action = attr(form_tag, "action").expect("action");
            assert!(
                action.starts_with('/') && !action.starts_with("//"),
                "{name}: {action}"
            );
        }
        let forms = forms(html);
        for form in &forms {
            let csrf = input_named(form, "csrf_token").unwrap_or_else(|| panic!("{name}: csrf"));
            assert_eq!(attr(csrf, "type").as_deref(), Some("hidden"));
            assert_eq!(attr(csrf, "value").as_deref(), Some("csrf-sample-token"));
        }
        if !matches!(name.as_str(), "logged_out" | "error") {
            assert!(!forms.is_empty(), "{name} has a form");
            assert!(html.contains("<meta name=\"csrf-token\" content=\"csrf-sample-token\">"));
        }
    }
}

#[test]
fn authorization_forms_carry_the_request_id() {
    let pages = pages();
    let with_request = [
        pages.login(&samples::login(true)),
        pages.mfa(&samples::mfa(true)),
        pages.totp_enroll(&samples::totp_enroll(true)),
        pages.recovery_codes(&samples::recovery_codes(true)),
        pages.consent(&samples::consent(true)),
    ];
    for response in &with_request {
        let form = forms(response.body())[0];
        let request = input_named(form, "request").expect("request field");
        assert_eq!(attr(request, "type").as_deref(), Some("hidden"));
        assert_eq!(attr(request, "value").as_deref(), Some("req-sample-id"));
    }
    // Enrolment from the account page has no authorization request.
    let totp = pages.totp_enroll(&samples::totp_enroll(false));
    assert!(input_named(totp.body(), "request").is_none());
}

#[test]
fn field_names_and_autocomplete() {
    let pages = pages();
    let login = pages.login(&samples::login(true));
    let html = login.body();
    assert_eq!(
        attr(tags(html, "form")[0], "action").as_deref(),
        Some("/login")
    );
    let username = input_named(html, "username").expect("username");
    assert_eq!(attr(username, "autocomplete").as_deref(), Some("username"));
    assert_eq!(attr(username, "value").as_deref(), Some("alice"));
    let password = input_named(html, "password").expect("password");
    assert_eq!(attr(password, "type").as_deref(), Some("password"));
    assert_eq!(
        attr(password, "autocomplete").as_deref(),
        Some("current-password")
    );
    assert!(
        attr(password, "value").is_none(),
        "passwords are never echoed"
    );

    let mfa = pages.mfa(&samples::mfa(true));
    let html = mfa.body();
    assert_eq!(
        attr(tags(html, "form")[0], "action").as_deref(),
        Some("/login/mfa")
    );
    let code = input_named(html, "code").expect("code");
    assert_eq!(attr(code, "inputmode").as_deref(), Some("numeric"));
    assert_eq!(attr(code, "autocomplete").as_deref(), Some("one-time-code"));
    assert!(
        attr(code, "pattern").is_none(),
        "recovery codes are not digits only"
    );

    let totp = pages.totp_enroll(&samples::totp_enroll(false));
    let code = input_named(totp.body(), "code").expect("code");
    assert_eq!(attr(code, "autocomplete").as_deref(), Some("one-time-code"));
    assert_eq!(
        attr(tags(totp.body(), "form")[0], "action").as_deref(),
        Some("/account/totp")
    );
}

#[test]
fn errors_are_announced_and_tied_to_fields() {
    let pages = pages();
    for (response, field, alert_id) in [
        (
            pages.login(&samples::login(true)),
            "password",
            "login-error",
        ),
        (pages.mfa(&samples::mfa(true)), "code", "mfa-error"),
        (
            pages.totp_enroll(&samples::totp_enroll(true)),
            "code",
            "totp-error",
        ),
    ] {
        let html = response.body();
        let alert = tags(html, "div")
            .into_iter()
            .find(|t| attr(t, "id").as_deref() == Some(alert_id))
            .expect("alert region");
        assert_eq!(attr(alert, "role").as_deref(), Some("alert"));
        let input = input_named(html, field).expect("field");
        let described = attr(input, "aria-describedby").expect("aria-describedby");
        assert!(described.split(' ').any(|id| id == alert_id), "{described}");
        assert_eq!(attr(input, "aria-invalid").as_deref(), Some("true"));
    }
    // Without an error the (empty) alert region is still there for scripts to fill.
    let login = pages.login(&samples::login(false));
    assert!(
        login
            .body()
            .contains("<div id=\"login-error\" class=\"alert\" role=\"alert\"></div>")
    );
    assert!(
        attr(
            input_named(login.body(), "password").expect("pw"),
            "aria-invalid"
        )
        .is_none()
    );
}

#[test]
fn every_visible_input_has_a_label() {
    let pages = pages();
    for (name, response) in all_responses(&pages) {
        let html = response.body();
        for input in tags(html, "input") {
            if attr(input, "type").as_deref() == Some("hidden") {
                continue;
            }
            let id = attr(input, "id").unwrap_or_else(|| panic!("{name}: input without id"));
            assert!(
                html.contains(&format!("<label for=\"{id}\">")),
                "{name}: label for {id}"
            );
        }
    }
}

#[test]
fn no_inline_styles_or_scripts() {
    let pages = pages();
    let mut hostile = samples::login(true);
    hostile.error = Some("style=\"x\" onclick=\"y\"".to_owned());
    let mut all = all_responses(&pages);
    all.push(("hostile".to_owned(), pages.login(&hostile)));
    for (name, response) in all {
        let html = response.body();
        let lower = html.to_ascii_lowercase();
        if name != "hostile" {
            // Plain grep on the sample pages.
            assert!(!lower.contains("style="), "{name}: style attribute");
        }
        assert!(!lower.contains("<style"), "{name}: style element");
        assert!(!lower.contains("javascript:"), "{name}: javascript: URL");
        for chunk in lower.split("<script").skip(1) {
            let (tag, rest) = chunk.split_once('>').expect("closed script tag");
            assert!(
                tag.contains(" src=\"/assets/webauthn.js?v="),
                "{name}: script without src"
            );
            assert!(rest.starts_with("</script>"), "{name}: inline script body");
        }
        // No inline event handlers (on...="...") in any tag.
        for tag in lower.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap_or("");
            for word in tag.split_whitespace() {
                assert!(
                    !word.starts_with("style="),
                    "{name}: style attribute in <{tag}>"
                );
                let is_handler = word.starts_with("on")
                    && word.contains('=')
                    && word[2..]
                        .split('=')
                        .next()
                        .is_some_and(|n| n.chars().all(|c| c.is_ascii_lowercase()));
                assert!(!is_handler, "{name}: event handler attribute {word}");
            }
        }
    }
}

#[test]
fn csp_header_is_exact() {
    let pages = pages();
    let base = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
                connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    let with_origin = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
                       connect-src 'self'; form-action 'self' https://dashboard.acme.example; \
                       frame-ancestors 'none'; base-uri 'none'";
    assert_eq!(content_security_policy(None), base);
    assert_eq!(
        content_security_policy(Some("https://dashboard.acme.example")),
        with_origin
    );

    let login = pages.login(&samples::login(true));
    assert_eq!(header(&login, CONTENT_SECURITY_POLICY), with_origin);
    let login = pages.login(&samples::login(false));
    assert_eq!(header(&login, CONTENT_SECURITY_POLICY), base);
    for (view_origin, expected) in [
        (Some("https://dashboard.acme.example"), with_origin),
        (Some("https://x.example; script-src *"), base),
        (None, base),
    ] {
        let mut mfa = samples::mfa(true);
        mfa.form_action_origin = view_origin.map(str::to_owned);
        assert_eq!(header(&pages.mfa(&mfa), CONTENT_SECURITY_POLICY), expected);
        let mut consent = samples::consent(true);
        consent.form_action_origin = view_origin.map(str::to_owned);
        assert_eq!(
            header(&pages.consent(&consent), CONTENT_SECURITY_POLICY),
            expected
        );
        let mut logout = samples::logout(true);
        logout.form_action_origin = view_origin.map(str::to_owned);
        assert_eq!(
            header(&pages.logout_confirm(&logout), CONTENT_SECURITY_POLICY),
            expected
        );
        let mut totp = samples::totp_enroll(true);
        totp.form_action_origin = view_origin.map(str::to_owned);
        assert_eq!(
            header(&pages.totp_enroll(&totp), CONTENT_SECURITY_POLICY),
            expected
        );
        let mut codes = samples::recovery_codes(true);
        codes.form_action_origin = view_origin.map(str::to_owned);
        assert_eq!(
            header(&pages.recovery_codes(&codes), CONTENT_SECURITY_POLICY),
            expected
        );
    }
}

#[test]
fn form_action_origin_validation() {
    for (input, expected) in [
        ("https://client.example", "https://client.example"),
        ("https://client.example/", "https://client.example"),
        ("HTTPS://Client.Example:8443", "https://client.example:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost", "http://localhost"),
        ("https://[::1]:9443", "https://[::1]:9443"),
        (
            "https://xn--bcher-kva.example",
            "https://xn--bcher-kva.example",
        ),
        ("https://a-b.c-d.example:1", "https://a-b.c-d.example:1"),
    ] {
        assert_eq!(valid_origin(input).as_deref(), Some(expected), "{input}");
    }
    for input in [
        "",
        "client.example",
        "//client.example",
        "https://",
        "https:///",
        "https://client.example/path",
        "https://client.example?x=1",
        "https://client.example#f",
        "https://user@client.example",
        "https://client.example:0",
        "https://client.example:65536",
        "https://client.example:",
        "https://client.example:80a",
        "https://client.example 'unsafe-inline'",
        "https://client.example;script-src *",
        "https://client.example,https://evil.example",
        "https://client'.example",
        "https://client\".example",
        "https://*.example",
        "https://-bad.example",
        "https://bad..example",
        "https://bücher.example",
        "https://client.example\r\nX: y",
        "https://[::1",
        "https://[zz::1]",
        "javascript://client.example",
        "data:text/html,x",
        "ftp://client.example",
        "'self'",
        "*",
    ] {
        assert_eq!(valid_origin(input), None, "{input:?}");
    }
}

#[test]
fn origin_of_redirect_uris() {
    assert_eq!(
        origin_of("https://client.example/cb?x=1").as_deref(),
        Some("https://client.example")
    );
    assert_eq!(
        origin_of("https://client.example:443/cb").as_deref(),
        Some("https://client.example")
    );
    assert_eq!(
        origin_of("http://127.0.0.1:5173/cb").as_deref(),
        Some("http://127.0.0.1:5173")
    );
    assert_eq!(
        origin_of("https://bücher.example/").as_deref(),
        Some("https://xn--bcher-kva.example")
    );
    assert_eq!(origin_of("com.example.app:/oauth2redirect"), None);
    assert_eq!(origin_of("not a url"), None);
}

#[test]
fn error_page_uses_the_view_status() {
    let pages = pages();
    for (status, expected) in [
        (404, 404),
        (400, 400),
        (503, 503),
        (200, 500),
        (302, 500),
        (999, 500),
        (0, 500),
    ] {
        let view = ErrorView {
            status,
            title: "Oops".to_owned(),
            message: "Bad".to_owned(),
        };
        let response = pages.error(&view);
        assert_eq!(response.status().as_u16(), expected, "{status}");
        assert!(response.body().contains(&format!("Error {expected}")));
        assert!(response.body().contains("<title>Oops · Rampart</title>"));
    }
}

#[test]
fn non_local_form_targets_are_refused() {
    let pages = pages();
    for target in [
        "https://evil.example/x",
        "//evil.example",
        "javascript:alert(1)",
        "/\\evil",
        "/ok path",
        "",
    ] {
        let mut totp = samples::totp_enroll(false);
        totp.form_action = target.to_owned();
        assert_eq!(
            pages.totp_enroll(&totp).status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{target}"
        );
        let mut codes = samples::recovery_codes(false);
        codes.continue_url = target.to_owned();
        assert_eq!(
            pages.recovery_codes(&codes).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

#[test]
fn secrets_are_redacted_from_debug() {
    let totp = format!("{:?}", samples::totp_enroll(true));
    assert!(!totp.contains("JBSWY3DP"), "{totp}");
    let codes = format!("{:?}", samples::recovery_codes(true));
    assert!(!codes.contains("7KQ2-MZ4P"), "{codes}");
}

#[test]
fn assets() {
    let css = Pages::stylesheet();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert_eq!(
        css.headers()[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        css.headers()[http::header::X_CONTENT_TYPE_OPTIONS],
        "nosniff"
    );
    assert!(css.body().contains("prefers-color-scheme: dark"));
    assert!(
        !css.body().contains("@import") && !css.body().contains("url("),
        "no external resources"
    );

    let js = Pages::webauthn_script();
    assert_eq!(js.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(
        js.headers()[http::header::X_CONTENT_TYPE_OPTIONS],
        "nosniff"
    );
    for needle in [
        "/webauthn/register/start",
        "/webauthn/register/finish",
        "/webauthn/login/start",
        "/webauthn/login/finish",
        "X-CSRF-Token",
        "meta[name=\"csrf-token\"]",
        "attestationObject",
        "authenticatorData",
        "userHandle",
        "clientDataJSON",
    ] {
        assert!(js.body().contains(needle), "{needle}");
    }
}

#[test]
fn secret_grouping() {
    assert_eq!(group4("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
    assert_eq!(group4("ABCDEF=="), "ABCD EF");
    assert_eq!(group4(" AB CD E "), "ABCD E");
    assert_eq!(group4(""), "");
}

/// Writes every page to `<target>/pages-preview/` (with the assets) for a look in a browser.
#[test]
fn write_previews() {
    let dir = std::env::var_os("RAMPART_PAGES_PREVIEW_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
                })
                .join("pages-preview")
        });
    std::fs::create_dir_all(dir.join("assets")).expect("create preview dir");
    std::fs::write(dir.join("assets/rampart.css"), Pages::stylesheet().body()).expect("css");
    std::fs::write(
        dir.join("assets/webauthn.js"),
        Pages::webauthn_script().body(),
    )
    .expect("js");
    let mut index = String::from("<!doctype html><html lang=\"en\"><title>Pages</title><ul>");
    for (name, response) in all_responses(&pages()) {
        // Relative asset paths so the files open from disk.
        let html = response.body().replace("\"/assets/", "\"assets/");
        std::fs::write(dir.join(format!("{name}.html")), html).expect("write page");
        index.push_str(&format!("<li><a href=\"{name}.html\">{name}</a></li>"));
    }
    std::fs::write(dir.join("index.html"), index).expect("write index");
}
