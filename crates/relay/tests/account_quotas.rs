//! Per-account quotas on a relay with auth on (docs/operations.md, "Quotas"): streams open at once and the publish
//! rate, in messages and bytes. One account over its limits gets `quota_exceeded` while another account's streams
//! and publishes keep succeeding, checked by results only. The rates are set so low (a burst of a few messages,
//! one a second) that a flood of pipelined publishes is over them however fast or slow the machine is.

mod common;
#[path = "common/minter.rs"]
mod minter;
#[path = "common/scrape.rs"]
mod scrape;

use std::num::NonZeroU32;
use std::time::Duration;

use common::mls_member::{member, Member};
use common::{blob, channel, error_code, is_error, meta, publish, seq, From, Stream};
use minter::Minter;
use mls_rs::client_builder::MlsConfig;
use scrape::Scrape;
use skytale_proto::meta as keys;
use skytale_relay::{PublishRate, RelayConfig, RelayError, RelayHandle};

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A stream of account `account` (org `acme`) proving `who`'s member key, or the relay's refusal.
async fn open<C: MlsConfig>(
    relay: &RelayHandle,
    minter: &Minter,
    account: &str,
    who: &Member<C>,
) -> Result<Stream, tonic::Status> {
    let token = minter.token(account, "acme", &[]);
    Stream::open_as(relay.local_addr(), &token, &who.proof_headers(&token)).await
}

/// Opens a stream of `account` once one of its `limit` slots is free: the relay frees a slot when it notices the
/// stream ended, a moment after the client let go. Bounded: 200 tries, 25 ms apart; every refusal must be the quota.
async fn open_once_freed<C: MlsConfig>(
    relay: &RelayHandle,
    minter: &Minter,
    account: &str,
    who: &Member<C>,
    limit: usize,
) -> Stream {
    for _ in 0..200 {
        match open(relay, minter, account, who).await {
            Ok(stream) => return stream,
            Err(status) => assert_stream_quota(&status, account, limit),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no slot of {account} was freed after its streams ended");
}

fn assert_stream_quota(status: &tonic::Status, account: &str, limit: usize) {
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let code = status.metadata().get(keys::ERROR_CODE).and_then(|code| code.to_str().ok());
    assert_eq!(code, Some("quota_exceeded"), "{status:?}");
    let message = status.message();
    assert!(message.contains(&format!("account {account} has {limit} streams open")), "{message}");
    assert!(message.contains("--max-streams-per-account"), "{message}");
}

#[tokio::test]
async fn an_account_at_its_stream_limit_is_refused_until_one_of_its_streams_ends() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let relay = minter
        .relay_with(&dir, |config| {
            config.max_streams_per_account = 2;
            config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        })
        .await;
    let admin = relay.admin_addr().unwrap();
    let alice = member("alice");
    let bob = member("bob");

    let first = open(&relay, &minter, "acct_a", &alice).await.unwrap();
    let second = open(&relay, &minter, "acct_a", &alice).await.unwrap();
    let refused = open(&relay, &minter, "acct_a", &alice).await.err().expect("a third stream of acct_a is refused");
    assert_stream_quota(&refused, "acct_a", 2);
    // Another account opens streams meanwhile.
    let _other = open(&relay, &minter, "acct_b", &bob).await.unwrap();
    let _other_too = open(&relay, &minter, "acct_b", &bob).await.unwrap();

    // A stream the client drops frees its slot, and so do streams whose connections go away.
    drop(first);
    let third = open_once_freed(&relay, &minter, "acct_a", &alice, 2).await;
    let refused = open(&relay, &minter, "acct_a", &alice).await.err().expect("acct_a is at its limit again");
    assert_stream_quota(&refused, "acct_a", 2);
    drop((second, third));
    let _again = [
        open_once_freed(&relay, &minter, "acct_a", &alice, 2).await,
        open_once_freed(&relay, &minter, "acct_a", &alice, 2).await,
    ];

    let scrape = Scrape::take(admin).await;
    assert!(scrape.value("skytale_relay_streams_refused_total", &[("code", "quota_exceeded")]) >= 2.0);
    relay.shutdown().await;
}

#[tokio::test]
async fn without_auth_there_is_no_account_and_no_stream_limit_per_account() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.max_streams_per_account = 1;
    let relay = common::start(config).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(Stream::open(relay.local_addr()).await);
    }
    relay.shutdown().await;
}

/// The publish rate of the flood test: a burst of 5 messages, one more a second; bytes out of the way.
fn slow_publishes(config: &mut RelayConfig) {
    config.publish_rate =
        PublishRate { messages_per_second: non_zero(1), message_burst: non_zero(5), ..PublishRate::default() };
}

