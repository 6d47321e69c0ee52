//! The event bus: log chunks, process events and messages, fanned out to
//! subscribers (`rpm2 logs`, `launchBus`). Its API is a subset of tokio's
//! `broadcast`, but each subscriber has its own queue bounded by bytes, not
//! one shared ring of events: log events carry whole read chunks (up to
//! 256 KiB), and a ring of 512 of them held for a stalled reader pinned
//! 128 MiB. What does not fit a subscriber's queue is counted and reported
//! to it by one [`Event::Dropped`] before the next event it gets.
//!
//! With no subscriber, `send` does nothing (callers check
//! `receiver_count()` before they even build an event).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rpm2_proto::Event;
use tokio::sync::Notify;

/// Bytes of events queued for one subscriber that reads slowly.
pub const SUBSCRIBER_LIMIT: usize = 1024 * 1024;
/// What an event costs in a queue beyond its text (names, numbers).
const EVENT_OVERHEAD: usize = 128;

struct Shared {
    subscribers: Mutex<Vec<Arc<Slot>>>,
    receivers: AtomicUsize,
    senders: AtomicUsize,
    limit: usize,
}

#[derive(Default)]
struct Slot {
    queue: Mutex<Queue>,
    notify: Notify,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    bytes: usize,
    dropped_events: u64,
    dropped_lines: u64,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Queue {
    /// Queue the `Dropped` marker for what was left out, if anything.
    fn report_dropped(&mut self, now_ms: u64) {
        if self.dropped_events == 0 {
            return;
        }
        self.events.push_back(Event::Dropped {
            at: now_ms,
            events: self.dropped_events,
            lines: self.dropped_lines,
        });
        self.bytes += EVENT_OVERHEAD;
        self.dropped_events = 0;
        self.dropped_lines = 0;
    }

    fn take(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            // Caught up: say what was missed.
            self.report_dropped(now_ms());
        }
        let event = self.events.pop_front()?;
        self.bytes = self.bytes.saturating_sub(cost(&event));
        Some(event)
    }
}

/// A bus with `limit` bytes per subscriber, and a first subscriber.
#[must_use]
pub fn channel(limit: usize) -> (Sender, Receiver) {
    let tx = Sender {
        shared: Arc::new(Shared {
            subscribers: Mutex::new(Vec::new()),
            receivers: AtomicUsize::new(0),
            senders: AtomicUsize::new(1),
            limit,
        }),
    };
    let rx = tx.subscribe();
    (tx, rx)
}

/// The publishing side; clones share the bus.
pub struct Sender {
    shared: Arc<Shared>,
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            for slot in lock(&self.shared.subscribers).iter() {
                lock(&slot.queue).closed = true;
                slot.notify.notify_one();
            }
        }
    }
}

/// `send` found no subscriber (the event is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSubscriber;

impl Sender {
    /// Subscribers right now.
    #[must_use]
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.load(Ordering::Relaxed)
    }

    #[must_use]
    pub fn subscribe(&self) -> Receiver {
        let slot = Arc::new(Slot::default());
        lock(&self.shared.subscribers).push(Arc::clone(&slot));
        self.shared.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            slot,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Queue `event` for every subscriber with room for it; returns how
    /// many subscribers there are.
    ///
    /// # Errors
    /// No subscriber.
    pub fn send(&self, event: Event) -> Result<usize, NoSubscriber> {
        if self.receiver_count() == 0 {
            return Err(NoSubscriber);
        }
        let subscribers = lock(&self.shared.subscribers);
        let size = cost(&event);
        let last = subscribers.len().saturating_sub(1);
        let mut event = Some(event);
        for (i, slot) in subscribers.iter().enumerate() {
            let mut queue = lock(&slot.queue);
            let Some(ev) = event.as_ref() else { break };
            if queue.bytes + size > self.shared.limit {
                queue.dropped_events += 1;
                queue.dropped_lines += lines_in(ev);
                continue;
            }
            queue.report_dropped(now_ms());
            // The last subscriber takes the event itself, the others a copy.
            let copy = (i != last).then(|| ev.clone());
            let Some(ev) = copy.or_else(|| event.take()) else {
                break;
            };
            queue.bytes += size;
            queue.events.push_back(ev);
            drop(queue);
            slot.notify.notify_one();
        }
        Ok(subscribers.len())
    }
}

