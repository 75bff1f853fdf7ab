#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const RFC6238: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/totp/rfc6238.txt"
);

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Collects the hex seed of `String <name> = "..." + "...";` in Appendix A.
fn seed(text: &str, name: &str) -> Vec<u8> {
    let start = text
        .find(&format!("String {name} = "))
        .unwrap_or_else(|| panic!("seed {name} not found"));
    let rest = &text[start..];
    let end = rest.find(';').unwrap();
    let hexstr: String = rest[..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .concat();
    hex(&hexstr)
}

/// Rows `|  59  |  1970-01-01  | 0000000000000001 | 94287082 |  SHA1  |` of
/// Appendix B, Table 1.
fn table(text: &str) -> Vec<(u64, String, TotpAlgorithm)> {
    let appendix = &text[text.find("Appendix B.  Test Vectors").unwrap()..];
    let mut rows = Vec::new();
    for line in appendix.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() != 7 {
            continue;
        }
        let Ok(time) = cells[1].parse::<u64>() else {
            continue;
        };
        let algorithm = match cells[5] {
            "SHA1" => TotpAlgorithm::Sha1,
            "SHA256" => TotpAlgorithm::Sha256,
            "SHA512" => TotpAlgorithm::Sha512,
            other => panic!("unknown mode {other}"),
        };
        // The step column must agree with T = floor(time / 30).
        assert_eq!(u64::from_str_radix(cells[3], 16).unwrap(), time / 30);
        rows.push((time, cells[4].to_owned(), algorithm));
    }
    rows
}

#[test]
fn rfc6238_vectors() {
    let text =
        std::fs::read_to_string(RFC6238).unwrap_or_else(|e| panic!("cannot read {RFC6238}: {e}"));
    let sha1 = TotpSecret::from_bytes(&seed(&text, "seed")).unwrap();
    let sha256 = TotpSecret::from_bytes(&seed(&text, "seed32")).unwrap();
    let sha512 = TotpSecret::from_bytes(&seed(&text, "seed64")).unwrap();
    assert_eq!(sha1.as_bytes(), b"12345678901234567890");
    assert_eq!(sha256.as_bytes().len(), 32);
    assert_eq!(sha512.as_bytes().len(), 64);

    let rows = table(&text);
    assert_eq!(rows.len(), 18, "Table 1 has 6 times x 3 modes");
    for (time, expected, algorithm) in rows {
        let secret = match algorithm {
            TotpAlgorithm::Sha1 => &sha1,
            TotpAlgorithm::Sha256 => &sha256,
            TotpAlgorithm::Sha512 => &sha512,
        };
        assert_eq!(
            code_at(secret, algorithm, 8, time).unwrap(),
            expected,
            "{algorithm:?} at {time}"
        );
        // The 6-digit code is the last 6 digits of the 8-digit one.
        if algorithm == TotpAlgorithm::Sha1 {
            assert_eq!(generate_code(secret, time), expected[2..]);
        }
    }
}

#[test]
fn code_at_checks_digits() {
    let s = TotpSecret::generate().unwrap();
    assert_eq!(
        code_at(&s, TotpAlgorithm::Sha1, 5, 0),
        Err(TotpError::InvalidDigits)
    );
    assert_eq!(
        code_at(&s, TotpAlgorithm::Sha1, 9, 0),
        Err(TotpError::InvalidDigits)
    );
    assert_eq!(code_at(&s, TotpAlgorithm::Sha256, 7, 0).unwrap().len(), 7);
}

#[test]
fn secret_lengths() {
    assert_eq!(
        TotpSecret::from_bytes(&[0; 15]).unwrap_err(),
        TotpError::InvalidSecretLength
    );
    assert_eq!(
        TotpSecret::from_bytes(&[0; 65]).unwrap_err(),
        TotpError::InvalidSecretLength
    );
    assert!(TotpSecret::from_bytes(&[0; 16]).is_ok());
    let a = TotpSecret::generate().unwrap();
    let b = TotpSecret::generate().unwrap();
    assert_eq!(a.as_bytes().len(), SECRET_BYTES);
    assert_ne!(a.as_bytes(), b.as_bytes());
    assert_eq!(format!("{a:?}"), "TotpSecret([REDACTED])");
}

