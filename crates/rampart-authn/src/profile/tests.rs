#![allow(clippy::unwrap_used)]

use rampart_crypto::ExposeSecret;

use super::*;

fn profile() -> Profile {
    Profile {
        email: "Alice@Example.com".to_owned(),
        name: Some("Alice Smith".to_owned()),
        phone: Some("+33 6 12 34 56 78".to_owned()),
        email_verified: true,
    }
}

fn vault() -> ProfileVault {
    ProfileVault::new(&MasterKey::generate().unwrap())
}

#[test]
fn seal_open_round_trip() {
    let v = vault();
    let p = profile();
    let sealed = v.seal("user-1", &p).unwrap();
    // Nothing readable in the blob.
    let blob = String::from_utf8_lossy(&sealed);
    assert!(!blob.contains("Alice") && !blob.contains("Example"));
    assert_eq!(v.open("user-1", &sealed).unwrap(), p);

    let minimal = Profile {
        email: "b@c".to_owned(),
        name: None,
        phone: None,
        email_verified: false,
    };
    let sealed = v.seal("user-2", &minimal).unwrap();
    assert_eq!(v.open("user-2", &sealed).unwrap(), minimal);
}

#[test]
fn wrong_user_or_key_fails() {
    let v = vault();
    let sealed = v.seal("user-1", &profile()).unwrap();
    assert_eq!(v.open("user-2", &sealed), Err(VaultError::Open));
    assert_eq!(v.open("", &sealed), Err(VaultError::Open));
    assert_eq!(vault().open("user-1", &sealed), Err(VaultError::Open));
    let mut tampered = sealed.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(v.open("user-1", &tampered), Err(VaultError::Open));
    assert_eq!(v.open("user-1", &sealed[..10]), Err(VaultError::Open));
    assert_eq!(
        v.open(
            "user-1",
            &vec![0u8; MAX_PROFILE_BYTES + ENVELOPE_OVERHEAD + 1]
        ),
        Err(VaultError::TooLarge)
    );
}

#[test]
fn profile_size_is_bounded() {
    let v = vault();
    let big = Profile {
        name: Some("x".repeat(MAX_PROFILE_BYTES)),
        ..profile()
    };
    assert_eq!(v.seal("u", &big), Err(VaultError::TooLarge));
}

#[test]
fn secrets_bound_kind_and_user() {
    let v = vault();
    let secret = b"12345678901234567890";
    let sealed = v.seal_secret("totp", "user-1", secret).unwrap();
    assert_eq!(
        &v.open_secret("totp", "user-1", &sealed).unwrap()[..],
        secret
    );
    assert_eq!(
        v.open_secret("totp", "user-2", &sealed),
        Err(VaultError::Open)
    );
    assert_eq!(
        v.open_secret("webauthn", "user-1", &sealed),
        Err(VaultError::Open)
    );
    // The kind/user boundary is unambiguous.
    let a = v.seal_secret("ab", "c", secret).unwrap();
    assert_eq!(v.open_secret("a", "bc", &a), Err(VaultError::Open));
    // A profile blob is not a secret blob and vice versa.
    let p = v.seal("user-1", &profile()).unwrap();
    assert_eq!(v.open_secret("", "user-1", &p), Err(VaultError::Open));
    assert_eq!(v.open("user-1", &sealed), Err(VaultError::Open));
    assert_eq!(
        v.seal_secret("k", "u", &vec![0u8; MAX_SECRET_BYTES + 1]),
        Err(VaultError::TooLarge)
    );
}

#[test]
fn email_index() {
    let master = MasterKey::generate().unwrap();
    let v1 = ProfileVault::new(&master);
    let v2 =
        ProfileVault::new(&MasterKey::from_base64(master.to_base64().expose_secret()).unwrap());
    let other = vault();
    let e = normalize_email("  Alice@Example.COM ").unwrap();
    assert_eq!(v1.email_index(&e), v1.email_index(&e));
    assert_eq!(v1.email_index(&e), v2.email_index(&e));
    assert_ne!(v1.email_index(&e), other.email_index(&e));
    assert_ne!(v1.email_index(&e), v1.email_index("bob@example.com"));

    // It is HMAC-SHA256 under the documented derived key.
    let key = master.derive_key(EMAIL_INDEX_PURPOSE);
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key[..]), e.as_bytes());
    assert_eq!(&v1.email_index(&e)[..], expected.as_ref());
}

#[test]
fn debug_is_redacted() {
    let p = profile();
    let dbg = format!("{p:?}");
    for secret in ["Alice", "Example", "+33"] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
    assert!(dbg.contains("email_verified: true"));
    assert_eq!(format!("{:?}", vault()), "ProfileVault([REDACTED])");
}

#[test]
fn email_normalization() {
    let ok = [
        ("Alice@Example.com", "alice@example.com"),
        ("  bob@example.org\n", "bob@example.org"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
        ("x@y", "x@y"),
        ("ÉLODIE@exemple.fr", "élodie@exemple.fr"),
    ];
    for (input, expected) in ok {
        assert_eq!(normalize_email(input).as_deref(), Some(expected), "{input}");
    }
    let long_local = format!("{}@example.com", "a".repeat(250));
    let bad = [
        "",
        "   ",
        "alice",
        "@example.com",
        "alice@",
        "a@b@c",
        "al ice@example.com",
        "alice@exa\tmple.com",
        "alice@example.com\u{0}",
        "alice\u{200b}@example.com\u{7f}",
        long_local.as_str(),
    ];
    for input in bad {
        assert_eq!(normalize_email(input), None, "{input:?}");
    }
    let max = format!("{}@example.com", "a".repeat(254 - 12));
    assert_eq!(max.len(), 254);
    assert!(normalize_email(&max).is_some());
    assert_eq!(normalize_email(&"A".repeat(100_000)), None);
}

#[test]
fn username_normalization() {
    let ok = [
        ("Alice", "alice"),
        ("  bob.smith_2-x ", "bob.smith_2-x"),
        ("carol@example.com", "carol@example.com"),
        ("a", "a"),
    ];
    for (input, expected) in ok {
        assert_eq!(
            normalize_username(input).as_deref(),
            Some(expected),
            "{input}"
        );
    }
    let too_long = "a".repeat(65);
    let bad = [
        "",
        "  ",
        "al ice",
        "alice!",
        "élodie",
        "\u{212a}evin", // Kelvin sign: would lower-case to "kevin"
        "ali\u{0}ce",
        "a/b",
        too_long.as_str(),
    ];
    for input in bad {
        assert_eq!(normalize_username(input), None, "{input:?}");
    }
    assert!(normalize_username(&"a".repeat(64)).is_some());
}
