//! The tracker: the one owner of the [`Engine`] in a running process, plus what the read side
//! needs besides engine state (the most recent signals). The daemon's engine task owns a
//! [`Tracker`] and feeds it inputs; everything else (the HTTP API, the page, operator commands)
//! reaches it through a cloneable [`TrackerHandle`], which sends a closure to the engine task and
//! awaits its result. The engine task receives those closures from [`TrackerRequests`], runs
//! each with [`Request::run`] and then carries out the outputs a mutation produced (publish,
//! store), exactly as it does for records. So the engine stays single-threaded and lock-free,
//! and a read sees a consistent state between two inputs.

use crate::engine::{Engine, Input, Output, Signal};
use std::collections::VecDeque;
use tokio::sync::{mpsc, oneshot};

/// How many recent signals a tracker keeps for `/api/v1/signals`.
pub const RECENT_SIGNALS: usize = 1000;

/// How many requests may wait for the engine task before callers wait to send.
const QUEUE_DEPTH: usize = 64;

/// The engine plus a ring of the signals it emitted most recently.
pub struct Tracker {
    engine: Engine,
    /// The latest signals, oldest first, at most `capacity`.
    recent: VecDeque<Signal>,
    capacity: usize,
    /// Signals emitted since the tracker was built (numbers the ring for readers).
    emitted: u64,
    /// Operator commands numbered so far (for generated request ids).
    commands: u64,
}

impl Tracker {
    /// A tracker keeping the last [`RECENT_SIGNALS`] signals.
    pub fn new(engine: Engine) -> Tracker {
        Tracker::with_capacity(engine, RECENT_SIGNALS)
    }

    /// A tracker keeping the last `capacity` signals.
    pub fn with_capacity(engine: Engine, capacity: usize) -> Tracker {
        Tracker {
            engine,
            recent: VecDeque::with_capacity(capacity.min(RECENT_SIGNALS)),
            capacity,
            emitted: 0,
            commands: 0,
        }
    }

    /// Applies one input to the engine, appends its outputs to `out` and remembers the signals
    /// among them.
    pub fn handle(&mut self, input: Input<'_>, out: &mut Vec<Output>) {
        let first = out.len();
        self.engine.handle(input, out);
        self.remember(&out[first..]);
    }

    /// Remembers the signals among outputs produced outside [`Tracker::handle`] (for example by
    /// an engine restored and driven directly).
    pub fn remember(&mut self, outputs: &[Output]) {
        for output in outputs {
            if let Output::Emit(signal) = output {
                self.keep_signal(signal.clone());
            }
        }
    }

    /// Applies one input like [`Tracker::handle`], but leaves remembering its signals to the
    /// caller, which hands the outputs back to [`Tracker::keep`] once it has carried them out:
    /// the signals then move into the ring instead of being copied (the daemon's per-record path).
    pub fn handle_deferred(&mut self, input: Input<'_>, out: &mut Vec<Output>) {
        self.engine.handle(input, out);
    }

    /// Remembers the signals among outputs of [`Tracker::handle_deferred`] and drains `outputs`,
    /// moving the signals into the ring.
    pub fn keep(&mut self, outputs: &mut Vec<Output>) {
        for output in outputs.drain(..) {
            if let Output::Emit(signal) = output {
                self.keep_signal(signal);
            }
        }
    }

    fn keep_signal(&mut self, signal: Signal) {
        if self.capacity == 0 {
            return;
        }
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(signal);
        self.emitted += 1;
    }

    /// The engine, for reads.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for the engine task's own use (restoring a snapshot, counting undecodable
    /// records). Inputs given here bypass the signal ring: prefer [`Tracker::handle`].
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The most recent signals, newest first, at most `limit`.
    pub fn recent_signals(&self, limit: usize) -> impl Iterator<Item = &Signal> {
        self.recent.iter().rev().take(limit)
    }

    /// Signals emitted since the tracker was built.
    pub fn signals_emitted(&self) -> u64 {
        self.emitted
    }

    /// Numbers one more operator command (from 1), for request ids the caller did not give.
    pub fn next_command_number(&mut self) -> u64 {
        self.commands += 1;
        self.commands
    }
}

/// The work a [`TrackerHandle`] sends: a closure run on the engine task.
type Job = Box<dyn FnOnce(&mut Tracker, &mut Vec<Output>) + Send>;

/// One request from a [`TrackerHandle`], to be run by the engine task.
pub struct Request {
    job: Job,
}

impl Request {
    /// Runs the request against the tracker; a mutation appends its outputs to `out`, which the
    /// engine task then carries out like the outputs of a record.
    pub fn run(self, tracker: &mut Tracker, out: &mut Vec<Output>) {
        (self.job)(tracker, out)
    }
}

/// The engine task has stopped, so the request was not (or not fully) served.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("the tracker is not running")]
pub struct TrackerGone;

/// A cheap, cloneable way to reach the tracker from other tasks.
#[derive(Clone)]
pub struct TrackerHandle {
    requests: mpsc::Sender<Request>,
}

/// The engine task's end of the request channel.
pub struct TrackerRequests {
    requests: mpsc::Receiver<Request>,
}

/// A connected handle and request receiver.
pub fn channel() -> (TrackerHandle, TrackerRequests) {
    let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
    (
        TrackerHandle { requests: sender },
        TrackerRequests { requests: receiver },
    )
}

