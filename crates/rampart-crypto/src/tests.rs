use super::*;

fn key() -> MasterKey {
    MasterKey::generate().unwrap()
}

fn is_open_err(r: Result<Zeroizing<Vec<u8>>, CryptoError>) -> bool {
    matches!(r, Err(CryptoError::Open))
}

#[test]
fn seal_open_round_trip() {
    let env = key().envelope();
    for pt in [&b""[..], b"x", b"hello world", &[7u8; 4096][..]] {
        let sealed = env.seal(pt, b"signing-key:k1").unwrap();
        assert_eq!(sealed.len(), pt.len() + ENVELOPE_OVERHEAD);
        assert_eq!(sealed[0], 0x01);
        let opened = env.open(&sealed, b"signing-key:k1").unwrap();
        assert_eq!(&opened[..], pt);
    }
}

#[test]
fn clone_of_envelope_opens() {
    let env = key().envelope();
    let sealed = env.seal(b"data", b"ctx").unwrap();
    let env2 = env.clone();
    drop(env);
    assert_eq!(&env2.open(&sealed, b"ctx").unwrap()[..], b"data");
}

#[test]
fn same_master_key_from_base64_opens() {
    let k = key();
    let sealed = k.envelope().seal(b"secret", b"ctx").unwrap();
    let k2 = MasterKey::from_base64(k.to_base64().expose_secret()).unwrap();
    assert_eq!(&k2.envelope().open(&sealed, b"ctx").unwrap()[..], b"secret");
}

#[test]
fn open_wrong_context_fails() {
    let env = key().envelope();
    let sealed = env.seal(b"secret", b"signing-key:k1").unwrap();
    assert!(is_open_err(env.open(&sealed, b"signing-key:k2")));
    assert!(is_open_err(env.open(&sealed, b"")));
}

#[test]
fn open_wrong_master_key_fails() {
    let sealed = key().envelope().seal(b"secret", b"ctx").unwrap();
    assert!(is_open_err(key().envelope().open(&sealed, b"ctx")));
}

#[test]
fn every_bit_flip_fails() {
    let env = key().envelope();
    let sealed = env.seal(b"a short secret value", b"ctx").unwrap();
    for i in 0..sealed.len() {
        for bit in 0..8 {
            let mut t = sealed.clone();
            t[i] ^= 1 << bit;
            assert!(is_open_err(env.open(&t, b"ctx")), "byte {i} bit {bit}");
        }
    }
}

#[test]
fn truncated_and_extended_inputs_fail() {
    let env = key().envelope();
    let sealed = env.seal(b"secret", b"ctx").unwrap();
    for n in 0..sealed.len() {
        assert!(is_open_err(env.open(&sealed[..n], b"ctx")), "len {n}");
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(is_open_err(env.open(&longer, b"ctx")));
    assert!(is_open_err(env.open(&[0u8; 200], b"ctx")));
    let mut v2 = sealed;
    v2[0] = 0x02;
    assert!(is_open_err(env.open(&v2, b"ctx")));
}

#[test]
fn seals_are_randomized() {
    let env = key().envelope();
    let a = env.seal(b"same", b"ctx").unwrap();
    let b = env.seal(b"same", b"ctx").unwrap();
    assert_ne!(a, b);
    // Different wrap nonce, wrapped DEK and data nonce.
    assert_ne!(a[1..13], b[1..13]);
    assert_ne!(a[13..61], b[13..61]);
    assert_ne!(a[61..73], b[61..73]);
}

#[test]
fn from_base64_accepts_formats() {
    let k = key();
    let url = k.to_base64();
    let url = url.expose_secret();
    assert_eq!(url.len(), 43);
    assert!(!url.contains('='));
    let raw = URL_SAFE_NO_PAD.decode(url).unwrap();
    let std_padded = base64::engine::general_purpose::STANDARD.encode(&raw);
    let url_padded = base64::engine::general_purpose::URL_SAFE.encode(&raw);
    let std_nopad = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw);
    for s in [
        url.to_string(),
        format!("  {url}\n"),
        std_padded,
        url_padded,
        std_nopad,
    ] {
        let k2 = MasterKey::from_base64(&s).unwrap();
        assert_eq!(k2.to_base64().expose_secret(), url);
    }
}

#[test]
fn from_base64_rejects_bad_input() {
    let enc = |n: usize| URL_SAFE_NO_PAD.encode(vec![1u8; n]);
    for n in [0usize, 1, 16, 31, 33, 64] {
        assert!(
            matches!(
                MasterKey::from_base64(&enc(n)),
                Err(CryptoError::InvalidMasterKey(_))
            ),
            "len {n}"
        );
    }
    for s in ["", "   ", "not base64 at all!!", "%%%%"] {
        assert!(matches!(
            MasterKey::from_base64(s),
            Err(CryptoError::InvalidMasterKey(_))
        ));
    }
    // The error message does not echo the input.
    let bad = "c2VjcmV0LXNlY3JldC1zZWNyZXQ";
    let msg = MasterKey::from_base64(bad).unwrap_err().to_string();
    assert!(!msg.contains(bad));
}

