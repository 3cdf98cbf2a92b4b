//! `skytale mcp [ARGS...]`: runs the MCP server of the Python SDK (`skytale_sdk.mcp_server`), which exposes
//! Skytale channels as tools, with ARGS passed through. The interpreter is `$SKYTALE_PYTHON`, else the `python`
//! or `python3` beside this executable (a virtualenv's `bin/`, where `pip install` puts `skytale`), else `python3`
//! on PATH. On Unix the interpreter replaces this process, so stdio and signals reach the server directly.

use std::path::PathBuf;
use std::process::Command;

use crate::args::McpArgs;

/// Imports the server first, so that a missing package or extra is reported with what to install.
const BOOTSTRAP: &str = r#"import sys
try:
    from skytale_sdk.mcp_server import main
except ImportError as error:
    sys.exit(
        f"skytale mcp: cannot import skytale_sdk.mcp_server with {sys.executable} ({error}).\n"
        "Install the SDK with its MCP extra into that Python (pip install \".[mcp]\" from the Skytale "
        "source tree), or point SKYTALE_PYTHON at a Python that has it."
    )
main(sys.argv[1:])
"#;

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot run the Python interpreter {interpreter} for the MCP server: {source}; set SKYTALE_PYTHON to a Python \
     with the SDK's MCP extra installed (pip install \".[mcp]\" from the Skytale source tree)"
)]
pub struct McpError {
    interpreter: PathBuf,
    source: std::io::Error,
}

pub fn run(args: McpArgs) -> Result<(), super::CommandError> {
    let interpreter = interpreter();
    let mut command = Command::new(&interpreter);
    command.arg("-c").arg(BOOTSTRAP).args(&args.args);
    Err(McpError { source: replace_process(command), interpreter }.into())
}

/// `$SKYTALE_PYTHON`, else `python`/`python3` beside this executable, else `python3` (from PATH).
fn interpreter() -> PathBuf {
    if let Some(python) = std::env::var_os("SKYTALE_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    let beside_executable = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?.to_path_buf();
        ["python", "python3"].into_iter().map(|name| dir.join(name)).find(|path| path.is_file())
    });
    beside_executable.unwrap_or_else(|| PathBuf::from("python3"))
}

/// Runs `command` in place of this process; returns only if it could not be started.
#[cfg(unix)]
fn replace_process(mut command: Command) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    command.exec()
}

/// Runs `command` and exits with its status; returns only if it could not be started.
#[cfg(not(unix))]
fn replace_process(mut command: Command) -> std::io::Error {
    match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(error) => error,
    }
}