/// How many publishes the flooding account pipelines: far more than its burst plus what a second refills, even on
/// a machine slow enough to take ten seconds over them.
const FLOOD: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_flooding_publishes_gets_quota_exceeded_and_another_accounts_publishes_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let relay = minter.relay_with(&dir, slow_publishes).await;
    let (mut alice, mut bob) = (member("alice"), member("bob"));
    let (flooded, quiet) = (channel("acme/quota/flooded"), channel("acme/quota/quiet"));
    let mut a = open(&relay, &minter, "acct_a", &alice).await.unwrap();
    let mut b = open(&relay, &minter, "acct_b", &bob).await.unwrap();
    assert_eq!(a.publish_ok(&flooded, "create", alice.create()).await, 1);
    assert_eq!(b.publish_ok(&quiet, "create", bob.create()).await, 1);

    // Account A pipelines its flood; account B publishes one at a time in between, within its own burst.
    let blobs: Vec<Vec<u8>> = (0..FLOOD).map(|i| alice.application(format!("flood {i}").as_bytes())).collect();
    let sender = a.sender();
    let mut b_seqs = Vec::new();
    for (i, blob) in blobs.iter().enumerate() {
        sender.send(publish(&flooded, &format!("a{i}"), blob.clone())).await;
        if i % 8 == 0 {
            let n = b_seqs.len() + 1;
            b_seqs.push(b.publish_ok(&quiet, &format!("b{n}"), bob.application(b"meanwhile")).await);
        }
    }
    assert_eq!(b_seqs, [2, 3, 4, 5], "every publish of account B is stored, in order");

    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..FLOOD {
        let reply = a.recv().await;
        assert_eq!(meta(&reply, keys::MSG_ID), Some(format!("a{i}").as_str()), "{reply:?}");
        if is_error(&reply) {
            assert_eq!(error_code(&reply), "quota_exceeded", "{reply:?}");
            let message = meta(&reply, keys::ERROR).unwrap_or_default();
            assert!(message.contains("account acct_a is over its publish rate of 1 messages per second"), "{message}");
            assert!(message.contains("--publishes-per-second") && message.contains("retry in"), "{message}");
            refused += 1;
        } else {
            accepted.push(i);
        }
    }
    assert!(refused >= FLOOD - 15, "only {refused} of {FLOOD} publishes were refused");
    assert!(accepted.len() >= 4, "the burst's 4 remaining messages pass: {accepted:?}");

    // What was accepted is exactly what the log holds, in order; nothing refused was stored.
    let mut reader = open(&relay, &minter, "acct_r", &alice).await.unwrap();
    reader.subscribe_ok(&flooded, 1, From::Seq(2)).await;
    let stored = reader.deliveries(accepted.len()).await;
    let stored: Vec<(u64, &[u8])> = stored.iter().map(|frame| (seq(frame), blob(frame))).collect();
    let expected: Vec<(u64, &[u8])> =
        accepted.iter().enumerate().map(|(n, &i)| (n as u64 + 2, blobs[i].as_slice())).collect();
    assert_eq!(stored, expected);

    // The stream stays usable: once the bucket refills, A publishes again (bounded: a refill takes a second).
    let next = alice.application(b"after the flood");
    let head = 1 + accepted.len() as u64;
    let mut seq = None;
    for attempt in 0..100 {
        let reply = a.publish(&flooded, &format!("again{attempt}"), next.clone()).await;
        if !is_error(&reply) {
            seq = Some(common::ack_seq(&reply));
            break;
        }
        assert_eq!(error_code(&reply), "quota_exceeded", "{reply:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seq, Some(head + 1), "acct_a's bucket did not refill");
    relay.shutdown().await;
}

#[tokio::test]
async fn the_byte_rate_refuses_a_publish_over_it_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let relay = minter
        .relay_with(&dir, |config| {
            config.max_payload = 4096;
            config.publish_rate =
                PublishRate { bytes_per_second: non_zero(1), bytes_burst: non_zero(4096), ..PublishRate::default() };
        })
        .await;
    let mut alice = member("alice");
    let name = channel("acme/quota/bytes");
    let mut a = open(&relay, &minter, "acct_a", &alice).await.unwrap();
    let create = alice.create();
    let first = alice.application(&[7; 1900]);
    let second = alice.application(&[8; 1900]);
    assert!(create.len() + first.len() <= 4096 && create.len() + first.len() + second.len() > 4096);
    assert_eq!(a.publish_ok(&name, "create", create).await, 1);
    assert_eq!(a.publish_ok(&name, "first", first).await, 2);
    let reply = a.publish(&name, "second", second).await;
    assert_eq!(error_code(&reply), "quota_exceeded", "{reply:?}");
    let message = meta(&reply, keys::ERROR).unwrap_or_default();
    assert!(message.contains("1 bytes per second (burst 4096; --publish-bytes-per-second"), "{message}");
    relay.shutdown().await;
}

#[tokio::test]
async fn a_bytes_burst_below_the_payload_limit_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.max_payload = 2048;
    config.publish_rate.bytes_burst = non_zero(2047);
    let error = skytale_relay::Relay::start(config).await.err().expect("the relay refuses to start");
    assert!(matches!(error, RelayError::PublishBytesBurstBelowMaxPayload { burst: 2047, max_payload: 2048 }));
    assert!(error.to_string().contains("make the burst at least 2048"), "{error}");
}
