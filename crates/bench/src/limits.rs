//! `limits`: what this machine can do at best, so every other figure can be read as a fraction of it.
//!
//! * Ed25519 sign and verify of 100-byte messages through the `mls-rs-crypto-rustcrypto` cipher-suite provider
//!   (ed25519-dalek underneath), exactly the calls the client's MLS makes for every message it signs or checks.
//! * AES-128-GCM seal through the same provider (the `aes-gcm` crate) at 100 B and 64 KiB.
//! * A bare tonic bidi stream on loopback: SLIM's `DataPlaneService/OpenChannel` from `skytale-proto` served
//!   in-process by a trivial echo, i.e. the relay's transport minus the relay. Round trips one at a time (p50 /
//!   p99) and one stream pipelined (echoes per second).
//!
//! JSON keys: `ed25519_sign_per_s`, `ed25519_verify_per_s`, `aes128gcm_100b_mb_per_s`,
//! `aes128gcm_64kib_mb_per_s`, `tonic_echo_rtt_p50_us`, `tonic_echo_rtt_p99_us`, `tonic_echo_msgs_per_s`,
//! `payload_bytes`. MB is 10^6 bytes.

use std::time::{Duration, Instant};

use mls_rs::{CipherSuiteProvider, CryptoProvider};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;
use serde_json::json;
use skytale_proto::pb::data_plane_service_client::DataPlaneServiceClient;
use skytale_proto::pb::data_plane_service_server::{DataPlaneService, DataPlaneServiceServer};
use skytale_proto::pb::{self, message::MessageType};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::stats::{percentile, round2};

/// The client's cipher suite, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
pub const CIPHER_SUITE: mls_rs::CipherSuite = mls_rs::CipherSuite::CURVE25519_AES128;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds spent on each crypto figure.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Payload of the signed messages and of the echoed frames, in bytes.
    #[arg(long, default_value_t = 100)]
    payload_bytes: usize,
    /// Echo round trips timed one at a time.
    #[arg(long, default_value_t = 5000)]
    round_trips: usize,
    /// Frames echoed on one pipelined stream.
    #[arg(long, default_value_t = 50_000)]
    pipelined: usize,
}

pub fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let budget = Duration::from_secs_f64(args.seconds);
    let suite = RustCryptoProvider::new()
        .cipher_suite_provider(CIPHER_SUITE)
        .ok_or_else(|| anyhow::anyhow!("cipher suite not offered by the rustcrypto provider"))?;

    eprintln!("limits: ed25519 sign/verify");
    let (secret, public) = suite.signature_key_generate()?;
    let message = vec![0x5a; args.payload_bytes];
    let sign_per_s = ops_per_second(budget, || suite.sign(&secret, &message).map(drop))?;
    let signature = suite.sign(&secret, &message)?;
    let verify_per_s = ops_per_second(budget, || suite.verify(&public, &signature, &message))?;

    eprintln!("limits: aes-128-gcm");
    let key = vec![7u8; suite.aead_key_size()];
    let nonce = vec![9u8; suite.aead_nonce_size()];
    let aead_mb_per_s = |size: usize| -> anyhow::Result<f64> {
        let data = vec![1u8; size];
        let seals = ops_per_second(budget, || suite.aead_seal(&key, &data, None, &nonce).map(drop))?;
        Ok(seals * size as f64 / 1e6)
    };
    let aes_small = aead_mb_per_s(100)?;
    let aes_large = aead_mb_per_s(64 * 1024)?;

    eprintln!("limits: tonic echo");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let echo = runtime.block_on(tonic_echo(args.payload_bytes, args.round_trips, args.pipelined))?;

    Ok(json!({
        "payload_bytes": args.payload_bytes,
        "ed25519_sign_per_s": sign_per_s.round(),
        "ed25519_verify_per_s": verify_per_s.round(),
        "aes128gcm_100b_mb_per_s": round2(aes_small),
        "aes128gcm_64kib_mb_per_s": round2(aes_large),
        "tonic_echo_rtt_p50_us": round2(echo.rtt_p50_us),
        "tonic_echo_rtt_p99_us": round2(echo.rtt_p99_us),
        "tonic_echo_msgs_per_s": echo.msgs_per_s.round(),
    }))
}

/// Runs `op` repeatedly for about `budget` and returns how many times per second it ran.
fn ops_per_second<E: std::error::Error + Send + Sync + 'static>(
    budget: Duration,
    mut op: impl FnMut() -> Result<(), E>,
) -> anyhow::Result<f64> {
    const BATCH: u64 = 64;
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < budget {
        for _ in 0..BATCH {
            op()?;
        }
        done += BATCH;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

/// Echoes every frame of a stream straight back: the relay's transport with nothing behind it.
struct Echo;

#[tonic::async_trait]
impl DataPlaneService for Echo {
    type OpenChannelStream = ReceiverStream<Result<pb::Message, Status>>;

    async fn open_channel(
        &self,
        request: Request<Streaming<pb::Message>>,
    ) -> Result<Response<Self::OpenChannelStream>, Status> {
        // The relay's outbound queue size, so back-pressure behaves the same.
        let (outbound, responses) = mpsc::channel(64);
        let mut frames = request.into_inner();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = frames.next().await {
                if outbound.send(Ok(frame)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(responses)))
    }
}

struct EchoFigures {
    rtt_p50_us: f64,
    rtt_p99_us: f64,
    msgs_per_s: f64,
}

/// A publish frame carrying `payload_bytes` of blob, shaped like a client's application message.
fn frame(payload_bytes: usize) -> pb::Message {
    pb::Message {
        message_type: Some(MessageType::Publish(pb::Publish {
            header: Some(pb::SlimHeader::default()),
            session: None,
            msg: Some(pb::Content {
                content_type: Some(pb::content::ContentType::AppPayload(pb::ApplicationPayload {
                    payload_type: "mls".into(),
                    blob: vec![0xab; payload_bytes],
                })),
            }),
        })),
        metadata: Default::default(),
    }
}

async fn tonic_echo(payload_bytes: usize, round_trips: usize, pipelined: usize) -> anyhow::Result<EchoFigures> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DataPlaneServiceServer::new(Echo))
            .serve_with_incoming(incoming),
    );

    // Connected like the client connects to the relay.
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true).connect().await?;
    let mut client = DataPlaneServiceClient::new(channel);
    let (to_server, outgoing) = mpsc::channel(1024);
    let mut replies = client.open_channel(ReceiverStream::new(outgoing)).await?.into_inner();
    let frame = frame(payload_bytes);

    let warmup = 200;
    let mut rtts_us = Vec::with_capacity(round_trips);
    for i in 0..warmup + round_trips {
        let start = Instant::now();
        to_server.send(frame.clone()).await?;
        replies.message().await?.ok_or_else(|| anyhow::anyhow!("echo stream ended"))?;
        if i >= warmup {
            rtts_us.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }

    let start = Instant::now();
    let sender = {
        let to_server = to_server.clone();
        let frame = frame.clone();
        tokio::spawn(async move {
            for _ in 0..pipelined {
                if to_server.send(frame.clone()).await.is_err() {
                    break;
                }
            }
        })
    };
    for _ in 0..pipelined {
        replies.message().await?.ok_or_else(|| anyhow::anyhow!("echo stream ended"))?;
    }
    let msgs_per_s = pipelined as f64 / start.elapsed().as_secs_f64();
    sender.await?;
    drop(to_server);
    server.abort();

    Ok(EchoFigures {
        rtt_p50_us: percentile(&mut rtts_us, 50.0),
        rtt_p99_us: percentile(&mut rtts_us, 99.0),
        msgs_per_s,
    })
}
