//! [`Gated`]: a future that is polled only after it has woken its task.
//!
//! A client connection's task is woken for every read, write and upstream answer, and
//! `select!` polls every branch each time. The connection's other branches (the drain
//! phase, the idle bound) wake it perhaps once a minute, yet polling them costs lock and
//! atomic work on every wake-up: about 650 instructions per proxied request, and a
//! shared `watch` channel touched by every worker thread. A [`Gated`] future gives its
//! inner future a waker of its own, which records the wake-up and then wakes the task, and
//! polls the inner future only when that record is set.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Wraps `F` so that it is polled only when it has asked to be (and the first time).
pub struct Gated<F> {
    inner: F,
    gate: Arc<Gate>,
    /// The waker handed to `inner`: it opens the gate, then wakes `parent`.
    waker: Waker,
    /// The task waker last stored in the gate (compared without touching the gate).
    parent: Option<Waker>,
}

struct Gate {
    open: AtomicBool,
    parent: Mutex<Option<Waker>>,
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.open.store(true, Ordering::Release);
        let parent = match self.parent.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(w) = parent {
            w.wake();
        }
    }
}

impl<F: Future + Unpin> Gated<F> {
    pub fn new(inner: F) -> Self {
        // Open: the first poll must reach `inner`, which registers its wakers then.
        let gate = Arc::new(Gate {
            open: AtomicBool::new(true),
            parent: Mutex::new(None),
        });
        Gated {
            inner,
            waker: Waker::from(gate.clone()),
            gate,
            parent: None,
        }
    }
}

impl<F: Future + Unpin> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // A task's waker rarely changes: one comparison, no lock, on the usual poll.
        if !this
            .parent
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            let w = cx.waker().clone();
            match this.gate.parent.lock() {
                Ok(mut p) => *p = Some(w.clone()),
                Err(poisoned) => *poisoned.into_inner() = Some(w.clone()),
            }
            this.parent = Some(w);
        }
        // Closed before polling: a wake-up during the poll opens it again.
        if !this.gate.open.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready once `ready` is set; keeps the last waker it was given.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        ready: AtomicBool,
        waker: Mutex<Option<Waker>>,
    }

    struct ProbeFuture(Arc<Probe>);

    impl Future for ProbeFuture {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.0.polls.fetch_add(1, Ordering::Relaxed);
            *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.0.ready.load(Ordering::Relaxed) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    /// A task waker that counts wake-ups.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One poll of `gated` by the task `waker` belongs to.
    fn poll(gated: &mut Gated<ProbeFuture>, waker: &Waker) -> Poll<()> {
        Pin::new(gated).poll(&mut Context::from_waker(waker))
    }

    impl Probe {
        /// The waker the gate last handed to the inner future.
        fn inner_waker(&self) -> Waker {
            self.waker.lock().unwrap().clone().unwrap()
        }
    }

    #[test]
    fn the_inner_future_is_polled_first_and_then_only_after_its_own_wake() {
        let probe = Arc::new(Probe::default());
        let task = Arc::new(Task::default());
        let task_waker = Waker::from(task.clone());
        let mut gated = Gated::new(ProbeFuture(probe.clone()));

        assert!(poll(&mut gated, &task_waker).is_pending());
        assert_eq!(
            probe.polls.load(Ordering::Relaxed),
            1,
            "first poll reaches it"
        );
        // The task is polled for other reasons: the inner future is left alone.
        for _ in 0..100 {
            assert!(poll(&mut gated, &task_waker).is_pending());
        }
        assert_eq!(probe.polls.load(Ordering::Relaxed), 1);

        // Its own wake-up wakes the task and lets the next poll through, once.
        probe.ready.store(true, Ordering::Relaxed);
        probe.inner_waker().wake_by_ref();
        assert_eq!(task.0.load(Ordering::Relaxed), 1, "task woken");
        assert!(poll(&mut gated, &task_waker).is_ready());
        assert_eq!(probe.polls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_new_task_waker_is_the_one_woken() {
        let probe = Arc::new(Probe::default());
        let (first, second) = (Arc::new(Task::default()), Arc::new(Task::default()));
        let mut gated = Gated::new(ProbeFuture(probe.clone()));
        let w1 = Waker::from(first.clone());
        let w2 = Waker::from(second.clone());
        assert!(poll(&mut gated, &w1).is_pending());
        assert!(poll(&mut gated, &w2).is_pending());
        probe.inner_waker().wake();
        assert_eq!(first.0.load(Ordering::Relaxed), 0);
        assert_eq!(second.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_wake_up_from_another_thread_is_not_lost() {
        let probe = Arc::new(Probe::default());
        let task = Arc::new(Task::default());
        let task_waker = Waker::from(task.clone());
        let mut gated = Gated::new(ProbeFuture(probe.clone()));
        assert!(poll(&mut gated, &task_waker).is_pending());
        let inner_waker = probe.inner_waker();
        probe.ready.store(true, Ordering::Relaxed);
        std::thread::spawn(move || inner_waker.wake())
            .join()
            .unwrap();
        assert_eq!(task.0.load(Ordering::Relaxed), 1);
        assert!(poll(&mut gated, &task_waker).is_ready());
    }
}