#[test]
fn load_or_create_creates_0600_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let (k1, created) = MasterKey::load_or_create(&path).unwrap();
    assert!(created);
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let contents = fs::read_to_string(&path).unwrap();
    assert!(contents.ends_with('\n'));
    assert_eq!(contents.trim(), k1.to_base64().expose_secret());

    let (k2, created) = MasterKey::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(
        k1.to_base64().expose_secret(),
        k2.to_base64().expose_secret()
    );
    // No temporary files left behind.
    let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn load_or_create_refuses_insecure_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let k = key();
    fs::write(&path, format!("{}\n", k.to_base64().expose_secret())).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        match MasterKey::load_or_create(&path) {
            Err(CryptoError::InsecurePermissions { mode: m, path: p }) => {
                assert_eq!(m, mode);
                assert_eq!(p, path);
            }
            other => panic!("expected InsecurePermissions, got {other:?}"),
        }
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    let (k2, created) = MasterKey::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(
        k.to_base64().expose_secret(),
        k2.to_base64().expose_secret()
    );
}

#[test]
fn load_or_create_missing_parent_and_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope").join("master.key");
    assert!(matches!(
        MasterKey::load_or_create(&missing),
        Err(CryptoError::Io { .. })
    ));
    let path = dir.path().join("garbage.key");
    fs::write(&path, "garbage\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        MasterKey::load_or_create(&path),
        Err(CryptoError::InvalidMasterKey(_))
    ));
}

#[test]
fn debug_output_is_redacted() {
    let k = key();
    let b64 = k.to_base64();
    let raw = URL_SAFE_NO_PAD.decode(b64.expose_secret()).unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let byte_list = format!("{:?}", &raw[..]);

    let mk = format!("{k:?}");
    assert_eq!(mk, "MasterKey([REDACTED])");
    let env = format!("{:?}", k.envelope());
    let hasher = format!("{:?}", k.secret_hasher());
    let secret = generate_client_secret().unwrap();
    let secret_dbg = format!("{secret:?}");
    for s in [&mk, &env, &hasher, &secret_dbg, &format!("{b64:?}")] {
        assert!(s.contains("REDACTED"), "{s}");
        assert!(!s.contains(b64.expose_secret()));
        assert!(!s.contains(&hex));
        assert!(!s.contains(&byte_list));
        assert!(!s.contains(secret.expose_secret()));
    }
}

#[test]
fn client_secret_shape() {
    let a = generate_client_secret().unwrap();
    let b = generate_client_secret().unwrap();
    assert_eq!(a.expose_secret().len(), 43);
    assert_eq!(URL_SAFE_NO_PAD.decode(a.expose_secret()).unwrap().len(), 32);
    assert_ne!(a.expose_secret(), b.expose_secret());
}

#[test]
fn random_helpers() {
    let t = random_token(16).unwrap();
    assert_eq!(t.len(), 22);
    assert_eq!(random_token(0).unwrap(), "");
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    random_bytes(&mut a).unwrap();
    random_bytes(&mut b).unwrap();
    assert_ne!(a, b);
}

#[test]
fn identifiers_never_start_with_a_hyphen() {
    // With 1 in 64 starting with `-`, 2,000 draws miss every such token with p < 1e-13.
    let mut tokens_with_hyphen = 0;
    for _ in 0..2_000 {
        tokens_with_hyphen += usize::from(random_token(16).unwrap().starts_with('-'));
        let id = random_identifier(16).unwrap();
        assert_eq!(id.len(), 22);
        assert!(!id.starts_with('-'), "{id}");
    }
    assert!(tokens_with_hyphen > 0, "the draw did not exercise the case");
}

#[test]
fn hasher_verify() {
    let k = key();
    let h = k.secret_hasher();
    let digest = h.hash(b"client-secret");
    assert_eq!(digest, h.hash(b"client-secret"));
    assert!(h.verify(b"client-secret", &digest));
    assert!(h.clone().verify(b"client-secret", &digest));
    assert!(!h.verify(b"client-secreT", &digest));
    assert!(!h.verify(b"client-secret", &digest[..31]));
    assert!(!h.verify(b"client-secret", b""));
    let mut bad = digest;
    bad[0] ^= 1;
    assert!(!h.verify(b"client-secret", &bad));
    // Keyed: another master key gives another hash.
    assert!(!key().secret_hasher().verify(b"client-secret", &digest));
    // Same master key, fresh hasher: same hash.
    assert_eq!(k.secret_hasher().hash(b"client-secret"), digest);
}

#[test]
fn derive_key_properties() {
    let k = key();
    let a1 = k.derive_key("a");
    let a2 = k.derive_key("a");
    let b = k.derive_key("b");
    assert_eq!(*a1, *a2);
    assert_ne!(*a1, *b);
    assert_ne!(*k.derive_key(""), *a1);
    assert_ne!(*key().derive_key("a"), *a1);
}

#[test]
fn derive_key_matches_rfc5869_hkdf_sha256() {
    // Independent computation of HKDF-SHA256 (one output block) with HMAC.
    let k = MasterKey::from_base64(&URL_SAFE_NO_PAD.encode([0x0bu8; 32])).unwrap();
    let salt = hmac::Key::new(hmac::HMAC_SHA256, b"rampart");
    let prk = hmac::sign(&salt, &[0x0bu8; 32]);
    let prk = hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref());
    let t1 = hmac::sign(&prk, b"rampart/v1/envelope-kek\x01");
    assert_eq!(&k.derive_key("envelope-kek")[..], t1.as_ref());
}

#[test]
fn constant_time_eq_works() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(constant_time_eq(b"", b""));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}

#[test]
fn types_are_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<MasterKey>();
    check::<Envelope>();
    check::<SecretHasher>();
    check::<CryptoError>();
}
