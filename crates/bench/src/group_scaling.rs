//! `group-scaling`: what membership changes cost as a channel grows.
//!
//! For each group size N of `--sizes`, a channel is built with N members: the creator plus N - 1 members whose
//! key packages are made in bulk by plain in-memory mls-rs clients (same cipher suite, provider and credential
//! type as the Skytale client) and added in ONE `add_members` commit; those members never come online, the relay
//! keeps their deliveries. Then, `--repetitions` times: `add_member` of one more member (N -> N + 1),
//! `remove_member` of it (N + 1 -> N) and `rotate_key` (at N).
//!
//! `client` figures go through `skytale_client::Channel`, i.e. what a user pays: MLS, the group-state write to
//! `state.db`, the relay's durable append and the echo applied back. `mls` figures are the same operations on a
//! bare mls-rs group of the same size with in-memory storage (build the commit, then apply it): the protocol's
//! own share. Sizes come from the bare group (the same messages the client publishes). `relay` figures are what
//! a relay with auth on adds for each of those commits: validating it with its MLS external observer (against
//! the group before it) and serialising the group after it for the store, i.e. the log writer's own work for a
//! handshake beyond the write every message costs. An application message costs the relay one hash lookup of
//! the stream's member key instead, which is why it is not measured here.
//!
//! JSON keys: `repetitions`, `sizes: {"<N>": {members, build_group_ms, add_member_p50_ms, remove_member_p50_ms,
//! rotate_key_p50_ms, mls_add_member_p50_ms, mls_remove_member_p50_ms, mls_rotate_key_p50_ms,
//! relay_add_member_p50_ms, relay_remove_member_p50_ms, relay_rotate_key_p50_ms, add_commit_bytes,
//! remove_commit_bytes, rotate_commit_bytes, welcome_bytes}}` (`*_ms`: p50 over the repetitions;
//! `build_group_ms`: the one commit adding N - 1 members, through the client).

use std::collections::BTreeMap;
use std::time::Instant;

use mls_rs::client_builder::MlsConfig;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::{CipherSuiteProvider, CryptoProvider, ExtensionList, MlsMessage};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;
use serde_json::json;

use skytale_relay::mls_framing::parse_header;
use skytale_relay::{MemberKey, ObservedGroup, Observer};

use crate::fixture::Site;
use crate::limits::CIPHER_SUITE;
use crate::stats::{percentile, round2};

#[derive(clap::Args)]
pub struct Args {
    /// Relay URL; without it an in-process relay is started on loopback.
    #[arg(long)]
    relay: Option<String>,
    /// Group sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2,10,100,1000")]
    sizes: Vec<usize>,
    /// Repetitions of each operation per size.
    #[arg(long, default_value_t = 7)]
    repetitions: usize,
}

pub fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(args.repetitions > 0, "--repetitions must be at least 1");
    anyhow::ensure!(args.sizes.iter().all(|&n| n >= 2), "every group size must be at least 2");
    let site = Site::start(args.relay.clone())?;
    eprintln!("group-scaling: relay {}", site.endpoint());
    let owner = site.client("owner")?;
    let mut sizes = BTreeMap::new();
    for &size in &args.sizes {
        eprintln!("group-scaling: {size} members: key packages");
        let members = key_packages("member", size - 1)?;
        let extras = key_packages("extra", args.repetitions)?;
        eprintln!("group-scaling: {size} members: through the client");
        let client = through_client(&site, &owner, size, &members, &extras)?;
        eprintln!("group-scaling: {size} members: bare mls-rs");
        let bare = bare_mls(&members, &extras)?;
        sizes.insert(
            size.to_string(),
            json!({
                "members": size,
                "build_group_ms": round2(client.build_ms),
                "add_member_p50_ms": p50(client.add_ms),
                "remove_member_p50_ms": p50(client.remove_ms),
                "rotate_key_p50_ms": p50(client.rotate_ms),
                "mls_add_member_p50_ms": p50(bare.add_ms),
                "mls_remove_member_p50_ms": p50(bare.remove_ms),
                "mls_rotate_key_p50_ms": p50(bare.rotate_ms),
                "relay_add_member_p50_ms": p50(bare.relay_add_ms),
                "relay_remove_member_p50_ms": p50(bare.relay_remove_ms),
                "relay_rotate_key_p50_ms": p50(bare.relay_rotate_ms),
                "add_commit_bytes": bare.add_commit_bytes,
                "remove_commit_bytes": bare.remove_commit_bytes,
                "rotate_commit_bytes": bare.rotate_commit_bytes,
                "welcome_bytes": bare.welcome_bytes,
            }),
        );
    }
    owner.close();
    site.stop();
    Ok(json!({ "repetitions": args.repetitions, "sizes": sizes }))
}

