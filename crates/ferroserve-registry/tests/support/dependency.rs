//! The one rule for a test's real dependency (a server binary it starts):
//! when it is missing the test fails and says how to install it, under CI
//! and everywhere else; a missing dependency is never a skip.

/// `found`, or a failure naming `what` is missing and how to install it.
#[track_caller]
pub(crate) fn require<T>(found: Option<T>, what: &str, install_hint: &str) -> T {
    match found {
        Some(found) => found,
        None => missing(what, install_hint),
    }
}

/// Fails the test: `what` is not installed; `install_hint` says how.
#[track_caller]
pub(crate) fn missing(what: &str, install_hint: &str) -> ! {
    let ci = if std::env::var_os("CI").is_some() {
        " (CI is set)"
    } else {
        ""
    };
    panic!("{what} not found{ci}: {install_hint}")
}
