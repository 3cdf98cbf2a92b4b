//! The lines `skytale` prints on stdout once a service listens: shell `export` statements, so
//! `eval "$(skytale dev)"`-style scripts and tests can pick up the address. Logs go to stderr.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The URL clients use to reach a service bound to `addr`, `https://` if it serves TLS (an unspecified bind
/// address is reachable on loopback).
pub fn url_for(addr: SocketAddr, tls: bool) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

/// Prints `export NAME=value` and flushes, so a reader of the pipe sees it immediately.
pub fn export(name: &str, value: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "export {name}={value}")?;
    stdout.flush()
}

/// Prints `text` on a line of its own, for a script to read (`skytale keys rotate-signing-key` prints a key id).
pub fn line(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()
}

/// Prints `# text`: a shell comment, so output meant for `eval` can still tell people something.
pub fn comment(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "# {text}")?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_use_loopback_for_unspecified_addresses() {
        assert_eq!(url_for("127.0.0.1:5000".parse().unwrap(), false), "http://127.0.0.1:5000");
        assert_eq!(url_for("0.0.0.0:7000".parse().unwrap(), false), "http://127.0.0.1:7000");
        assert_eq!(url_for("[::1]:80".parse().unwrap(), false), "http://[::1]:80");
        assert_eq!(url_for("127.0.0.1:5000".parse().unwrap(), true), "https://127.0.0.1:5000");
    }
}