fn p50(mut samples: Vec<f64>) -> f64 {
    round2(percentile(&mut samples, 50.0))
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// A member that exists only as its key package (MLSMessage bytes) and identity.
struct Offline {
    identity: Vec<u8>,
    key_package: Vec<u8>,
}

/// `count` key packages of fresh identities `<label>-<i>`, each from its own in-memory mls-rs client.
fn key_packages(label: &str, count: usize) -> anyhow::Result<Vec<Offline>> {
    (0..count)
        .map(|i| {
            let identity = format!("{label}-{i}").into_bytes();
            let client = bare_client(&identity)?;
            let key_package =
                client.generate_key_package_message(ExtensionList::default(), ExtensionList::default(), None)?;
            Ok(Offline { identity, key_package: key_package.to_bytes()? })
        })
        .collect()
}

/// An mls-rs client configured like the Skytale client's, but keeping everything in memory.
fn bare_client(identity: &[u8]) -> anyhow::Result<mls_rs::Client<impl MlsConfig>> {
    let suite = RustCryptoProvider::new()
        .cipher_suite_provider(CIPHER_SUITE)
        .ok_or_else(|| anyhow::anyhow!("cipher suite not offered by the rustcrypto provider"))?;
    let (secret, public) = suite.signature_key_generate()?;
    let credential = BasicCredential::new(identity.to_vec()).into_credential();
    Ok(mls_rs::Client::builder()
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(RustCryptoProvider::new())
        .signing_identity(SigningIdentity::new(credential, public), secret, CIPHER_SUITE)
        .build())
}

struct ClientFigures {
    build_ms: f64,
    add_ms: Vec<f64>,
    remove_ms: Vec<f64>,
    rotate_ms: Vec<f64>,
}

fn through_client(
    site: &Site,
    owner: &skytale_client::Client,
    size: usize,
    members: &[Offline],
    extras: &[Offline],
) -> anyhow::Result<ClientFigures> {
    let channel = owner.create_channel(&site.channel_name(&format!("group-{size}")))?;
    let start = Instant::now();
    if !members.is_empty() {
        let key_packages: Vec<Vec<u8>> = members.iter().map(|m| m.key_package.clone()).collect();
        channel.add_members(&key_packages)?;
    }
    let build_ms = ms_since(start);
    let mut figures = ClientFigures { build_ms, add_ms: Vec::new(), remove_ms: Vec::new(), rotate_ms: Vec::new() };
    for extra in extras {
        let start = Instant::now();
        channel.add_member(&extra.key_package)?;
        figures.add_ms.push(ms_since(start));
        let start = Instant::now();
        channel.remove_member(&extra.identity)?;
        figures.remove_ms.push(ms_since(start));
        let start = Instant::now();
        channel.rotate_key()?;
        figures.rotate_ms.push(ms_since(start));
    }
    anyhow::ensure!(channel.members()?.len() == size, "the channel should be back at {size} members");
    Ok(figures)
}

struct BareFigures {
    add_ms: Vec<f64>,
    remove_ms: Vec<f64>,
    rotate_ms: Vec<f64>,
    relay_add_ms: Vec<f64>,
    relay_remove_ms: Vec<f64>,
    relay_rotate_ms: Vec<f64>,
    add_commit_bytes: usize,
    remove_commit_bytes: usize,
    rotate_commit_bytes: usize,
    welcome_bytes: usize,
}

fn bare_mls(members: &[Offline], extras: &[Offline]) -> anyhow::Result<BareFigures> {
    let creator = bare_client(b"bare-owner")?;
    let mut group = creator.create_group(ExtensionList::default(), ExtensionList::default(), None)?;
    if !members.is_empty() {
        let mut builder = group.commit_builder();
        for member in members {
            builder = builder.add_member(MlsMessage::from_bytes(&member.key_package)?)?;
        }
        builder.build()?;
        group.apply_pending_commit()?;
    }
    let creator_key = MemberKey::from_bytes(group.current_member_signing_identity()?.signature_key.to_vec());
    let observer = Observer::default();
    let mut relay = Validator {
        group: observer.create(&group.group_info_message(true)?.to_bytes()?, &creator_key)?,
        committer: creator_key,
    };
    let mut figures = BareFigures {
        add_ms: Vec::new(),
        remove_ms: Vec::new(),
        rotate_ms: Vec::new(),
        relay_add_ms: Vec::new(),
        relay_remove_ms: Vec::new(),
        relay_rotate_ms: Vec::new(),
        add_commit_bytes: 0,
        remove_commit_bytes: 0,
        rotate_commit_bytes: 0,
        welcome_bytes: 0,
    };
    for extra in extras {
        let key_package = MlsMessage::from_bytes(&extra.key_package)?;
        let start = Instant::now();
        let added = group.commit_builder().add_member(key_package)?.build()?;
        group.apply_pending_commit()?;
        figures.add_ms.push(ms_since(start));
        let commit = added.commit_message.to_bytes()?;
        figures.relay_add_ms.push(relay.validate(&commit)?);
        figures.add_commit_bytes = commit.len();
        let welcome = added.welcome_messages.first().ok_or_else(|| anyhow::anyhow!("add produced no Welcome"))?;
        figures.welcome_bytes = welcome.to_bytes()?.len();

        let index = group.member_with_identity(&extra.identity)?.index;
        let start = Instant::now();
        let removed = group.commit_builder().remove_member(index)?.build()?;
        group.apply_pending_commit()?;
        figures.remove_ms.push(ms_since(start));
        let commit = removed.commit_message.to_bytes()?;
        figures.relay_remove_ms.push(relay.validate(&commit)?);
        figures.remove_commit_bytes = commit.len();

        let start = Instant::now();
        let rotated = group.commit(Vec::new())?;
        group.apply_pending_commit()?;
        figures.rotate_ms.push(ms_since(start));
        let commit = rotated.commit_message.to_bytes()?;
        figures.relay_rotate_ms.push(relay.validate(&commit)?);
        figures.rotate_commit_bytes = commit.len();
    }
    Ok(figures)
}

/// The relay's view of the bare group, kept in step with it.
struct Validator {
    group: ObservedGroup,
    committer: MemberKey,
}

impl Validator {
    /// Validates `commit` as the relay's log writer does and moves to the group after it; returns the time taken.
    fn validate(&mut self, commit: &[u8]) -> anyhow::Result<f64> {
        let start = Instant::now();
        let header = parse_header(commit)?;
        let (next, _roster_change) = self.group.apply(commit, &header, &self.committer)?;
        let snapshot = next.snapshot()?;
        let elapsed = ms_since(start);
        anyhow::ensure!(!snapshot.is_empty(), "the group state serialised to nothing");
        self.group = next;
        Ok(elapsed)
    }
}
