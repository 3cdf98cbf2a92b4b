//! Issue/verify round trips through the public API, including the key file and the JWKS JSON the relay fetches.

use skytale_auth::{KeyError, TokenError, TokenIssuer, TokenVerifier};
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