impl TrackerHandle {
    /// Runs `f` on the engine task and returns its result. Reads should only read; a mutation
    /// goes through [`Tracker::handle`] with an `Input` so its outputs land in the given vector.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tracker, &mut Vec<Output>) -> T + Send + 'static,
    ) -> Result<T, TrackerGone> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |tracker, out| {
            // The caller may have gone away (request cancelled); nothing to do then.
            let _ = reply.send(f(tracker, out));
        });
        self.requests
            .send(Request { job })
            .await
            .map_err(|_| TrackerGone)?;
        result.await.map_err(|_| TrackerGone)
    }
}

impl TrackerRequests {
    /// The next request, or `None` once every handle is dropped.
    pub async fn recv(&mut self) -> Option<Request> {
        self.requests.recv().await
    }

    /// The next request if one is waiting (for an engine loop that runs on its own thread).
    pub fn try_recv(&mut self) -> Option<Request> {
        self.requests.try_recv().ok()
    }
}

/// Serves requests until every handle is dropped, handing the outputs of each request to
/// `effects`, and returns the tracker. The daemon has its own loop (it also reads records);
/// this one serves tests, tools and read-only uses.
pub async fn serve(
    mut tracker: Tracker,
    mut requests: TrackerRequests,
    mut effects: impl FnMut(Vec<Output>),
) -> Tracker {
    while let Some(request) = requests.recv().await {
        let mut out = Vec::new();
        request.run(&mut tracker, &mut out);
        if !out.is_empty() {
            effects(out);
        }
    }
    tracker
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::flow::{parse_flow_file, Flow};
    use crate::record::Record;
    use crate::replay::decode::decode_line;

    const FLOW: &str = r#"
flow: orders
events:
  Placed: { topic: orders, match: { type: Placed }, key: id }
  Paid: { topic: orders, match: { type: Paid }, key: id }
start: Placed
steps:
  payment: { await: Paid, within: 5m }
"#;

    fn engine() -> Engine {
        let def = parse_flow_file(std::path::Path::new("orders.yaml"), FLOW).expect("flow parses");
        Engine::new(vec![Flow::new(def)], EngineConfig::default())
    }

    fn record(offset: i64, kind: &str, id: &str, at: &str) -> Record<'static> {
        decode_line(
            &format!(
                r#"{{"topic":"orders","offset":{offset},"timestamp":"{at}","value":{{"type":"{kind}","id":"{id}"}}}}"#
            ),
            offset as u64,
        )
        .expect("record parses")
        .into_owned()
    }

    #[test]
    fn the_ring_keeps_the_latest_signals_newest_first() {
        let mut tracker = Tracker::with_capacity(engine(), 2);
        let mut out = Vec::new();
        for (offset, id) in ["a", "b", "c"].into_iter().enumerate() {
            let record = record(offset as i64, "Placed", id, "2026-01-01T00:00:00Z");
            tracker.handle(Input::RecordReceived(&record), &mut out);
        }
        assert_eq!(out.len(), 3);
        let subjects: Vec<&str> = tracker
            .recent_signals(10)
            .map(|signal| &*signal.subject)
            .collect();
        assert_eq!(subjects, ["c", "b"]);
        assert_eq!(tracker.signals_emitted(), 3);
        assert_eq!(tracker.recent_signals(1).count(), 1);
    }

    #[test]
    fn deferred_handling_keeps_the_same_signals_as_handle() {
        let mut direct = Tracker::with_capacity(engine(), 2);
        let mut deferred = Tracker::with_capacity(engine(), 2);
        let mut out = Vec::new();
        let mut later = Vec::new();
        for (offset, id) in ["a", "b", "c"].into_iter().enumerate() {
            let record = record(offset as i64, "Placed", id, "2026-01-01T00:00:00Z");
            direct.handle(Input::RecordReceived(&record), &mut out);
            deferred.handle_deferred(Input::RecordReceived(&record), &mut later);
            assert!(deferred.recent_signals(10).count() <= offset, "nothing kept before keep");
            deferred.keep(&mut later);
            assert!(later.is_empty(), "keep drains the outputs");
        }
        let ids = |tracker: &Tracker| -> Vec<String> {
            tracker.recent_signals(10).map(|signal| signal.id.to_string()).collect()
        };
        assert_eq!(ids(&direct), ids(&deferred));
        assert_eq!(ids(&deferred).len(), 2);
        assert_eq!(deferred.signals_emitted(), 3);
    }

    #[tokio::test]
    async fn a_handle_reaches_the_engine_task_and_gets_outputs_carried_out() {
        let (handle, requests) = channel();
        let (effects_sender, mut effects_receiver) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(serve(Tracker::new(engine()), requests, move |out| {
            let _ = effects_sender.send(out.len());
        }));
        let placed = record(0, "Placed", "o-1", "2026-01-01T00:00:00Z");
        let emitted = handle
            .call(move |tracker, out| {
                tracker.handle(Input::RecordReceived(&placed), out);
                out.len()
            })
            .await
            .expect("tracker runs");
        assert_eq!(emitted, 1);
        assert_eq!(effects_receiver.recv().await, Some(1));
        let open = handle
            .call(|tracker, _| tracker.engine().open_instances())
            .await
            .expect("tracker runs");
        assert_eq!(open, 1);
        drop(handle);
        let tracker = task.await.expect("task ends");
        assert_eq!(tracker.signals_emitted(), 1);
    }

    #[tokio::test]
    async fn a_stopped_tracker_is_reported_as_gone() {
        let (handle, requests) = channel();
        drop(requests);
        assert_eq!(handle.call(|_, _| ()).await, Err(TrackerGone));
    }
}
