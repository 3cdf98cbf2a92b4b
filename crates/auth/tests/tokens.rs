//! Issue/verify round trips through the public API, including the key file and the JWKS JSON the relay fetches.

use std::path::Path;

use skytale_auth::{
    retire_signing_key, rotate_signing_key, FileStamp, KeyError, KeyRing, TokenError, TokenIssuer, TokenVerifier,
};
use skytale_proto::ChannelName;

fn channel(name: &str) -> ChannelName {
    ChannelName::parse(name).expect("valid test channel name")
}

#[test]
fn token_verifies_through_published_jwks_and_carries_grants() {
    let issuer = TokenIssuer::ephemeral().unwrap();
    let jwks_json = serde_json::to_string(&issuer.jwks()).unwrap();
    let verifier = TokenVerifier::from_jwks_json(&jwks_json).unwrap();

    let issued = issuer.issue("acct-1", "acme", vec!["other/team/room".to_owned()]).unwrap();
    let claims = verifier.verify_bearer(Some(&format!("Bearer {}", issued.token))).unwrap();

    assert_eq!(claims.sub, "acct-1");
    assert_eq!(claims.org, "acme");
    assert_eq!(claims.exp, issued.expires_at);
    assert!(claims.may_use_channel(&channel("acme/any/thing")));
    assert!(claims.may_use_channel(&channel("other/team/room")));
    assert!(!claims.may_use_channel(&channel("other/team/secret")));
}

#[test]
fn token_from_another_key_names_the_unknown_key() {
    let issuer = TokenIssuer::ephemeral().unwrap();
    let stranger = TokenIssuer::ephemeral().unwrap();
    let token = stranger.issue("acct", "acme", vec![]).unwrap().token;
    let kid = stranger.jwks().keys[0].common.key_id.clone().unwrap();
    assert_eq!(issuer.verifier().unwrap().verify(&token), Err(TokenError::UnknownKey(kid)));
}

#[test]
fn tampered_payload_has_a_bad_signature() {
    let issuer = TokenIssuer::ephemeral().unwrap();
    let token = issuer.issue("acct", "acme", vec![]).unwrap().token;
    let other = issuer.issue("acct", "evil", vec![]).unwrap().token;
    // Header and signature of the first token around the payload of the second.
    let parts: Vec<&str> = token.split('.').collect();
    let other_parts: Vec<&str> = other.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
    assert_eq!(issuer.verifier().unwrap().verify(&spliced), Err(TokenError::BadSignature));
}

#[test]
fn missing_and_malformed_tokens_are_named() {
    let verifier = TokenIssuer::ephemeral().unwrap().verifier().unwrap();
    assert_eq!(verifier.verify_bearer(None), Err(TokenError::Missing));
    assert_eq!(verifier.verify_bearer(Some("Basic abc")), Err(TokenError::Missing));
    assert!(matches!(verifier.verify("not-a-jwt"), Err(TokenError::Malformed(_))));
}

/// Every refusal is one sentence about the token, in the words of `TokenError`'s messages.
fn refusal(verifier: &TokenVerifier, token: &str) -> String {
    verifier.verify(token).expect_err("the token is refused").to_string()
}

#[test]
fn forged_algorithms_and_garbage_are_refused_in_plain_words() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    let issuer = TokenIssuer::ephemeral().unwrap();
    let verifier = issuer.verifier().unwrap();
    let good = issuer.issue("acct", "acme", vec![]).unwrap().token;
    let claims = good.split('.').nth(1).unwrap();

    // {"alg":"none","typ":"JWT"}: jsonwebtoken's own header parser answers "unknown variant `none`".
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    assert_eq!(refusal(&verifier, &unsigned), "token algorithm none is not accepted; expected EdDSA");
    assert_eq!(verifier.verify(&unsigned), Err(TokenError::WrongAlgorithm("none".to_owned())));

    let parsed = verifier.verify(&good).unwrap();
    let hmac = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &parsed, &EncodingKey::from_secret(b"k")).unwrap();
    assert_eq!(refusal(&verifier, &hmac), "token algorithm HS256 is not accepted; expected EdDSA");

    for (garbage, expected) in [
        ("", "malformed token: it is not a JWT (three base64url parts separated by dots)"),
        ("a.b", "malformed token: it is not a JWT (three base64url parts separated by dots)"),
        ("%%%.b.c", "malformed token: its header is not base64url"),
        // base64url of `[1,2]`.
        ("WzEsMl0.b.c", "malformed token: its header is not a JSON object with an `alg` text"),
    ] {
        assert_eq!(refusal(&verifier, garbage), expected, "for {garbage:?}");
    }
    // An EdDSA header without a key id.
    let no_kid = format!("eyJhbGciOiJFZERTQSJ9.{claims}.{}", good.split('.').nth(2).unwrap());
    assert_eq!(refusal(&verifier, &no_kid), "malformed token: its header names no key id (kid)");
}

