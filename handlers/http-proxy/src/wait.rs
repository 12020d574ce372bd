//! Bounds on waits for a peer: one wait, the rate over all of them, and the shorter bounds
//! under pressure.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// The shortest bound under pressure (see [`pressed`]).
const PRESSED_FLOOR: Duration = Duration::from_secs(1);

/// A bound on a client's wait under pressure: a tenth of `full`, at least a second (or `full`,
/// if shorter).
pub(crate) fn pressed(full: Duration) -> Duration {
    (full / 10).max(full.min(PRESSED_FLOOR))
}

/// Polls `timer` until `deadline`: the timer is made on first use and reset when the deadline
/// moved, not made anew at every wait.
pub(crate) fn poll_deadline(
    timer: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let timer = match timer {
        Some(timer) => {
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            timer
        }
        None => timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
    };
    timer.as_mut().poll(cx)
}

/// Which bound a wait ran past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Past {
    /// The bound on one wait.
    Wait,
    /// The bound on the rate over every wait.
    Rate,
}

/// A bound on waits for a peer: on each (armed when a poll waits, disarmed by progress), and,
/// given a rate, on all of them together: they may add up to one wait's bound plus a second
/// for every `rate` bytes that came (Apache's `MinRate`). The time between waits (the guest at
/// work) is not counted. Its timer is made once and reset, not made anew at every wait.
pub(crate) struct IdleBound {
    timeout: Duration,
    /// Bytes a second over the whole; 0: no bound on the rate.
    rate: u64,
    /// Bytes that came, and the time spent waiting for them before the current wait.
    bytes: u64,
    waited: Duration,
    /// When the current wait began.
    since: Option<Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleBound {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            rate: 0,
            bytes: 0,
            waited: Duration::ZERO,
            since: None,
            timer: None,
        }
    }

    /// The same, with the waits bound to keep up `rate` bytes a second on the whole.
    pub(crate) fn with_rate(mut self, rate: u64) -> Self {
        self.rate = rate;
        self
    }

    /// `bytes` came: the wait for them is over, and the next starts a new bound.
    pub(crate) fn progressed(&mut self, bytes: u64) {
        if let Some(since) = self.since.take() {
            self.waited += since.elapsed();
        }
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// A poll is waiting: `Ready` once it has waited past a bound, with which.
    pub(crate) fn poll_waited_out(&mut self, cx: &mut Context<'_>) -> Poll<Past> {
        let since = *self.since.get_or_insert_with(Instant::now);
        let (mut wait, mut past) = (self.timeout, Past::Wait);
        if self.rate > 0 {
            let earned = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
            let left = (self.timeout.saturating_add(earned)).saturating_sub(self.waited);
            if left < wait {
                (wait, past) = (left, Past::Rate);
            }
        }
        let deadline = since + wait;
        poll_deadline(&mut self.timer, deadline, cx).map(|()| past)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(bound: &mut IdleBound) -> Poll<Past> {
        bound.poll_waited_out(&mut Context::from_waker(std::task::Waker::noop()))
    }

    /// Waits `wait` (under the paused clock); what the bound says then.
    async fn wait(bound: &mut IdleBound, wait: Duration) -> Poll<Past> {
        assert!(poll(bound).is_pending(), "past its bound before the wait");
        tokio::time::advance(wait).await;
        poll(bound)
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_runs_out_of_time_though_no_wait_is_too_long() {
        let mut bound = IdleBound::new(Duration::from_secs(10)).with_rate(500);
        let started = Instant::now();
        // A byte every 5 s: each wait half the bound on one.
        let past = loop {
            match wait(&mut bound, Duration::from_secs(5)).await {
                Poll::Ready(past) => break past,
                Poll::Pending => bound.progressed(1),
            }
            assert!(started.elapsed() < Duration::from_secs(60), "never cut off");
        };
        assert_eq!(past, Past::Rate);
        assert_eq!(started.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_at_the_rate_is_never_cut_off_and_one_long_wait_is() {
        let mut bound = IdleBound::new(Duration::from_secs(10)).with_rate(500);
        // 600 bytes a second for ten minutes, the guest working a second between reads.
        for _ in 0..600 {
            assert!(wait(&mut bound, Duration::from_secs(1)).await.is_pending());
            bound.progressed(600);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert!(poll(&mut bound).is_pending());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(poll(&mut bound), Poll::Ready(Past::Wait));
        // Without a rate, only the one wait is bounded.
        let mut bound = IdleBound::new(Duration::from_secs(10));
        for _ in 0..100 {
            assert!(wait(&mut bound, Duration::from_secs(9)).await.is_pending());
            bound.progressed(1);
        }
    }
}
