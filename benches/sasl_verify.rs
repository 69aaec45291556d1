//! What one SMTP AUTH costs the built-in backend (`smtpd_sasl_type =
//! sluice`): verifying a password against each supported hash scheme, at
//! the costs `doveadm pw` and the argon2 crate use by default. This is CPU
//! that runs on the executor's blocking thread, never on a shard: the
//! numbers size `SASL_CONCURRENCY` and tell how many logins per second a
//! core can check.
//!
//! `cargo bench --bench sasl_verify`

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use criterion::{criterion_group, criterion_main, Criterion};
use sluice_engine::sasl::passwd_file::Hash;

/// `crypt.crypt("secret", "$6$saltsalt$")`: 5000 rounds, glibc's default.
const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

fn verify(c: &mut Criterion) {
    let sha512 = Hash::parse(&format!("{{SHA512-CRYPT}}{SHA512}")).expect("hash");
    let salt = SaltString::encode_b64(b"somesalt12345678").expect("salt");
    // argon2 0.5's default: m=19456 KiB, t=2, p=1 (OWASP's minimum).
    let phc = Argon2::default()
        .hash_password(b"secret", &salt)
        .expect("hash")
        .to_string();
    let argon = Hash::parse(&format!("{{ARGON2ID}}{phc}")).expect("hash");
    let mut g = c.benchmark_group("sasl_verify");
    g.sample_size(20);
    g.bench_function("sha512_crypt_5000_rounds", |b| {
        b.iter(|| assert!(sha512.verify("secret")))
    });
    g.bench_function("argon2id_m19456_t2_p1", |b| {
        b.iter(|| assert!(argon.verify("secret")))
    });
    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
