//! Header values written by the gateway itself (addresses, numbers), formatted on the stack:
//! the value's own buffer is the only allocation.

use std::fmt::Display;
use std::io::Write;

use http::HeaderValue;

/// The longest value formatted here (an IPv6 address needs 45 bytes, a `u64` 20).
const MAX_LEN: usize = 64;

/// `value` displayed as a header value; `None` if longer than 64 bytes or not a valid header
/// value.
pub(crate) fn formatted_value(value: impl Display) -> Option<HeaderValue> {
    let mut buf = [0u8; MAX_LEN];
    let mut rest = &mut buf[..];
    write!(rest, "{value}").ok()?;
    let len = MAX_LEN - rest.len();
    HeaderValue::from_bytes(&buf[..len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_addresses() {
        for v in [0, 7, 10, 99, 100, 4_096, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(formatted_value(v), Some(HeaderValue::from(v)), "{v}");
        }
        let ip: std::net::IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap();
        assert_eq!(
            formatted_value(ip).unwrap(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"
        );
        assert_eq!(formatted_value("x".repeat(65)), None);
        assert_eq!(formatted_value("a\nb"), None);
    }
}