#[test]
fn key_file_is_private_and_stable_across_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/signing.pem");
    let first = TokenIssuer::load_or_create(&path).unwrap();
    let token = first.issue("acct", "acme", vec![]).unwrap().token;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // A restarted API (same file) and a relay reading the file both accept the earlier token.
    let reloaded = TokenIssuer::load_or_create(&path).unwrap();
    assert!(reloaded.verifier().unwrap().verify(&token).is_ok());
    assert!(TokenVerifier::from_key_file(&path).unwrap().verify(&token).is_ok());
}

#[cfg(unix)]
#[test]
fn world_readable_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    TokenIssuer::load_or_create(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(TokenIssuer::load_or_create(&path), Err(KeyError::InsecurePermissions { .. })));
}

#[test]
fn key_set_without_usable_key_is_refused() {
    assert!(matches!(TokenVerifier::from_jwks_json(r#"{"keys": []}"#), Err(KeyError::InvalidKeySet(_))));
    let short_key = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"AAAA"}]}"#;
    assert!(matches!(TokenVerifier::from_jwks_json(short_key), Err(KeyError::InvalidKeySet(_))));
}

#[test]
fn expired_token_is_named_expired() {
    use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    let issuer = TokenIssuer::load_or_create(&path).unwrap();
    // Sign, with the issuer's own key, claims that expired an hour ago (well past the leeway).
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut claims = issuer.verifier().unwrap().verify(&issuer.issue("acct", "acme", vec![]).unwrap().token).unwrap();
    claims.iat -= 2 * 3600;
    claims.exp = claims.iat + 3600;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = issuer.jwks().keys[0].common.key_id.clone();
    let der = key.to_pkcs8_der().unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap();

    assert_eq!(issuer.verifier().unwrap().verify(&token), Err(TokenError::Expired));
    assert_eq!(TokenError::Expired.to_string(), "expired token: fetch a new one from the API");

    // Valid claims that only start in an hour (well past the leeway).
    let mut not_yet = serde_json::to_value(&claims).unwrap();
    not_yet["exp"] = (claims.iat + 4 * 3600).into();
    not_yet["nbf"] = (claims.iat + 3 * 3600).into();
    let token = jsonwebtoken::encode(&header, &not_yet, &EncodingKey::from_ed_der(der.as_bytes())).unwrap();
    let refused = issuer.verifier().unwrap().verify(&token);
    assert_eq!(refused, Err(TokenError::NotYetValid));
    assert!(refused.unwrap_err().to_string().starts_with("token not valid yet"));
}

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&json).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn jwks_kids(issuer: &TokenIssuer) -> Vec<String> {
    issuer.jwks().keys.iter().map(|key| key.common.key_id.clone().unwrap()).collect()
}

fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_ring_of_two_signs_with_the_newest_publishes_both_and_its_verifiers_accept_tokens_of_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    let before = TokenIssuer::load_or_create(&path).unwrap();
    let old_token = before.issue("acct", "acme", vec![]).unwrap().token;
    let old_kid = before.signing_kid().to_owned();

    let ring = rotate_signing_key(&path).unwrap();
    let new_kid = ring.signing_kid().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(ring.kids(), [old_kid.as_str(), new_kid.as_str()]);

    let after = TokenIssuer::load_or_create(&path).unwrap();
    assert_eq!(after.signing_kid(), new_kid);
    assert_eq!(jwks_kids(&after), [old_kid.clone(), new_kid.clone()]);
    let new_token = after.issue("acct", "acme", vec![]).unwrap().token;
    assert_eq!(kid_of(&new_token), new_kid);
    assert_eq!(kid_of(&old_token), old_kid);

    let from_jwks = TokenVerifier::from_jwks_json(&serde_json::to_string(&after.jwks()).unwrap()).unwrap();
    let from_file = TokenVerifier::from_key_file(&path).unwrap();
    for verifier in [&from_jwks, &from_file, &after.verifier().unwrap()] {
        let mut expected = vec![old_kid.as_str(), new_kid.as_str()];
        expected.sort_unstable();
        assert_eq!(verifier.key_ids(), expected);
        assert_eq!(verifier.verify(&old_token).unwrap().sub, "acct");
        assert_eq!(verifier.verify(&new_token).unwrap().sub, "acct");
    }
    // The verifier from before the rotation knows only the old key, as a relay that has not refetched.
    assert_eq!(before.verifier().unwrap().verify(&new_token), Err(TokenError::UnknownKey(new_kid)));
}

