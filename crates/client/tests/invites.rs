//! API-key auth and the invite flow against a real in-process API server and relay.

mod common;

use std::time::Duration;

use common::api::*;
use common::*;
use skytale_client::{Client, Error};

const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn api_key_is_exchanged_for_a_token_and_a_bad_key_is_an_auth_error() {
    let relay = TestRelay::start();
    let api = TestApi::start();
    let key = api.api_key("acme", "alice");
    let (alice, _a) = api_client(&relay, &api, "alice", &key);
    alice.create_channel("acme/team/auth").unwrap().send(b"hello").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let bogus = format!("{key}x");
    let err = Client::connect(api_config(&relay, &api, dir.path(), "mallory", &bogus)).err().unwrap();
    assert!(matches!(err, Error::Auth(_)), "{err}");
    assert!(err.to_string().starts_with("auth error: ") && err.to_string().contains("invalid_api_key"), "{err}");
}

#[test]
fn api_key_without_api_url_is_refused_naming_it() {
    let relay = TestRelay::start();
    let dir = tempfile::tempdir().unwrap();
    let config =
        skytale_client::ClientConfig { api_key: Some("sk_live_x".into()), ..config(&relay, dir.path(), "alice") };
    let err = Client::connect(config).err().unwrap();
    assert!(matches!(err, Error::Auth(_)), "{err}");
    assert!(err.to_string().contains("api_url"), "{err}");
}

#[test]
fn channels_of_another_org_cannot_be_created() {
    let relay = TestRelay::start();
    let api = TestApi::start();
    let (alice, _a) = api_client(&relay, &api, "alice", &api.api_key("acme", "alice"));
    let err = alice.create_channel("globex/team/x").err().unwrap();
    assert!(matches!(err, Error::Auth(_)) && err.to_string().contains("not under your org"), "{err}");
    assert!(alice.channels().is_empty());
}

#[test]
fn invite_and_join_with_token_end_to_end() {
    let relay = TestRelay::start();
    let api = TestApi::start();
    let (alice, _a) = api_client(&relay, &api, "alice", &api.api_key("acme", "alice"));
    let (bob, _b) = api_client(&relay, &api, "bob", &api.api_key("globex", "bob"));
    let a = alice.create_channel("acme/team/invite").unwrap();
    let token = alice.invite("acme/team/invite", 1, HOUR).unwrap();
    assert!(token.starts_with("skt_inv_"), "{token}");

    let b = bob.join_with_token("acme/team/invite", &token, JOIN_TIMEOUT).unwrap();
    assert_eq!(b.epoch(), a.epoch());
    a.send(b"welcome bob").unwrap();
    b.send(b"thanks alice").unwrap();
    assert_eq!(next_text(&b), "welcome bob");
    assert_eq!(next_text(&a), "thanks alice");
    let mut members = a.members().unwrap();
    members.sort();
    assert_eq!(members, vec![b"alice".to_vec(), b"bob".to_vec()]);

    // Used up: a second joiner with the same single-use token is refused by the API.
    let (carol, _c) = api_client(&relay, &api, "carol", &api.api_key("initech", "carol"));
    let err = carol.join_with_token("acme/team/invite", &token, JOIN_TIMEOUT).err().unwrap();
    assert!(matches!(err, Error::Channel(_)), "{err}");
    assert!(err.to_string().contains("no uses left"), "{err}");
    assert!(carol.channels().is_empty());
}

#[test]
fn expired_and_misdirected_invites_are_channel_errors() {
    let relay = TestRelay::start();
    let api = TestApi::start();
    let (alice, _a) = api_client(&relay, &api, "alice", &api.api_key("acme", "alice"));
    let (bob, _b) = api_client(&relay, &api, "bob", &api.api_key("globex", "bob"));
    alice.create_channel("acme/team/one").unwrap();
    alice.create_channel("acme/team/two").unwrap();

    let for_one = alice.invite("acme/team/one", 5, HOUR).unwrap();
    let err = bob.join_with_token("acme/team/two", &for_one, JOIN_TIMEOUT).err().unwrap();
    assert!(matches!(err, Error::Channel(_)) && err.to_string().contains("for another channel"), "{err}");

    let short = alice.invite("acme/team/two", 5, Duration::from_secs(1)).unwrap();
    // Let the one-second lifetime pass (the API compares against its clock, in milliseconds).
    std::thread::sleep(Duration::from_millis(1500));
    let err = bob.join_with_token("acme/team/two", &short, JOIN_TIMEOUT).err().unwrap();
    assert!(matches!(err, Error::Channel(_)) && err.to_string().contains("expired"), "{err}");
    assert!(bob.channels().is_empty());
}

#[test]
fn invite_and_join_need_the_api() {
    let relay = TestRelay::start();
    let (alice, _a) = client(&relay, "alice");
    alice.create_channel("acme/team/local").unwrap();
    let err = alice.invite("acme/team/local", 1, HOUR).err().unwrap();
    assert!(matches!(err, Error::Auth(_)) && err.to_string().contains("api_url and api_key"), "{err}");
    let err = alice.join_with_token("acme/team/other", "skt_inv_x", JOIN_TIMEOUT).err().unwrap();
    assert!(matches!(err, Error::Auth(_)), "{err}");
}

