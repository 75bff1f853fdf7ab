//! Header values written by the gateway itself (addresses, numbers), formatted on the stack:
//! the value's own buffer is the only allocation. (`HeaderValue::from(u64)` allocates twice.)

use std::fmt::Display;
use std::io::Write;
use std::net::IpAddr;
use std::sync::LazyLock;

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

/// `n` in decimal, written digit by digit into the end of `buf` (20 bytes hold any `u64`):
/// without the formatter, for the values written on every request (rate-limit headers here,
/// numbers of the audit line).
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}

/// `n` in decimal as a header value (the rate-limit headers, three on every limited request).
/// Numbers below [`SMALL_NUMBERS`] (limits, remaining requests, seconds to reset) come from a
/// table and cost no allocation.
pub(crate) fn number_value(n: u64) -> HeaderValue {
    if let Some(v) = usize::try_from(n).ok().and_then(|i| SMALL.get(i)) {
        return v.clone();
    }
    // Digits only: always a valid value.
    HeaderValue::from_bytes(decimal(n, &mut [0; 20]))
        .unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// How many numbers [`number_value`] has ready-made.
const SMALL_NUMBERS: u64 = 1024;

/// The values of 0 to `SMALL_NUMBERS - 1`. Their digits are one string made once and kept for
/// the life of the process (under 3 KiB), so that each value is a static one: a static header
/// value clones without allocating, one made from bytes does not.
static SMALL: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    let mut digits = String::new();
    let mut ends = Vec::new();
    for n in 0..SMALL_NUMBERS {
        digits.extend(decimal(n, &mut [0; 20]).iter().map(|&b| char::from(b)));
        ends.push(digits.len());
    }
    let digits: &'static str = Box::leak(digits.into_boxed_str());
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let value = HeaderValue::from_static(&digits[start..end]);
            start = end;
            value
        })
        .collect()
});

/// `ip` as a header value (`X-Forwarded-For`). IPv4 addresses, one on every proxied request,
/// are written digit by digit: through `Display` they cost five formatter calls each.
pub(crate) fn address_value(ip: IpAddr) -> Option<HeaderValue> {
    let IpAddr::V4(v4) = ip else {
        return formatted_value(ip);
    };
    let mut buf = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            buf[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            buf[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        buf[len] = b'0' + octet % 10;
        len += 1;
    }
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
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "9.99.100.255",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(address_value(parsed).unwrap(), ip, "{ip}");
        }
        assert_eq!(formatted_value("a\nb"), None);
    }

    #[test]
    fn numbers_as_display_writes_them() {
        let mut n = 1u64;
        for _ in 0..64 {
            for v in [n - 1, n, n.saturating_add(1)] {
                assert_eq!(number_value(v), v.to_string().as_str());
            }
            n = n.saturating_mul(3);
        }
        assert_eq!(number_value(u64::MAX), u64::MAX.to_string().as_str());
        assert_eq!(number_value(0), "0");
        // Every value of the table, and the first ones after it.
        for v in 0..SMALL_NUMBERS + 10 {
            assert_eq!(number_value(v), v.to_string().as_str());
        }
    }

    #[test]
    fn every_octet_as_display_writes_it() {
        for o in 0..=255u8 {
            let ip = IpAddr::from([o, 255 - o, o / 3, o.wrapping_mul(7)]);
            assert_eq!(address_value(ip).unwrap(), ip.to_string().as_str());
        }
    }
}
