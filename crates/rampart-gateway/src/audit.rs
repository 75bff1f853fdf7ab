//! The audit log: one JSON line per request, sent through a bounded channel to a writer task.
//!
//! Decision: the request path never blocks on the audit log. When the channel is full the
//! record is dropped and counted in `rampart_gateway_audit_dropped_total`.
//!
//! Records never contain `Authorization`, cookies, tokens or API keys: only the fields of
//! [`AuditRecord`], with sensitive query parameters masked (see [`mask_query`]).

use std::io::Write;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Request;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tower::{Layer, Service};

use rampart_guard::Principal;

use crate::context::{BoxBody, Outcome, PrincipalFacts, RequestIds, RouteId};
use crate::future::{OnResponse, Then};
use crate::policy::PolicyIds;

/// Query parameter names whose values are masked (case-insensitive).
pub const SENSITIVE_PARAMS: [&str; 8] = [
    "access_token",
    "token",
    "api_key",
    "apikey",
    "key",
    "password",
    "secret",
    "code",
];

/// Longest path logged, bytes (longer ones are cut).
pub const MAX_LOGGED_PATH: usize = 2048;

/// One audit record. Built on the request path from shared parts (no copies of the principal,
/// route or upstream names); turned into its JSON line on the writer thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When the request arrived (written as RFC 3339 UTC with milliseconds).
    pub time: SystemTime,
    /// `X-Request-Id`.
    pub request_id: String,
    /// `traceparent`.
    pub traceparent: String,
    /// Route id, if one matched.
    pub route: Option<Arc<str>>,
    /// Method.
    pub method: http::Method,
    /// Path and query, sensitive parameters masked.
    pub path: String,
    /// The authenticated principal: its `sub` is logged as `principal`, its `client_id` as
    /// `client_id`.
    pub principal: Option<Arc<Principal>>,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// Short reason label.
    pub reason: &'static str,
    /// Response status.
    pub status: u16,
    /// Time to the response head.
    pub latency_ms: u64,
    /// The upstream tried last.
    pub upstream: Option<Arc<str>>,
    /// Ids of the Cedar policies that decided (comma-separated), when `[gateway.policy]` was
    /// consulted; logged only then.
    pub policy: Option<Arc<str>>,
}

impl AuditRecord {
    /// `sub` of the principal.
    pub fn subject(&self) -> Option<&str> {
        self.principal.as_deref().map(|p| p.subject.as_str())
    }

    /// `client_id` of the principal.
    pub fn client_id(&self) -> Option<&str> {
        self.principal
            .as_deref()
            .and_then(|p| p.client_id.as_deref())
    }
}

/// The JSON line of an [`AuditRecord`] (field names and order are the log format).
#[derive(Serialize)]
struct AuditLine<'a> {
    time: &'a str,
    request_id: &'a str,
    traceparent: &'a str,
    route: Option<&'a str>,
    method: &'a str,
    path: &'a str,
    principal: Option<&'a str>,
    client_id: Option<&'a str>,
    decision: &'static str,
    reason: &'static str,
    status: u16,
    latency_ms: u64,
    upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a str>,
}

impl Serialize for AuditRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AuditLine {
            time: &rfc3339(self.time),
            request_id: &self.request_id,
            traceparent: &self.traceparent,
            route: self.route.as_deref(),
            method: self.method.as_str(),
            path: &self.path,
            principal: self.subject(),
            client_id: self.client_id(),
            decision: self.decision,
            reason: self.reason,
            status: self.status,
            latency_ms: self.latency_ms,
            upstream: self.upstream.as_deref(),
            policy: self.policy.as_deref(),
        }
        .serialize(serializer)
    }
}

/// Masks the values of [`SENSITIVE_PARAMS`] in a path-and-query.
pub fn mask_query(path_and_query: &str) -> String {
    mask_query_with(path_and_query, &[])
}