#[test]
fn retiring_removes_an_old_key_and_refuses_the_newest_and_unknown_kids_naming_the_kids_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    let first = TokenIssuer::load_or_create(&path).unwrap();
    let old_token = first.issue("acct", "acme", vec![]).unwrap().token;
    let old_kid = first.signing_kid().to_owned();
    let new_kid = rotate_signing_key(&path).unwrap().signing_kid().to_owned();

    match retire_signing_key(&path, &new_kid) {
        Err(error @ KeyError::RetiringSigningKey { .. }) => {
            let message = error.to_string();
            assert!(message.contains(&new_kid) && message.contains("newest"), "{message}");
        }
        other => panic!("retiring the signing key: {:?}", other.map(|ring| ring.signing_kid().to_owned())),
    }
    match retire_signing_key(&path, "no-such-kid") {
        Err(error @ KeyError::UnknownKeyId { .. }) => {
            let message = error.to_string();
            assert!(message.contains("no-such-kid"), "{message}");
            assert!(message.contains(&format!("{old_kid}, {new_kid}")), "{message}");
        }
        other => panic!("retiring an unknown kid: {:?}", other.map(|ring| ring.signing_kid().to_owned())),
    }
    // Neither refusal changed the file.
    assert_eq!(TokenIssuer::load_or_create(&path).unwrap().jwks().keys.len(), 2);

    let ring = retire_signing_key(&path, &old_kid).unwrap();
    assert_eq!(ring.kids(), [new_kid.as_str()]);
    assert_eq!(file_mode(&path), 0o600);
    let verifier = TokenVerifier::from_key_file(&path).unwrap();
    assert_eq!(verifier.verify(&old_token), Err(TokenError::UnknownKey(old_kid)));
    let reloaded = TokenIssuer::load_or_create(&path).unwrap();
    assert!(verifier.verify(&reloaded.issue("acct", "acme", vec![]).unwrap().token).is_ok());
}

#[test]
fn rotations_write_a_new_private_file_and_leave_no_temporary_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    TokenIssuer::load_or_create(&path).unwrap();
    let before = FileStamp::of(&path).unwrap();
    // Held open, the first file keeps its inode: the file system cannot give that number to a new file meanwhile.
    let first = std::fs::File::open(&path).unwrap();
    let first_text = std::fs::read_to_string(&path).unwrap();
    let inode = |metadata: std::fs::Metadata| std::os::unix::fs::MetadataExt::ino(&metadata);
    for expected in 2..=4 {
        assert_eq!(rotate_signing_key(&path).unwrap().kids().len(), expected);
    }
    // A new file renamed into place, never the old one rewritten: a reader has the old ring or the new one.
    assert_ne!(inode(std::fs::metadata(&path).unwrap()), inode(first.metadata().unwrap()));
    assert_eq!(std::io::read_to_string(first).unwrap(), first_text, "the file a reader holds is never rewritten");
    assert_ne!(FileStamp::of(&path).unwrap(), before);
    assert_eq!(file_mode(&path), 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(names, ["signing.pem"]);
    // Each block is a PKCS#8 key of its own, as `openssl pkey` reads one.
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("-----BEGIN PRIVATE KEY-----").count(), 4);
    let stamp = FileStamp::of(&path).unwrap();
    assert_eq!(FileStamp::of(&path), Some(stamp), "an unchanged file keeps its stamp");
    assert_eq!(FileStamp::of(&dir.path().join("missing.pem")), None);
}

#[test]
fn concurrent_rotations_lose_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    TokenIssuer::load_or_create(&path).unwrap();
    let rotations: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || rotate_signing_key(&path).unwrap().signing_kid().to_owned())
        })
        .collect();
    let added: Vec<String> = rotations.into_iter().map(|rotation| rotation.join().unwrap()).collect();
    let issuer = TokenIssuer::load_or_create(&path).unwrap();
    let kids = jwks_kids(&issuer);
    assert_eq!(kids.len(), 9, "{kids:?}");
    for kid in &added {
        assert!(kids.contains(kid), "{kid} lost: {kids:?}");
    }
}

