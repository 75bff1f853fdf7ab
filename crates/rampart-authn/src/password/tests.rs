#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future as _;
use std::time::Duration;

use super::*;

const FAST: Argon2Params = Argon2Params {
    m_cost_kib: 256,
    t_cost: 1,
    p_cost: 1,
};

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn hasher(params: Argon2Params, max_concurrent: usize, max_queued: usize) -> PasswordHasher {
    PasswordHasher::new(
        params,
        HashingLimits {
            max_concurrent,
            max_queued,
        },
    )
    .unwrap()
}

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/argon2/phc-reference-hashtests.json"
);

#[test]
fn defaults() {
    assert_eq!(
        Argon2Params::default(),
        Argon2Params {
            m_cost_kib: 19456,
            t_cost: 2,
            p_cost: 1
        }
    );
    let limits = HashingLimits::default();
    assert!(limits.max_concurrent >= 1);
    assert_eq!(limits.max_queued, 4 * limits.max_concurrent);
}

#[test]
fn invalid_config() {
    let limits = HashingLimits {
        max_concurrent: 0,
        max_queued: 1,
    };
    assert!(matches!(
        PasswordHasher::new(FAST, limits),
        Err(PasswordError::InvalidConfig(_))
    ));
    let too_small = Argon2Params {
        m_cost_kib: 1,
        ..FAST
    };
    assert!(matches!(
        PasswordHasher::new(too_small, HashingLimits::default()),
        Err(PasswordError::InvalidConfig(_))
    ));
    let too_big = Argon2Params {
        m_cost_kib: MAX_M_COST_KIB + 1,
        ..FAST
    };
    assert!(matches!(
        PasswordHasher::new(too_big, HashingLimits::default()),
        Err(PasswordError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn default_params_round_trip() {
    let h = PasswordHasher::new(Argon2Params::default(), HashingLimits::default()).unwrap();
    let phc = h
        .hash(&secret("correct horse battery staple"))
        .await
        .unwrap();
    assert!(
        phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "unexpected PHC string {phc}"
    );
    let ok = h
        .verify(Some(&phc), &secret("correct horse battery staple"))
        .await
        .unwrap();
    assert_eq!(
        ok,
        PasswordCheck {
            valid: true,
            needs_rehash: false
        }
    );
}

#[tokio::test]
async fn hash_and_verify() {
    let h = hasher(FAST, 2, 8);
    assert_eq!(h.params(), FAST);
    let phc = h.hash(&secret("hunter2hunter2")).await.unwrap();
    let phc2 = h.hash(&secret("hunter2hunter2")).await.unwrap();
    assert_ne!(phc, phc2, "salts must differ");
    assert!(phc.starts_with("$argon2id$v=19$m=256,t=1,p=1$"));

    let ok = h
        .verify(Some(&phc), &secret("hunter2hunter2"))
        .await
        .unwrap();
    assert!(ok.valid);
    assert!(!ok.needs_rehash);
    let bad = h
        .verify(Some(&phc), &secret("hunter2hunter3"))
        .await
        .unwrap();
    assert!(!bad.valid);
    assert_eq!(h.in_flight(), 0);
}

#[tokio::test]
async fn unknown_user_is_never_valid() {
    let h = hasher(FAST, 1, 1);
    let r = h.verify(None, &secret("anything at all")).await.unwrap();
    assert_eq!(
        r,
        PasswordCheck {
            valid: false,
            needs_rehash: false
        }
    );
    // The dummy hash uses the current parameters.
    assert_eq!(
        argon2::Params::try_from(&h.inner.dummy).unwrap().m_cost(),
        FAST.m_cost_kib
    );
    assert!(!format!("{h:?}").contains("argon2id"));
}

#[tokio::test]
async fn needs_rehash_when_params_change() {
    let old = hasher(FAST, 1, 1);
    let phc = old.hash(&secret("a long enough password")).await.unwrap();
    let new = hasher(
        Argon2Params {
            m_cost_kib: 512,
            ..FAST
        },
        1,
        1,
    );
    let r = new
        .verify(Some(&phc), &secret("a long enough password"))
        .await
        .unwrap();
    assert_eq!(
        r,
        PasswordCheck {
            valid: true,
            needs_rehash: true
        }
    );
}

#[tokio::test]
async fn reference_vectors() {
    let text =
        std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("cannot read {VECTORS}: {e}"));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let current = Argon2Params {
        m_cost_kib: 256,
        t_cost: 2,
        p_cost: 1,
    };
    let h = hasher(current, 2, 16);
    let mut checked = 0;
    for v in doc["positive"].as_array().unwrap() {
        // Keep the test fast in debug builds: small memory costs only.
        if v["m_cost_kib"].as_u64().unwrap() > 4096 {
            continue;
        }
        let phc = v["expected_phc"].as_str().unwrap();
        let pw = secret(v["password"].as_str().unwrap());
        let r = h.verify(Some(phc), &pw).await.unwrap();
        assert!(r.valid, "{phc}");
        let same = v["type"] == "argon2id" && v["parallelism"] == 1 && v["t_cost"] == 2;
        assert_eq!(r.needs_rehash, !same, "{phc}");
        let wrong = h.verify(Some(phc), &secret("wrong")).await.unwrap();
        assert!(!wrong.valid);
        checked += 1;
    }
    assert!(checked >= 4);
    for v in doc["negative_verify"].as_array().unwrap() {
        let phc = v["phc"].as_str().unwrap();
        let pw = secret(v["password"].as_str().unwrap());
        let r = h.verify(Some(phc), &pw).await;
        match v["expect"].as_str().unwrap() {
            "verify_mismatch" => assert!(!r.unwrap().valid, "{phc}"),
            _ => assert!(matches!(r, Err(PasswordError::InvalidHash)), "{phc}: {r:?}"),
        }
    }
}

#[tokio::test]
async fn invalid_stored_hashes() {
    let h = hasher(FAST, 1, 1);
    let pw = secret("whatever password");
    let long = format!("$argon2id$v=19$m=256,t=1,p=1${}", "A".repeat(600));
    for bad in [
        "",
        "not a hash",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
        // Memory cost above the maximum: refused before any work.
        "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=256,t=1000,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        &long,
    ] {
        let r = h.verify(Some(bad), &pw).await;
        assert!(matches!(r, Err(PasswordError::InvalidHash)), "{bad}: {r:?}");
    }
    assert_eq!(h.in_flight(), 0);
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_when_queue_full() {
    let h = hasher(FAST, 1, 1);
    // Occupy the only slot.
    let held = h.inner.semaphore.clone().try_acquire_owned().unwrap();

    let queued = {
        let h = h.clone();
        tokio::spawn(async move { h.verify(None, &secret("queued password")).await })
    };
    wait_until(|| h.inner.waiting.load(Ordering::Acquire) == 1).await;
    assert_eq!(h.in_flight(), 1);

    // Queue full: refused at once, not after waiting.
    let started = std::time::Instant::now();
    let r = h.hash(&secret("one too many")).await;
    assert!(matches!(r, Err(PasswordError::Busy)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(h.in_flight(), 1);

    drop(held);
    let r = queued.await.unwrap().unwrap();
    assert!(!r.valid);
    wait_until(|| h.in_flight() == 0).await;
    assert_eq!(h.inner.waiting.load(Ordering::Acquire), 0);
    assert!(h.hash(&secret("now there is room")).await.is_ok());
}

#[tokio::test]
async fn no_queue_means_busy_at_once() {
    let h = hasher(FAST, 1, 0);
    let held = h.inner.semaphore.clone().try_acquire_owned().unwrap();
    assert!(matches!(
        h.verify(None, &secret("x")).await,
        Err(PasswordError::Busy)
    ));
    drop(held);
    assert!(h.verify(None, &secret("x")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waiter_frees_its_place() {
    let h = hasher(FAST, 1, 1);
    let held = h.inner.semaphore.clone().try_acquire_owned().unwrap();
    let queued = {
        let h = h.clone();
        tokio::spawn(async move { h.verify(None, &secret("queued")).await })
    };
    wait_until(|| h.inner.waiting.load(Ordering::Acquire) == 1).await;
    queued.abort();
    wait_until(|| h.in_flight() == 0 && h.inner.waiting.load(Ordering::Acquire) == 0).await;
    drop(held);
    assert!(h.verify(None, &secret("x")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_jobs_within_limits_complete() {
    let h = hasher(FAST, 2, 64);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let pw = secret(&format!("password number {i}"));
            let phc = h.hash(&pw).await?;
            h.verify(Some(&phc), &pw).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap().valid);
    }
    assert_eq!(h.in_flight(), 0);
}

#[test]
fn no_runtime_is_an_error_not_a_panic() {
    let h = hasher(FAST, 1, 1);
    let pw = secret("x");
    let mut fut = std::pin::pin!(h.verify(None, &pw));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => assert!(matches!(r, Err(PasswordError::Hashing))),
        std::task::Poll::Pending => panic!("expected an immediate error"),
    }
    assert_eq!(h.in_flight(), 0);
}

// ---- policy ----

#[test]
fn shipped_list() {
    assert_eq!(common_password_count(), 30_000);
    let mut seen = HashSet::new();
    for line in COMMON_PASSWORDS.lines() {
        assert!(!line.is_empty());
        assert_eq!(line, line.to_lowercase());
        assert_eq!(line, line.trim());
        assert!(seen.insert(line), "duplicate {line}");
    }
    for p in ["password", "123456", "qwerty", "iloveyou", "trustno1"] {
        assert!(common_passwords().contains(p), "{p}");
    }
}

#[test]
fn length_limits() {
    assert_eq!(
        check_new_password("Xk9#mQ2$vL7", &[]),
        Err(PasswordRejection::TooShort { min: 12 })
    );
    // Counted in characters, not bytes.
    assert_eq!(
        check_new_password("ééééééééééé", &[]),
        Err(PasswordRejection::TooShort { min: 12 })
    );
    assert_eq!(check_new_password("Xk9#mQ2$vL7w", &[]), Ok(()));
    assert_eq!(check_new_password("ßxk9#mq2$vl7wé", &[]), Ok(()));
    let long = "Xk9#mQ2$vL7w".repeat(90);
    assert_eq!(
        check_new_password(&long, &[]),
        Err(PasswordRejection::TooLong { max: 1024 })
    );
    let max: String = "Xk9#mQ2$vL7w".repeat(86).chars().take(1024).collect();
    assert_eq!(max.len(), 1024);
    assert_eq!(check_new_password(&max, &[]), Ok(()));
}

#[test]
fn common_passwords_rejected() {
    for p in [
        "password1234",
        "PASSWORD1234",
        "password12345678",
        "Password!!!!!!!!",
        "qwertyuiop123",
        "iloveyou2024!",
        "Trustno1!!!!",
        "baseball 1234",
        "1qaz2wsx3edc",
    ] {
        // 1qaz2wsx3edc is in the list itself.
        assert_eq!(
            check_new_password(p, &[]),
            Err(PasswordRejection::Common),
            "{p}"
        );
    }
}

#[test]
fn trivial_patterns_rejected() {
    for p in [
        "aaaaaaaaaaaa",
        "!!!!!!!!!!!!",
        "abcdefghijklm",
        "ZYXWVUTSRQPONM",
        "123456789012",
        "987654321098",
        "abcabcabcabc",
        "abababababab",
        "1234123412341234",
        "aaaaaaaa1234",
        "abcdefgh!!!!",
        "ççççççççççççç",
    ] {
        assert_eq!(
            check_new_password(p, &[]),
            Err(PasswordRejection::Common),
            "{p}"
        );
    }
}

#[test]
fn good_passwords_accepted() {
    for p in [
        "correct horse battery staple",
        "Tr0ub4dor&3xyz",
        "k7f2q-9xm4t-bn3wz",
        "mon chat s'appelle Félix",
    ] {
        assert_eq!(check_new_password(p, &[]), Ok(()), "{p}");
    }
    // A short stem followed by digits is not flagged by the pattern rule.
    assert_eq!(check_new_password("Q8%#2@!9$&71", &[]), Ok(()));
}

#[test]
fn user_data_rejected() {
    let ctx = ["alice.smith", "alice.smith@example.com"];
    assert_eq!(
        check_new_password("my name is Alice.Smith!", &ctx),
        Err(PasswordRejection::ContainsUserData)
    );
    // The local part of an e-mail context string is checked too.
    assert_eq!(
        check_new_password("xx-jdoe1980-yy-zz", &["jdoe1980@example.org"]),
        Err(PasswordRejection::ContainsUserData)
    );
    // Context shorter than 4 characters is ignored.
    assert_eq!(
        check_new_password("bob is a fine builder", &["bob"]),
        Ok(())
    );
    assert_eq!(check_new_password("bob is a fine builder", &[""]), Ok(()));
    assert_eq!(
        check_new_password("the bobby tables saga", &["  BOBBY "]),
        Err(PasswordRejection::ContainsUserData)
    );
}

#[test]
fn rejection_messages_are_user_facing() {
    assert_eq!(
        PasswordRejection::TooShort { min: 12 }.to_string(),
        "the password must have at least 12 characters"
    );
    assert!(!PasswordError::Busy.to_string().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_devices_still_queue_when_the_ordinary_queue_is_full() {
    let h = hasher(FAST, 1, 1);
    let held = h.inner.semaphore.clone().try_acquire_owned().unwrap();
    let flood = {
        let h = h.clone();
        tokio::spawn(async move { h.verify(None, &secret("guess one")).await })
    };
    wait_until(|| h.inner.waiting.load(Ordering::Acquire) == 1).await;
    assert!(matches!(
        h.verify(None, &secret("guess two")).await,
        Err(PasswordError::Busy)
    ));
    let trusted = {
        let h = h.clone();
        tokio::spawn(async move { h.verify_trusted(None, &secret("the owner")).await })
    };
    wait_until(|| h.inner.waiting.load(Ordering::Acquire) == 2).await;
    // The reserve is bounded too.
    assert!(matches!(
        h.verify_trusted(None, &secret("a third")).await,
        Err(PasswordError::Busy)
    ));
    drop(held);
    assert!(flood.await.unwrap().is_ok());
    assert!(trusted.await.unwrap().is_ok());
}