/// Masks the values of [`SENSITIVE_PARAMS`] and of the parameters named in `extra` (compared
/// case-insensitively) in a path-and-query, and cuts it at [`MAX_LOGGED_PATH`].
pub fn mask_query_with(path_and_query: &str, extra: &[String]) -> String {
    let sensitive = |name: &str| {
        SENSITIVE_PARAMS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name))
            || extra.iter().any(|p| p.eq_ignore_ascii_case(name))
    };
    let mut out = match path_and_query.split_once('?') {
        None => path_and_query.to_owned(),
        Some((path, query)) => {
            let mut out = String::with_capacity(path_and_query.len());
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                let name = pair.split_once('=').map_or(pair, |(n, _)| n);
                if sensitive(name) {
                    out.push_str(name);
                    out.push_str("=***");
                } else {
                    out.push_str(pair);
                }
            }
            out
        }
    };
    if out.len() > MAX_LOGGED_PATH {
        let mut cut = MAX_LOGGED_PATH;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// Most query parameter names `[gateway.audit] mask_query_params` may add.
pub const MAX_MASKED_PARAMS: usize = 64;

/// `[gateway.audit]`: what the audit log masks beyond the built-in list. Request and response
/// bodies are never logged, so only query parameters need naming.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Query parameters whose values are written as `***`, in addition to
    /// [`SENSITIVE_PARAMS`] (case-insensitive).
    #[serde(default)]
    pub mask_query_params: Vec<String>,
}

impl AuditConfig {
    /// Checks the names: at most [`MAX_MASKED_PARAMS`], each 1 to 128 printable ASCII
    /// characters without `&`, `=`, `#` or space.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        if self.mask_query_params.len() > MAX_MASKED_PARAMS {
            return Err(crate::ConfigError::new(
                "gateway.audit.mask_query_params",
                format!("at most {MAX_MASKED_PARAMS} names"),
            ));
        }
        for (i, name) in self.mask_query_params.iter().enumerate() {
            let valid = (1..=128).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'&' | b'=' | b'#'));
            if !valid {
                return Err(crate::ConfigError::new(
                    format!("gateway.audit.mask_query_params[{i}]"),
                    "not a query parameter name (1 to 128 printable characters, no & = #)",
                ));
            }
        }
        Ok(())
    }
}

/// RFC 3339 (UTC, milliseconds) for a time since the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Written digit by digit: this runs once per request, and `format!` was a tenth of the
    // audit layer's work.
    // Never negative: the time is not before 1970.
    let year = year.unsigned_abs();
    let mut out = String::with_capacity(24);
    for (value, digits, separator) in [
        (year, 4, '-'),
        (month as u64, 2, '-'),
        (day as u64, 2, 'T'),
        ((rem / 3600) as u64, 2, ':'),
        ((rem % 3600 / 60) as u64, 2, ':'),
        ((rem % 60) as u64, 2, '.'),
        (u64::from(d.subsec_millis()), 3, 'Z'),
    ] {
        push_decimal(&mut out, value, digits);
        out.push(separator);
    }
    out
}

/// Appends `value` in decimal, zero-padded to at least `digits` digits.
fn push_decimal(out: &mut String, value: u64, digits: u32) {
    let mut divisor = 10u64.pow(digits - 1);
    while divisor <= value / 10 {
        divisor *= 10;
    }
    while divisor > 0 {
        out.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

/// Where audit records go.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: Option<mpsc::Sender<AuditRecord>>,
}

impl AuditSink {
    /// Spawns a blocking writer task writing one JSON line per record to `writer` (flushed after
    /// each line), fed by a channel of `capacity` records. Must be called within a tokio
    /// runtime. The task ends when every clone of the sink is dropped.
    pub fn spawn(writer: Box<dyn Write + Send>, capacity: usize) -> AuditSink {
        let (sink, mut rx) = Self::channel(capacity);
        tokio::task::spawn_blocking(move || {
            // Records are written in batches: the writer takes what is queued, flushes once,
            // then pauses briefly so that requests enqueue without waking it each time (a
            // wake-up per request costs more than the write). A record reaches the writer
            // within BATCH_PAUSE of its request.
            let mut writer = writer;
            // The batch's lines, written with one call.
            let mut lines = Vec::with_capacity(64 * 1024);
            while let Some(record) = rx.blocking_recv() {
                append_record(&mut lines, &record);
                let mut batch = 1;
                while batch < 1024 {
                    match rx.try_recv() {
                        Ok(record) => {
                            append_record(&mut lines, &record);
                            batch += 1;
                        }
                        Err(_) => break,
                    }
                }
                if let Err(e) = writer.write_all(&lines).and_then(|()| writer.flush()) {
                    tracing::error!(error = %e, "audit write failed");
                }
                lines.clear();
                // A burst of long paths may have grown it; keep at most 1 MiB between batches.
                lines.shrink_to(1 << 20);
                std::thread::sleep(BATCH_PAUSE);
            }
        });
        sink
    }

    /// A sink and the receiving end of its channel (for tests, or a custom writer).
    pub fn channel(capacity: usize) -> (AuditSink, mpsc::Receiver<AuditRecord>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (AuditSink { tx: Some(tx) }, rx)
    }

    /// A sink that drops every record.
    pub fn discard() -> AuditSink {
        AuditSink { tx: None }
    }

    /// Sends `record` without waiting; drops (and counts) it when the channel is full.
    pub fn record(&self, record: AuditRecord) {
        if let Some(tx) = &self.tx
            && tx.try_send(record).is_err()
        {
            metrics::counter!("rampart_gateway_audit_dropped_total").increment(1);
        }
    }
}

/// Emits an [`AuditRecord`] for every request.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    sink: Arc<AuditSink>,
    masked: Arc<[String]>,
}