/// A key file written before rings existed: one PKCS#8 block, as `openssl genpkey -algorithm ed25519` writes it.
#[test]
fn a_single_key_file_is_a_ring_of_one_and_rotates_into_two() {
    use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    // The v2 form (with the public key) `to_pkcs8_pem` writes, as the API wrote its key file before rings existed.
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    write_private(&path, pem.as_bytes());

    let issuer = TokenIssuer::load_or_create(&path).unwrap();
    assert_eq!(jwks_kids(&issuer).len(), 1);
    let token = issuer.issue("acct", "acme", vec![]).unwrap().token;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), *pem, "loading leaves the file as it was");
    assert!(TokenVerifier::from_key_file(&path).unwrap().verify(&token).is_ok());

    let ring = rotate_signing_key(&path).unwrap();
    assert_eq!(ring.kids()[0], issuer.signing_kid(), "the old key stays first");
    assert!(TokenVerifier::from_key_file(&path).unwrap().verify(&token).is_ok());
    assert_openssl_form(&path, 2);
}

/// Every block of the file at `path` (`blocks` of them) is the 48-byte PKCS#8 v1 form of an Ed25519 key that
/// `openssl genpkey -algorithm ed25519` writes and OpenSSL 3.0 reads (it refuses the v2 form, with the public key).
fn assert_openssl_form(path: &Path, blocks: usize) {
    // SEQUENCE (46 bytes) { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32 bytes) } }
    const V1_PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    let parsed = pem::parse_many(std::fs::read(path).unwrap()).unwrap();
    assert_eq!(parsed.len(), blocks);
    for block in parsed {
        assert_eq!(block.tag(), "PRIVATE KEY");
        assert_eq!((block.contents().len(), &block.contents()[..16]), (48, &V1_PREFIX[..]));
    }
}

#[test]
fn a_new_key_file_is_in_the_form_openssl_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    TokenIssuer::load_or_create(&path).unwrap();
    assert_openssl_form(&path, 1);
    rotate_signing_key(&path).unwrap();
    assert_openssl_form(&path, 2);
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

#[test]
fn bad_key_files_are_refused_naming_the_file_and_the_problem() {
    use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
    let one = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).to_pkcs8_pem(LineEnding::LF).unwrap();
    let two = ed25519_dalek::SigningKey::from_bytes(&[2; 32]).to_pkcs8_pem(LineEnding::LF).unwrap();
    let cut_short = &two[..two.len() / 2];
    let certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    for (name, text, problem) in [
        ("empty.pem", String::new(), "it holds no PRIVATE KEY block"),
        ("text.pem", "not a key at all\n".to_owned(), "it holds no PRIVATE KEY block"),
        ("twice.pem", format!("{}{}", *one, *one), "twice"),
        ("cut.pem", format!("{}{cut_short}", *one), "a PEM block is not closed"),
        ("cert.pem", format!("{}{certificate}", *one), "block 2 is a CERTIFICATE, not a PKCS#8 PRIVATE KEY"),
        (
            "garbage.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
            "block 1 is not an Ed25519 key",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        write_private(&path, text.as_bytes());
        for error in [
            TokenIssuer::load_or_create(&path).err().expect("refused"),
            TokenVerifier::from_key_file(&path).err().expect("refused"),
            rotate_signing_key(&path).err().expect("refused"),
        ] {
            let message = error.to_string();
            assert!(message.contains(&path.display().to_string()) && message.contains(problem), "{name}: {message}");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{name}: a refused file is left as it was");
    }
}

#[test]
fn rotating_a_missing_or_world_readable_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    assert!(matches!(rotate_signing_key(&missing), Err(KeyError::Io { .. })));
    assert!(!missing.exists(), "a rotation creates no ring nobody reads");

    let path = dir.path().join("signing.pem");
    TokenIssuer::load_or_create(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(rotate_signing_key(&path), Err(KeyError::InsecurePermissions { .. })));
    assert!(matches!(TokenVerifier::from_key_file(&path), Err(KeyError::InsecurePermissions { .. })));
}

#[test]
fn a_generated_ring_holds_one_key_that_signs() {
    let ring = KeyRing::generate().unwrap();
    let issuer = TokenIssuer::from_ring(&ring).unwrap();
    assert_eq!(ring.kids(), [issuer.signing_kid()]);
    assert_eq!(ring.jwks().keys.len(), 1);
}