#[test]
fn base32() {
    // RFC 4648 section 10, without padding.
    for (input, expected) in [
        ("", ""),
        ("f", "MY"),
        ("fo", "MZXQ"),
        ("foo", "MZXW6"),
        ("foob", "MZXW6YQ"),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI"),
    ] {
        assert_eq!(base32_encode(input.as_bytes()), expected);
    }
    let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    assert_eq!(s.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

#[test]
fn window_and_replay_step() {
    let s = TotpSecret::generate().unwrap();
    let now = 1_700_000_015; // step 56_666_667
    let step = i64::try_from(now / 30).unwrap();
    let code_now = generate_code(&s, now);
    assert_eq!(verify_code(&s, &code_now, now), Some(step));

    // Previous and next steps are accepted, and report their own step.
    let prev = generate_code(&s, now - 30);
    let next = generate_code(&s, now + 30);
    if prev != code_now && next != code_now && prev != next {
        assert_eq!(verify_code(&s, &prev, now), Some(step - 1));
        assert_eq!(verify_code(&s, &next, now), Some(step + 1));
    }

    // Two steps away: refused (unless, by a 1e-6 chance, it collides).
    for far in [now - 60, now + 60, now - 3600] {
        let code = generate_code(&s, far);
        let window: Vec<String> = [now - 30, now, now + 30]
            .iter()
            .map(|&t| generate_code(&s, t))
            .collect();
        if !window.contains(&code) {
            assert_eq!(verify_code(&s, &code, now), None, "code of {far}");
        }
    }
}

#[test]
fn fixed_secret_window() {
    // Deterministic check with the RFC seed: 1111111109 is step 0x23523EC.
    let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let t = 1_111_111_109;
    assert_eq!(generate_code(&s, t), "081804");
    assert_eq!(verify_code(&s, "081804", t), Some(0x0235_23EC));
    assert_eq!(verify_code(&s, "081804", t + 30), Some(0x0235_23EC));
    assert_eq!(verify_code(&s, "081804", t - 30), Some(0x0235_23EC));
    assert_eq!(verify_code(&s, "081804", t + 60), None);
    assert_eq!(verify_code(&s, "081804", t - 60), None);
    // 1111111111 is the next step, code 050471 (last 6 of 14050471).
    assert_eq!(verify_code(&s, "050471", t), Some(0x0235_23ED));
}

#[test]
fn code_format() {
    let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let t = 1_111_111_109;
    assert_eq!(verify_code(&s, "081 804", t), Some(0x0235_23EC));
    assert_eq!(verify_code(&s, " 081804 ", t), Some(0x0235_23EC));
    for bad in [
        "",
        "81804",
        "0818040",
        "+81804",
        "-81804",
        "08180a",
        "０８１８０４",
        "0818041",
        "081804\0",
    ] {
        assert_eq!(verify_code(&s, bad, t), None, "{bad:?}");
    }
    assert_eq!(verify_code(&s, &" ".repeat(1000), t), None);
}

#[test]
fn early_times_do_not_underflow() {
    let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let code = generate_code(&s, 0);
    assert_eq!(verify_code(&s, &code, 0), Some(0));
    // Steps that do not fit the arithmetic are skipped, not a panic.
    let _ = verify_code(&s, "000000", u64::MAX);
    let _ = generate_code(&s, u64::MAX);
}

#[test]
fn provisioning_uri_format() {
    let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let uri = provisioning_uri(&s, "Rampart Corp", "alice@example.com");
    assert_eq!(
        uri,
        "otpauth://totp/Rampart%20Corp:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Rampart%20Corp&algorithm=SHA1&digits=6&period=30"
    );
    // Colons cannot break the label.
    let uri = provisioning_uri(&s, "a:b", "c:d\n");
    assert!(uri.starts_with("otpauth://totp/ab:cd?"), "{uri}");

    // totp-rs parses it back to the same parameters.
    let parsed = Totp::from_url(provisioning_uri(&s, "Rampart", "bob")).unwrap();
    assert_eq!(parsed.secret().as_ref(), s.as_bytes());
    assert_eq!(parsed.digits(), 6);
    assert_eq!(parsed.step(), 30);
    assert_eq!(parsed.algorithm(), Algorithm::SHA1);
    assert_eq!(parsed.issuer(), Some("Rampart"));
    assert_eq!(parsed.account_name(), "bob");
    assert_eq!(parsed.generate(1_111_111_109).to_string(), "081804");
}