/// Every sender is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Why `try_recv` returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    Closed,
}

/// One subscriber's end: its own bounded queue.
pub struct Receiver {
    slot: Arc<Slot>,
    shared: Arc<Shared>,
}

impl Receiver {
    /// The next event (or the `Dropped` marker), waiting for one.
    ///
    /// # Errors
    /// Every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Result<Event, Closed> {
        loop {
            // `notify_one` keeps a permit when nobody waits: no lost wake-up.
            let notified = self.slot.notify.notified();
            match self.take() {
                Ok(event) => return Ok(event),
                Err(TryRecvError::Closed) => return Err(Closed),
                Err(TryRecvError::Empty) => notified.await,
            }
        }
    }

    /// The next event if one is queued.
    ///
    /// # Errors
    /// `Empty` when none is queued, `Closed` when none ever will be.
    pub fn try_recv(&mut self) -> Result<Event, TryRecvError> {
        self.take()
    }

    fn take(&self) -> Result<Event, TryRecvError> {
        let mut queue = lock(&self.slot.queue);
        match queue.take() {
            Some(event) => Ok(event),
            None if queue.closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        lock(&self.shared.subscribers).retain(|s| !Arc::ptr_eq(s, &self.slot));
        self.shared.receivers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An event's share of a queue's bytes.
fn cost(event: &Event) -> usize {
    EVENT_OVERHEAD
        + match event {
            Event::LogOut { data, .. } | Event::LogErr { data, .. } => data.len(),
            _ => 0,
        }
}

fn lines_in(event: &Event) -> u64 {
    match event {
        Event::LogOut { data, .. } | Event::LogErr { data, .. } => {
            let newlines = data.bytes().filter(|&b| b == b'\n').count().max(1);
            u64::try_from(newlines).unwrap_or(u64::MAX)
        }
        _ => 0,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpm2_proto::EventProcess;

    fn chunk(lines: usize) -> Event {
        Event::LogOut {
            process: EventProcess {
                pm_id: 0,
                name: "a".into(),
                namespace: "default".into(),
            },
            at: 0,
            data: "x\n".repeat(lines),
        }
    }

    #[test]
    fn a_slow_subscriber_keeps_a_bounded_queue_and_is_told_what_it_missed() {
        let (tx, mut slow) = channel(SUBSCRIBER_LIMIT);
        for _ in 0..100 {
            tx.send(chunk(64 * 1024)).unwrap();
        }
        // 128 KiB each: 7 fit in 1 MiB, the rest are counted.
        let mut got = 0;
        let marker = loop {
            match slow.try_recv().unwrap() {
                Event::LogOut { .. } => got += 1,
                Event::Dropped { events, lines, .. } => break (events, lines),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(got, 7);
        assert_eq!(marker, (93, 93 * 64 * 1024));
        assert_eq!(slow.try_recv(), Err(TryRecvError::Empty));
        // Room again: events flow, with no second marker.
        tx.send(chunk(1)).unwrap();
        assert!(matches!(slow.try_recv(), Ok(Event::LogOut { .. })));
    }

    #[test]
    fn each_subscriber_has_its_own_queue() {
        let (tx, mut a) = channel(SUBSCRIBER_LIMIT);
        let mut b = tx.subscribe();
        assert_eq!(tx.receiver_count(), 2);
        tx.send(chunk(1)).unwrap();
        assert!(a.try_recv().is_ok());
        assert!(b.try_recv().is_ok());
        drop(b);
        assert_eq!(tx.receiver_count(), 1);
        drop(tx);
        assert_eq!(a.try_recv(), Err(TryRecvError::Closed));
    }

    #[test]
    fn no_subscriber_no_work() {
        let (tx, rx) = channel(SUBSCRIBER_LIMIT);
        drop(rx);
        assert!(tx.send(chunk(1)).is_err());
    }
}