impl AuditLayer {
    /// A layer writing to `sink`, masking the built-in parameters.
    pub fn new(sink: AuditSink) -> Self {
        Self::with_masked(sink, &AuditConfig::default())
    }

    /// A layer writing to `sink`, masking the built-in parameters and those of `config`.
    pub fn with_masked(sink: AuditSink, config: &AuditConfig) -> Self {
        Self {
            sink: Arc::new(sink),
            masked: config.mask_query_params.iter().cloned().collect(),
        }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Audit {
            inner,
            sink: Arc::clone(&self.sink),
            masked: Arc::clone(&self.masked),
        }
    }
}

/// See [`AuditLayer`].
#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
    sink: Arc<AuditSink>,
    /// Query parameters masked beyond [`SENSITIVE_PARAMS`].
    masked: Arc<[String]>,
}

impl<S, B> Service<Request<B>> for Audit<S>
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
    type Future = Then<S::Future, Record>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let started = Instant::now();
        let time = SystemTime::now();
        // Taken, not copied: no layer after this one reads them.
        let ids = req.extensions_mut().remove::<RequestIds>();
        let method = req.method().clone();
        let path = mask_query_with(
            req.uri()
                .path_and_query()
                .map_or_else(|| req.uri().path(), |pq| pq.as_str()),
            &self.masked,
        );
        let record = Record {
            started,
            time,
            ids,
            method,
            path,
            sink: Arc::clone(&self.sink),
        };
        Then::new(self.inner.call(req), record)
    }
}

/// What the audit layer knows of a request before the response: the rest of the record
/// comes from the response's extensions.
#[derive(Debug)]
pub struct Record {
    started: Instant,
    time: SystemTime,
    ids: Option<RequestIds>,
    method: http::Method,
    path: String,
    sink: Arc<AuditSink>,
}

impl OnResponse for Record {
    fn on_response(self, response: &mut http::Response<BoxBody>) {
        let ext = response.extensions();
        let outcome = ext.get::<Outcome>();
        let ids = self.ids.unwrap_or(RequestIds {
            request_id: String::new(),
            traceparent: String::new(),
        });
        self.sink.record(AuditRecord {
            time: self.time,
            request_id: ids.request_id,
            traceparent: ids.traceparent,
            route: ext.get::<RouteId>().map(|r| Arc::clone(&r.0)),
            method: self.method,
            path: self.path,
            principal: ext.get::<PrincipalFacts>().map(|f| Arc::clone(&f.0)),
            decision: if outcome.is_some_and(|o| o.allowed) {
                "allow"
            } else {
                "deny"
            },
            reason: outcome.map_or("unknown", |o| o.reason),
            status: response.status().as_u16(),
            latency_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            upstream: outcome.and_then(|o| o.upstream.clone()),
            policy: ext.get::<PolicyIds>().map(|p| Arc::clone(&p.0)),
        });
    }
}