#[test]
fn concurrent_joiners_are_admitted_in_fewer_commits_than_joiners() {
    let relay = TestRelay::start();
    let api = TestApi::start();
    let owner_key = api.api_key("acme", "owner");
    let owner_dir = tempfile::tempdir().unwrap();
    let channel = "acme/team/crowd";
    let start_epoch;
    let token;
    {
        let owner = Client::connect(api_config(&relay, &api, owner_dir.path(), "owner", &owner_key)).unwrap();
        let ch = owner.create_channel(channel).unwrap();
        start_epoch = ch.epoch();
        token = owner.invite(channel, 5, HOUR).unwrap();
        owner.close();
    }
    // All five request while the owner is away; the restarted owner finds them pending at once.
    let joiners: Vec<_> = (0..5)
        .map(|i| {
            let (relay_url, api_url, token) = (relay.endpoint(), api.url(), token.clone());
            let key = api.api_key(&format!("org{i}"), "joiner");
            std::thread::spawn(move || {
                let dir = tempfile::tempdir().unwrap();
                let config = skytale_client::ClientConfig {
                    endpoint: relay_url,
                    data_dir: dir.path().to_path_buf(),
                    identity: format!("joiner{i}").into_bytes(),
                    api_key: Some(key),
                    api_url: Some(api_url),
                };
                let client = Client::connect(config).unwrap();
                let joined = client.join_with_token(channel, &token, JOIN_TIMEOUT).unwrap();
                (client, joined, dir)
            })
        })
        .collect();
    api.await_pending_joins(&owner_key, channel, 5);

    let owner = Client::connect(api_config(&relay, &api, owner_dir.path(), "owner", &owner_key)).unwrap();
    let joined: Vec<_> = joiners.into_iter().map(|j| j.join().unwrap()).collect();
    let ch = owner.open_channel(channel).unwrap();
    ch.send(b"hello all").unwrap();
    for (_, joiner, _) in &joined {
        assert_eq!(next_text(joiner), "hello all");
    }
    assert_eq!(ch.members().unwrap().len(), 6);
    let commits = ch.epoch() - start_epoch;
    assert!((1..5).contains(&commits), "five joiners took {commits} commits");
}

#[test]
fn join_times_out_when_the_owner_is_gone() {
    let relay = TestRelay::start();
    let api = TestApi::start();
    let (alice, _a) = api_client(&relay, &api, "alice", &api.api_key("acme", "alice"));
    alice.create_channel("acme/team/away").unwrap();
    let token = alice.invite("acme/team/away", 1, HOUR).unwrap();
    alice.close();
    let (bob, _b) = api_client(&relay, &api, "bob", &api.api_key("globex", "bob"));
    let err = bob.join_with_token("acme/team/away", &token, Duration::from_secs(2)).err().unwrap();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "transport error: timed out after 2s waiting for the channel owner to admit this client to acme/team/away"
    );
    assert!(bob.channels().is_empty());
}

#[test]
fn admission_survives_an_api_restart() {
    let relay = TestRelay::start();
    let mut api = TestApi::start();
    let (alice, _a) = api_client(&relay, &api, "alice", &api.api_key("acme", "alice"));
    let bob_key = api.api_key("globex", "bob");
    let a = alice.create_channel("acme/team/restart").unwrap();
    let token = alice.invite("acme/team/restart", 1, HOUR).unwrap();
    api.stop();
    api.resume();
    let (bob, _b) = api_client(&relay, &api, "bob", &bob_key);
    let b = bob.join_with_token("acme/team/restart", &token, JOIN_TIMEOUT).unwrap();
    a.send(b"after restart").unwrap();
    assert_eq!(next_text(&b), "after restart");
}

#[test]
fn an_in_band_token_refresh_during_a_long_stream_loses_nothing() {
    let relay = TestRelay::start();
    let api = TestApi::start();
    let (alice, _a) = api_client(&relay, &api, "alice", &api.api_key("acme", "alice"));
    let (bob, _b) = api_client(&relay, &api, "bob", &api.api_key("acme", "bob"));
    let (carol, _c) = api_client(&relay, &api, "carol", &api.api_key("globex", "carol"));
    let a = alice.create_channel("acme/team/stream").unwrap();
    let b = add(&a, &bob);
    carol.create_channel("globex/team/side").unwrap();
    let token = carol.invite("globex/team/side", 1, HOUR).unwrap();

    let sender = {
        let a = a.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                a.send(format!("m{i}").as_bytes()).unwrap();
            }
        })
    };
    // Joining with a token refreshes bob's stream token in-band while alice's messages flow to him.
    let side = bob.join_with_token("globex/team/side", &token, JOIN_TIMEOUT).unwrap();
    for i in 0..100 {
        assert_eq!(next_text(&b), format!("m{i}"));
    }
    sender.join().unwrap();
    assert_idle(&b);
    side.send(b"granted").unwrap();
}

#[test]
fn a_relay_reconnect_while_the_api_is_down_uses_the_still_valid_token() {
    let mut relay = TestRelay::start();
    let mut api = TestApi::start();
    let (alice, _a) = api_client(&relay, &api, "alice", &api.api_key("acme", "alice"));
    let (bob, _b) = api_client(&relay, &api, "bob", &api.api_key("acme", "bob"));
    let a = alice.create_channel("acme/team/outage").unwrap();
    let b = add(&a, &bob);
    api.stop();
    relay.stop();
    relay.resume();
    a.send(b"still here").unwrap();
    assert_eq!(next_text(&b), "still here");
}
