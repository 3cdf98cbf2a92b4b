//! Interrupting a blocking call. Every public call blocks its thread until the client's runtime has finished it,
//! which can take long: a `send` rides out a relay outage for up to 30 s, `join_with_token` waits to be admitted.
//! A caller that must stay interruptible (the Python bindings, so that Ctrl-C works) installs a check for the
//! calls of its thread with [`while_checking`]; while such a call blocks, the check runs every
//! [`CHECK_INTERVAL`], and once it returns `true` the call stops where it is and fails with
//! `runtime error: interrupted`. What the call had done by then stays done, as if the process had stopped there:
//! the client's state is durable at every step, so nothing is half-applied.

use std::cell::Cell;
use std::time::Duration;

/// How often an installed check runs while a call blocks: well within the half second a user waits for Ctrl-C.
const CHECK_INTERVAL: Duration = Duration::from_millis(50);

thread_local! {
    static CHECK: Cell<Option<fn() -> bool>> = const { Cell::new(None) };
}

/// Runs `call` with `check` installed for the blocking client calls it makes on this thread.
pub fn while_checking<T>(check: fn() -> bool, call: impl FnOnce() -> T) -> T {
    /// Puts back the check that was installed before, however `call` ends.
    struct Restore(Option<fn() -> bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CHECK.set(self.0);
        }
    }
    let _restore = Restore(CHECK.replace(Some(check)));
    call()
}

/// The check installed for this thread's calls, if any.
pub(crate) fn installed() -> Option<fn() -> bool> {
    CHECK.get()
}

/// Returns once `check` asks for the call to stop.
pub(crate) async fn requested(check: fn() -> bool) {
    loop {
        tokio::time::sleep(CHECK_INTERVAL).await;
        if check() {
            return;
        }
    }
}

/// The error an interrupted call fails with.
pub(crate) fn interrupted() -> crate::Error {
    crate::Error::Runtime("interrupted".into())
}
