//! An HTTP/2 tunnel's idleness: what keeps it open, and when it is closed.

use std::sync::atomic::{AtomicU64, Ordering};

use super::IDLE_TIMEOUT;

/// When an HTTP/2 tunnel last did something: hyper's HTTP/1.1 server ends a connection that sends no request
/// for `IDLE_TIMEOUT`, its HTTP/2 server has no such limit, so the tunnel keeps this itself.
pub(super) struct Activity {
    /// Tokio's clock (the same as the system's outside tests with paused time).
    started: tokio::time::Instant,
    /// Milliseconds after `started` of the last request or response body frame.
    last: AtomicU64,
    /// Requests waiting for their upstream's response head (which may take long, silently).
    waiting: std::sync::atomic::AtomicUsize,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            started: tokio::time::Instant::now(),
            last: AtomicU64::new(0),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(super) fn touch(&self) {
        self.last
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Returns once nothing has happened for `IDLE_TIMEOUT` with no request waiting.
    pub(super) async fn idle(&self) {
        loop {
            tokio::time::sleep(IDLE_TIMEOUT / 8).await;
            let idle_ms = (self.started.elapsed().as_millis() as u64).saturating_sub(self.last.load(Ordering::Relaxed));
            if self.waiting.load(Ordering::Relaxed) == 0 && idle_ms >= IDLE_TIMEOUT.as_millis() as u64 {
                return;
            }
        }
    }
}

/// A request counted as waiting for its response head while this lives.
pub(super) struct Waiting<'a>(&'a Activity);

impl<'a> Waiting<'a> {
    pub(super) fn new(activity: &'a Activity) -> Self {
        activity.touch();
        activity.waiting.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_h2_tunnel_is_idle_only_without_traffic_and_waiting_requests() {
        let activity = Activity::new();
        // A request waiting for its response head keeps the tunnel, however long the upstream takes.
        let waiting = Waiting::new(&activity);
        let idle = tokio::time::timeout(IDLE_TIMEOUT * 3, activity.idle()).await;
        assert!(idle.is_err(), "a tunnel with a waiting request went idle");
        drop(waiting);
        // Body frames keep it too.
        let started = tokio::time::Instant::now();
        let busy = async {
            for _ in 0..10 {
                tokio::time::sleep(IDLE_TIMEOUT / 4).await;
                activity.touch();
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = activity.idle() => {}
            () = busy => {}
        }
        let lasted = started.elapsed();
        assert!(
            lasted >= IDLE_TIMEOUT * 5 / 2,
            "went idle while frames flowed ({lasted:?})"
        );
        // Then nothing: idle within a check interval after IDLE_TIMEOUT.
        let started = tokio::time::Instant::now();
        activity.touch();
        activity.idle().await;
        let lasted = started.elapsed();
        assert!(
            lasted >= IDLE_TIMEOUT && lasted <= IDLE_TIMEOUT + IDLE_TIMEOUT / 8,
            "{lasted:?}"
        );
    }
}
