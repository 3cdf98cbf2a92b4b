//! Long-poll wake-ups across the API instances on one PostgreSQL, through LISTEN/NOTIFY.
//!
//! [`Signals`] wakes the long-polls of one process, but with PostgreSQL several
//! `skytale api` processes serve one database: a join redeemed through one instance must wake the owner's
//! long-poll on another at once, not when it times out. So every ring is also sent as a NOTIFY on [`CHANNEL`]
//! ([`Peers::notify`]), and each process keeps one LISTEN connection ([`follow`]) that rings its own waiters for
//! what the other instances sent.
//!
//! A notification is only a hint: waiters re-read the database after every wake-up. Notifications sent while the
//! listener is not connected are lost, so after every connection it wakes every waiter of its process to re-read.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::AnyPool;
use tokio::sync::watch;

use crate::signals::{Signals, Subject};

/// The NOTIFY channel every instance listens on.
const CHANNEL: &str = "skytale_api_wakeups";
/// Largest payload sent in one NOTIFY: PostgreSQL refuses 8000 bytes and more.
const MAX_PAYLOAD: usize = 7900;
const INITIAL_RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(5);

/// Sends this instance's rings to the other instances.
#[derive(Debug)]
pub(crate) struct Peers {
    pool: AnyPool,
    /// Tells this instance's notifications apart when they come back to its own listener.
    instance: String,
}

impl Peers {
    pub(crate) fn new(pool: AnyPool, instance: String) -> Self {
        Self { pool, instance }
    }

    /// NOTIFYs `subjects` in as few payloads as fit. A failure is logged, not returned: the change is stored,
    /// and the other instances' waiters see it when their long-poll ends and the client asks again.
    pub(crate) async fn notify(&self, subjects: &[Subject]) {
        for payload in payloads(&self.instance, subjects) {
            let sent = sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(&self.pool).await;
            if let Err(error) = sent {
                tracing::warn!(%error, "cannot wake the other API instances' long-polls; they see the change at their next poll");
            }
        }
    }
}

/// A fresh id for this process's notifications.
pub(crate) fn new_instance_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The sender's instance on the first line, then one subject per line, in payloads of at most [`MAX_PAYLOAD`].
fn payloads(instance: &str, subjects: &[Subject]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = instance.to_owned();
    for line in subjects.iter().map(Subject::to_line) {
        if current.len() + 1 + line.len() > MAX_PAYLOAD && current.len() > instance.len() {
            payloads.push(std::mem::replace(&mut current, instance.to_owned()));
        }
        current.push('\n');
        current.push_str(&line);
    }
    if current.len() > instance.len() {
        payloads.push(current);
    }
    payloads
}

/// The subjects another instance sent; none for this instance's own notifications (already rung here).
fn subjects_from<'a>(payload: &'a str, instance: &str) -> impl Iterator<Item = Subject> + 'a {
    let mut lines = payload.lines();
    let from_another = lines.next().is_some_and(|sender| sender != instance);
    lines.filter(move |_| from_another).filter_map(Subject::from_line)
}

/// Listens on [`CHANNEL`] until `shutdown`, ringing this process's waiters for every other instance's
/// notification, and all of them after each connection. Reconnects on its own, with backoff.
pub(crate) async fn follow(
    database_url: String,
    instance: String,
    signals: Arc<Signals>,
    shutdown: watch::Receiver<bool>,
) {
    let mut backoff = INITIAL_RECONNECT_BACKOFF;
    loop {
        let mut stop = shutdown.clone();
        let connected = tokio::select! {
            connected = listen(&database_url) => connected,
            _ = stop.wait_for(|stopping| *stopping) => return,
        };
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, ?backoff, "cannot LISTEN for the other API instances' wake-ups; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|stopping| *stopping) => return,
                }
                backoff = (backoff * 2).min(MAX_RECONNECT_BACKOFF);
                continue;
            }
        };
        backoff = INITIAL_RECONNECT_BACKOFF;
        // Whatever was sent while no listener was connected is lost: every waiter re-reads.
        signals.ring_everyone_here();
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                _ = stop.wait_for(|stopping| *stopping) => return,
            };
            match received {
                Ok(Some(notification)) => {
                    for subject in subjects_from(notification.payload(), &instance) {
                        signals.ring_here(&subject);
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "lost the LISTEN connection for the other API instances' wake-ups");
                    break;
                }
            }
        }
    }
}

async fn listen(database_url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_stay_under_the_limit() {
        let subjects: Vec<Subject> = (0..1000).map(|i| Subject::Join(format!("{i:032x}"))).collect();
        let payloads = payloads("sender", &subjects);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|payload| payload.len() <= MAX_PAYLOAD));
        let received: Vec<Subject> = payloads.iter().flat_map(|payload| subjects_from(payload, "receiver")).collect();
        assert_eq!(received, subjects);
    }

    #[test]
    fn an_instances_own_notifications_are_skipped_and_unknown_lines_ignored() {
        let subjects = [Subject::ChannelJoins("acme/team/general".into()), Subject::Join("j1".into())];
        let payload = payloads("me", &subjects).remove(0);
        assert_eq!(subjects_from(&payload, "me").count(), 0);
        assert_eq!(subjects_from(&format!("{payload}\nsomething else"), "other").collect::<Vec<_>>(), subjects);
        assert_eq!(subjects_from("", "other").count(), 0);
    }
}