/// How long the audit writer pauses after each batch.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// Appends one record as a JSON line: the fields of [`AuditLine`] in its order, written
/// directly. The same bytes as serializing the record with serde_json (tested against it),
/// for a third of the instructions: most strings of a line need no escape, and those are
/// found by one scan and copied whole.
fn append_record(lines: &mut Vec<u8>, record: &AuditRecord) {
    lines.extend_from_slice(b"{\"time\":\"");
    lines.extend_from_slice(rfc3339(record.time).as_bytes());
    lines.push(b'"');
    string_field(lines, "request_id", Some(&record.request_id));
    string_field(lines, "traceparent", Some(&record.traceparent));
    string_field(lines, "route", record.route.as_deref());
    string_field(lines, "method", Some(record.method.as_str()));
    string_field(lines, "path", Some(&record.path));
    string_field(lines, "principal", record.subject());
    string_field(lines, "client_id", record.client_id());
    string_field(lines, "decision", Some(record.decision));
    string_field(lines, "reason", Some(record.reason));
    number_field(lines, "status", u64::from(record.status));
    number_field(lines, "latency_ms", record.latency_ms);
    string_field(lines, "upstream", record.upstream.as_deref());
    if let Some(policy) = record.policy.as_deref() {
        string_field(lines, "policy", Some(policy));
    }
    lines.extend_from_slice(b"}\n");
}

