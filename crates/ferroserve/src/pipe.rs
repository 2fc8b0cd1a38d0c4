//! A closed standard output (`ferroserve models list | head -1`) ends the
//! command quietly, as it ends other Unix tools, instead of a panic.
//!
//! Rust ignores `SIGPIPE`, so a write to a closed pipe fails with
//! `BrokenPipe`: `println!` then panics ("failed printing to stdout") and a
//! propagated write error would be printed as one. Restoring the signal's
//! default needs `unsafe` (forbidden here), so both paths are caught
//! instead: a panic hook for the print macros, wherever they are (our code
//! or a library's), and [`is_broken_pipe`] for errors that reach `main`.

use std::io;

/// Exit status of a command whose output pipe was closed: what a shell
/// reports for a process ended by `SIGPIPE` (128 + 13).
pub const BROKEN_PIPE_EXIT: u8 = 141;

/// Installs a panic hook that exits quietly with [`BROKEN_PIPE_EXIT`] when
/// a print macro panics because stdout or stderr is a closed pipe; any
/// other panic goes to the default hook.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_print_to_closed_pipe(message) {
            std::process::exit(i32::from(BROKEN_PIPE_EXIT));
        }
        default(info);
    }));
}

/// Whether the panic message is std's "failed printing to stdout: Broken
/// pipe (os error 32)" (or the same for stderr).
fn is_print_to_closed_pipe(message: &str) -> bool {
    let broken = io::Error::from(io::ErrorKind::BrokenPipe).to_string();
    let os = io::Error::from_raw_os_error(32).to_string();
    message.starts_with("failed printing to std")
        && (message.contains(&os) || message.contains(&broken))
}

/// Whether `error` (or one of its causes) is a write to a closed pipe of
/// this process's own output. A broken connection to a server (an HTTP
/// client error in the chain) is a real failure and is reported.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    let over_the_network = error.chain().any(|cause| cause.is::<reqwest::Error>());
    !over_the_network
        && error.chain().any(|cause| {
            cause
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_prints_to_a_closed_pipe_count() {
        let epipe = io::Error::from_raw_os_error(32);
        assert!(is_print_to_closed_pipe(&format!(
            "failed printing to stdout: {epipe}"
        )));
        assert!(is_print_to_closed_pipe(&format!(
            "failed printing to stderr: {epipe}"
        )));
        assert!(!is_print_to_closed_pipe(
            "failed printing to stdout: disk full"
        ));
        assert!(!is_print_to_closed_pipe(&format!(
            "index out of range {epipe}"
        )));
    }

    #[test]
    fn broken_pipes_are_found_among_causes() {
        let error = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("cannot write the table");
        assert!(is_broken_pipe(&error));
        assert!(!is_broken_pipe(&anyhow::anyhow!("Broken pipe")));
    }
}