/// `,"name":value` for a string or null. `name` is one of the format's field names, which
/// need no escaping.
fn string_field(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    match value {
        Some(v) => json_string(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// `,"name":n`.
fn number_field(out: &mut Vec<u8>, name: &str, n: u64) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(crate::header_value::decimal(n, &mut [0; 20]));
}

/// `s` as a JSON string, escaped as serde_json escapes (RFC 8259 section 7): `"` and `\`
/// with a backslash, the control characters with their short form or `\u00XX`; everything
/// else, non-ASCII included, as is.
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most values (ids, names, paths) need no escape: one branch-free check, one copy.
    if rampart_guard::all_bytes(bytes, |b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn masks_sensitive_params() {
        assert_eq!(
            mask_query("/a?access_token=abc&x=1&Token=t&code=c&keep=key"),
            "/a?access_token=***&x=1&Token=***&code=***&keep=key"
        );
        assert_eq!(mask_query("/a"), "/a");
        assert!(mask_query(&format!("/{}", "a".repeat(5000))).len() < 2100);
    }

    #[test]
    fn masks_configured_params() {
        let extra = ["Session".to_owned(), "sig".to_owned()];
        assert_eq!(
            mask_query_with("/a?session=1&SIG=2&token=3&signature=4&sig", &extra),
            "/a?session=***&SIG=***&token=***&signature=4&sig=***"
        );
        assert_eq!(mask_query_with("/a?session=1", &[]), "/a?session=1");
    }

    #[test]
    fn masked_params_are_validated() {
        let with = |names: &[&str]| AuditConfig {
            mask_query_params: names.iter().map(|n| (*n).to_owned()).collect(),
        };
        assert!(with(&["session", "X-Sig"]).validate().is_ok());
        for bad in ["", "a=b", "a&b", "a b", "a#", &"x".repeat(129)] {
            let err = with(&["ok", bad]).validate().expect_err(bad);
            assert_eq!(err.key, "gateway.audit.mask_query_params[1]", "{bad}");
        }
        let many: Vec<String> = (0..=MAX_MASKED_PARAMS).map(|i| format!("p{i}")).collect();
        let err = AuditConfig {
            mask_query_params: many,
        }
        .validate()
        .expect_err("too many");
        assert_eq!(err.key, "gateway.audit.mask_query_params");
    }

    #[test]
    fn time_format() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let far = UNIX_EPOCH + Duration::from_secs(253_402_300_799) + Duration::from_millis(9);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59.009Z");
        let farther = far + Duration::from_secs(1);
        assert_eq!(rfc3339(farther), "10000-01-01T00:00:00.009Z");
    }

    /// The log format: field names, order, and what the shared parts are written as.
    #[test]
    fn json_line() {
        let principal = Principal {
            roles: Vec::new(),
            groups: Vec::new(),
            subject: "alice".into(),
            client_id: Some("app".into()),
            scopes: vec!["orders:read".into()],
            audiences: vec!["api://orders".into()],
            issuer: "https://issuer".into(),
            expires_at: 2_000_000_000,
            token_id: Some("t1".into()),
            method: rampart_guard::AuthMethod::Jwt,
        };
        let rec = AuditRecord {
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            request_id: "r1".into(),
            traceparent: "00-aa-bb-01".into(),
            route: Some(Arc::from("orders")),
            method: http::Method::POST,
            path: "/orders?code=***".into(),
            principal: Some(Arc::new(principal)),
            decision: "allow",
            reason: "allowed",
            status: 200,
            latency_ms: 3,
            upstream: Some(Arc::from("http://127.0.0.1:7001")),
            policy: None,
        };
        let mut lines = Vec::new();
        append_record(&mut lines, &rec);
        assert_eq!(
            String::from_utf8(lines).unwrap(),
            concat!(
                r#"{"time":"2023-11-14T22:13:20.123Z","request_id":"r1","traceparent":"00-aa-bb-01","#,
                r#""route":"orders","method":"POST","path":"/orders?code=***","principal":"alice","#,
                r#""client_id":"app","decision":"allow","reason":"allowed","status":200,"#,
                r#""latency_ms":3,"upstream":"http://127.0.0.1:7001"}"#,
                "\n"
            )
        );
        let anonymous = AuditRecord {
            principal: None,
            route: None,
            upstream: None,
            policy: None,
            ..rec
        };
        let line = serde_json::to_value(&anonymous).unwrap();
        assert_eq!(line["principal"], serde_json::Value::Null);
        assert_eq!(line["client_id"], serde_json::Value::Null);
        assert_eq!(line["route"], serde_json::Value::Null);
        assert!(
            line.get("policy").is_none(),
            "absent without [gateway.policy]"
        );
        let decided = AuditRecord {
            policy: Some(Arc::from("read-orders,audit")),
            ..anonymous
        };
        let line = serde_json::to_value(&decided).unwrap();
        assert_eq!(line["policy"], "read-orders,audit");
    }

    #[tokio::test]
    async fn full_channel_drops_without_blocking() {
        let (sink, mut rx) = AuditSink::channel(1);
        let rec = AuditRecord {
            time: UNIX_EPOCH,
            request_id: "1".into(),
            traceparent: String::new(),
            route: None,
            method: http::Method::GET,
            path: "/".into(),
            principal: None,
            decision: "deny",
            reason: "x",
            status: 404,
            latency_ms: 0,
            upstream: None,
            policy: None,
        };
        sink.record(rec.clone());
        sink.record(AuditRecord {
            request_id: "2".into(),
            ..rec
        });
        assert_eq!(rx.recv().await.map(|r| r.request_id), Some("1".into()));
        assert!(rx.try_recv().is_err());
    }
}

#[cfg(test)]
mod line_properties {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// Text with what JSON must escape (quotes, backslashes, every control character) among
    /// ASCII, DEL and non-ASCII characters.
    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                (0u8..0x20).prop_map(char::from),
                Just('"'),
                Just('\\'),
                Just('\u{7f}'),
                any::<char>(),
                (b' '..=b'~').prop_map(char::from),
            ],
            0..40,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn principal(subject: String, client_id: Option<String>) -> Principal {
        Principal {
            subject,
            client_id,
            scopes: Vec::new(),
            roles: Vec::new(),
            groups: Vec::new(),
            audiences: Vec::new(),
            issuer: String::new(),
            expires_at: 0,
            token_id: None,
            method: rampart_guard::AuthMethod::Jwt,
        }
    }

    proptest! {
        /// The line written directly is byte for byte what serde_json makes of the record.
        #[test]
        fn direct_line_is_serde_jsons(
            millis in 0u64..8_000_000_000_000,
            ids in (text(), text()),
            route in proptest::option::of(text()),
            method in prop_oneof![Just(http::Method::GET), Just(http::Method::DELETE),
                "[A-Z]{1,12}".prop_map(|m| http::Method::from_bytes(m.as_bytes()).unwrap())],
            path in text(),
            who in proptest::option::of((text(), proptest::option::of(text()))),
            allowed in any::<bool>(),
            status in 100u16..1000,
            latency_ms in any::<u64>(),
            upstream in proptest::option::of(text()),
            policy in proptest::option::of(text()),
        ) {
            let record = AuditRecord {
                time: UNIX_EPOCH + Duration::from_millis(millis),
                request_id: ids.0,
                traceparent: ids.1,
                route: route.map(Arc::from),
                method,
                path,
                principal: who.map(|(sub, client)| Arc::new(principal(sub, client))),
                decision: if allowed { "allow" } else { "deny" },
                reason: if allowed { "allowed" } else { "forbidden" },
                status,
                latency_ms,
                upstream: upstream.map(Arc::from),
                policy: policy.map(Arc::from),
            };
            let mut direct = Vec::new();
            append_record(&mut direct, &record);
            let mut expected = serde_json::to_vec(&record).unwrap();
            expected.push(b'\n');
            prop_assert_eq!(String::from_utf8(direct).unwrap(), String::from_utf8(expected).unwrap());
        }
    }
}
