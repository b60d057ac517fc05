//! Replay's three stages: reading and decoding chunks of lines, the engine, and rendering and
//! writing signals. With more than one core each stage has its own thread, joined by bounded
//! channels, so the engine's thread only runs the engine; with one core the same functions run
//! in turn. The engine sees every line in input order and the signals are written in the order
//! it emits them, so the output is byte-for-byte the same either way.

use super::chunks::{decode_chunk, read_chunk, DecodedChunk, Line};
use crate::engine::correlate::Correlator;
use crate::engine::Output;
use std::io::{BufRead, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::{Builder, ScopedJoinHandle};

/// Chunks (and batches of outputs) that may wait between two stages.
const QUEUED: usize = 3;
/// Rendered signals are written in blocks of about this size.
const WRITE_BLOCK: usize = 32 * 1024;

/// The engine's stage: called with each decoded line in input order (it may take the line's
/// matches), then once with `None` when the input has ended (not after a read error); it
/// pushes what the engine emits.
pub(super) type Step<'s> =
    dyn FnMut(Option<&mut Line<'_>>, &mut Vec<Output>) -> std::io::Result<()> + 's;

/// Renders the signals among the outputs as JSON lines and writes them in blocks.
struct SignalWriter<'w> {
    signals: &'w mut (dyn Write + Send),
    buffer: Vec<u8>,
}

impl<'w> SignalWriter<'w> {
    fn new(signals: &'w mut (dyn Write + Send)) -> Self {
        Self {
            signals,
            buffer: Vec::with_capacity(2 * WRITE_BLOCK),
        }
    }

    /// Writes the signals among `outputs`, leaving it empty (its room kept for reuse).
    fn write(&mut self, outputs: &mut Vec<Output>) -> std::io::Result<()> {
        for output in outputs.drain(..) {
            if let Output::Emit(signal) = output {
                signal.write_json(&mut self.buffer);
                self.buffer.push(b'\n');
                if self.buffer.len() >= WRITE_BLOCK {
                    self.signals.write_all(&self.buffer)?;
                    self.buffer.clear();
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<()> {
        self.signals.write_all(&self.buffer)?;
        self.signals.flush()
    }
}

/// Runs `step` over every line of `input` and writes the signals it emits to `signals`.
/// Errors: the first of `step` or of writing; a read error ends the input, and is returned
/// once the lines before it have been through the engine and their signals written.
/// Lines are matched against the flows with `correlator` as they are decoded.
pub(super) fn run(
    input: &mut (dyn BufRead + Send),
    correlator: &Correlator,
    signals: &mut (dyn Write + Send),
    step: &mut Step<'_>,
) -> std::io::Result<()> {
    // Three threads beat two on two cores too (measured: BENCHMARKS.md).
    if std::thread::available_parallelism().is_ok_and(|cores| cores.get() > 1) {
        run_threaded(input, correlator, signals, step)
    } else {
        run_in_turn(input, correlator, signals, step)
    }
}

/// Every chunk's lines through `step`, collecting its outputs into `outputs` (a vector the
/// writer emptied, when there is one: reusing it spares allocating fresh memory per chunk).
fn step_chunk(
    chunk: &mut DecodedChunk,
    step: &mut Step<'_>,
    outputs: Option<Vec<Output>>,
) -> std::io::Result<Vec<Output>> {
    // About 1.2 signals per record in typical streams; room for more saves most regrowth.
    let mut outputs =
        outputs.unwrap_or_else(|| Vec::with_capacity(chunk.borrow_dependent().len() * 2));
    chunk.with_dependent_mut(|_, lines| -> std::io::Result<()> {
        for line in lines.iter_mut() {
            step(Some(line), &mut outputs)?;
        }
        Ok(())
    })?;
    Ok(outputs)
}

fn run_in_turn(
    input: &mut (dyn BufRead + Send),
    correlator: &Correlator,
    signals: &mut (dyn Write + Send),
    step: &mut Step<'_>,
) -> std::io::Result<()> {
    let mut writer = SignalWriter::new(signals);
    let mut read_error = None;
    let mut next_line = 1;
    let mut spare = None;
    while let Some(raw) = read_chunk(input, &mut next_line, &mut read_error) {
        let mut outputs = step_chunk(&mut decode_chunk(raw, correlator), step, spare.take())?;
        writer.write(&mut outputs)?;
        spare = Some(outputs);
    }
    if let Some(error) = read_error {
        writer.finish()?;
        return Err(error);
    }
    let mut outputs = Vec::new();
    step(None, &mut outputs)?;
    writer.write(&mut outputs)?;
    writer.finish()
}

fn join<T>(handle: ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn run_threaded(
    input: &mut (dyn BufRead + Send),
    correlator: &Correlator,
    signals: &mut (dyn Write + Send),
    step: &mut Step<'_>,
) -> std::io::Result<()> {
    std::thread::scope(|scope| {
        let (decoded_sender, decoded_receiver) = sync_channel::<DecodedChunk>(QUEUED);
        let (spent_sender, spent_chunks) = channel::<DecodedChunk>();
        let reader = Builder::new()
            .name("replay-read".to_owned())
            .spawn_scoped(scope, move || -> std::io::Result<()> {
                let mut read_error = None;
                let mut next_line = 1;
                while let Some(raw) = read_chunk(input, &mut next_line, &mut read_error) {
                    // Chunks the writer is done with are dropped here, where their records
                    // were allocated: freeing memory of another thread is the allocator's
                    // slow path (measured: BENCHMARKS.md).
                    spent_chunks.try_iter().for_each(drop);
                    if decoded_sender.send(decode_chunk(raw, correlator)).is_err() {
                        // The engine's stage stopped; it reports why.
                        return Ok(());
                    }
                }
                read_error.map_or(Ok(()), Err)
            })?;
        let mut writer = WriterThread::spawn(scope, signals, spent_sender)?;
        // The engine's stage, here. `Ok(false)`: the writer stopped, and `finish` says why.
        let mut engine_stage = || -> std::io::Result<bool> {
            for mut chunk in &decoded_receiver {
                let outputs = step_chunk(&mut chunk, step, writer.spare())?;
                if !writer.send(outputs, Some(chunk)) {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        let engine_result = engine_stage();
        drop(decoded_receiver);
        let read_result = join(reader);
        match (engine_result, read_result) {
            (Err(error), _) => return Err(error),
            (Ok(true), Err(error)) => {
                writer.finish()?;
                return Err(error);
            }
            (Ok(true), Ok(())) => {
                let mut outputs = Vec::new();
                step(None, &mut outputs)?;
                // A failed send means the writer stopped; `finish` gives its error.
                writer.send(outputs, None);
            }
            (Ok(false), _) => {}
        }
        writer.finish()
    })
}

/// The signal writer on its own thread. It is sent each chunk's outputs, and the chunk
/// itself so that it is not dropped on the engine's thread; it sends the chunk on to the
/// reader, which made the chunk's records and frees them fast, and the emptied output vectors
/// back to the engine's thread for reuse.
struct WriterThread<'scope> {
    sender: SyncSender<(Vec<Output>, Option<DecodedChunk>)>,
    spares: Receiver<Vec<Output>>,
    handle: ScopedJoinHandle<'scope, std::io::Result<()>>,
}

impl<'scope> WriterThread<'scope> {
    fn spawn<'env, 'w: 'scope>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        signals: &'w mut (dyn Write + Send),
        spent_chunks: Sender<DecodedChunk>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = sync_channel::<(Vec<Output>, Option<DecodedChunk>)>(QUEUED);
        let (spare_sender, spares) = channel();
        let handle = Builder::new()
            .name("replay-write".to_owned())
            .spawn_scoped(scope, move || -> std::io::Result<()> {
                let mut writer = SignalWriter::new(signals);
                for (mut outputs, spent) in receiver {
                    // The signals are dropped here; dropping them on the engine's thread,
                    // where they were made, measured the same or slower (BENCHMARKS.md).
                    writer.write(&mut outputs)?;
                    // The reader or the engine's stage may have finished; then what they
                    // would have dropped is dropped here.
                    if let Some(spent) = spent {
                        let _ = spent_chunks.send(spent);
                    }
                    let _ = spare_sender.send(outputs);
                }
                writer.finish()
            })?;
        Ok(Self {
            sender,
            spares,
            handle,
        })
    }

    /// An emptied output vector to reuse, if the writer has returned one.
    fn spare(&self) -> Option<Vec<Output>> {
        self.spares.try_recv().ok()
    }

    /// Hands over a chunk's outputs; false if the writer stopped (on a write error).
    fn send(&mut self, outputs: Vec<Output>, spent: Option<DecodedChunk>) -> bool {
        self.sender.send((outputs, spent)).is_ok()
    }

    /// Waits for the writer to write what is left; its result is the first write error.
    fn finish(self) -> std::io::Result<()> {
        drop(self.sender);
        join(self.handle)
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::DecodeError;
    use super::*;

    /// A correlator that matches nothing (these tests are about the stages, not the flows).
    fn no_flows() -> Correlator {
        crate::engine::Engine::new(Vec::new(), crate::engine::EngineConfig::default()).correlator()
    }

    /// A line as the engine's stage saw it: its number and topic, or the decoding error.
    type Seen = (u64, Result<String, DecodeError>);

    /// Every stage over `input`: the lines `step` saw, as (number, topic or error), and whether
    /// it was told the input ended.
    fn outcomes(input: &[u8], threaded: bool) -> (Vec<Seen>, bool) {
        outcomes_of(&mut &input[..], threaded)
    }

    /// [`outcomes`] over any reader.
    fn outcomes_of(input: &mut (dyn BufRead + Send), threaded: bool) -> (Vec<Seen>, bool) {
        let mut seen = Vec::new();
        let mut ended = false;
        let mut step = |line: Option<&mut Line<'_>>, _: &mut Vec<Output>| {
            match line {
                Some((number, decoded)) => seen.push((
                    *number,
                    decoded
                        .as_ref()
                        .map(|decoded| decoded.record.topic.clone())
                        .map_err(Clone::clone),
                )),
                None => ended = true,
            }
            Ok(())
        };
        let mut sink = std::io::sink();
        let result = if threaded {
            run_threaded(input, &no_flows(), &mut sink, &mut step)
        } else {
            run_in_turn(input, &no_flows(), &mut sink, &mut step)
        };
        result.unwrap();
        (seen, ended)
    }

    fn record(topic: &str) -> String {
        format!(
            r#"{{"topic":"{topic}","timestamp":1,"value":{{"pad":"{}"}}}}"#,
            "x".repeat(300)
        )
    }

    #[test]
    fn line_numbers_count_blank_and_bad_lines_across_chunks() {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for number in 1..=3000u64 {
            match number % 7 {
                0 => input.extend_from_slice(b"   \r\n"),
                3 => {
                    input.extend_from_slice(b"{\"topic\":\xff}\n");
                    expected.push((number, Err(DecodeError::NotUtf8(9))));
                }
                _ => {
                    input.extend_from_slice(record(&format!("t{number}")).as_bytes());
                    input.push(b'\n');
                    expected.push((number, Ok(format!("t{number}"))));
                }
            }
        }
        // The last line has no newline.
        input.extend_from_slice(record("last").as_bytes());
        expected.push((3001, Ok("last".to_owned())));
        assert!(input.len() > 4 * 128 * 1024, "the input spans several chunks");
        for threaded in [false, true] {
            assert_eq!(outcomes(&input, threaded), (expected.clone(), true));
        }
    }

    #[test]
    fn small_reads_and_lines_longer_than_a_chunk_keep_their_numbers() {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for number in 1..=40u64 {
            let topic = if number % 10 == 0 {
                "x".repeat(super::super::chunks::CHUNK_BYTES + 100)
            } else {
                format!("t{number}")
            };
            input.extend_from_slice(record(&topic).as_bytes());
            input.push(b'\n');
            expected.push((number, Ok(topic)));
        }
        for threaded in [false, true] {
            // Seven bytes per read: chunks fill from many reads and end inside a line.
            let mut reader = std::io::BufReader::with_capacity(7, &input[..]);
            assert_eq!(outcomes_of(&mut reader, threaded), (expected.clone(), true));
        }
    }

    #[test]
    fn empty_input_only_ends() {
        for threaded in [false, true] {
            assert_eq!(outcomes(b"", threaded), (Vec::new(), true));
            assert_eq!(outcomes(b"\n\n  \n", threaded), (Vec::new(), true));
        }
    }

    /// A reader that fails once its bytes are read.
    struct FailingAfter<'a>(&'a [u8]);

    impl std::io::Read for FailingAfter<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk gone"));
            }
            let n = self.0.len().min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_comes_after_the_lines_before_it_and_skips_the_end() {
        let text = format!("{}\n{}\n", record("a"), record("b"));
        for threaded in [false, true] {
            let mut input = std::io::BufReader::new(FailingAfter(text.as_bytes()));
            let mut topics = Vec::new();
            let mut step = |line: Option<&mut Line<'_>>, _: &mut Vec<Output>| {
                topics.push(line.map(|(_, decoded)| decoded.as_ref().unwrap().record.topic.clone()));
                Ok(())
            };
            let mut sink = std::io::sink();
            let result = if threaded {
                run_threaded(&mut input, &no_flows(), &mut sink, &mut step)
            } else {
                run_in_turn(&mut input, &no_flows(), &mut sink, &mut step)
            };
            assert_eq!(result.unwrap_err().to_string(), "disk gone");
            assert_eq!(topics, [Some("a".to_owned()), Some("b".to_owned())]);
        }
    }

    fn a_signal() -> crate::engine::Signal {
        use crate::engine::signal::SignalData;
        crate::engine::Signal {
            id: crate::engine::signal::signal_id(&[]),
            kind: crate::engine::SignalKind::Started,
            source: "flowwatch/test".into(),
            subject: "o-1".into(),
            time: 0,
            alert: false,
            duration: None,
            data: SignalData::new("checkout".into(), "o-1".into()),
        }
    }

    /// A writer that fails on its first write.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_stops_the_replay() {
        let text = format!("{}\n", record("a")).repeat(10_000);
        for threaded in [false, true] {
            let mut lines = 0;
            // Every line emits a signal, so the writer has something to write.
            let mut step = |line: Option<&mut Line<'_>>, outputs: &mut Vec<Output>| {
                lines += usize::from(line.is_some());
                outputs.push(Output::Emit(a_signal()));
                Ok(())
            };
            let result = if threaded {
                run_threaded(&mut text.as_bytes(), &no_flows(), &mut Closed, &mut step)
            } else {
                run_in_turn(&mut text.as_bytes(), &no_flows(), &mut Closed, &mut step)
            };
            assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
            assert!(lines < 10_000, "the replay went on after the write failed ({lines} lines)");
        }
    }

    #[test]
    fn an_error_of_the_engine_stage_stops_the_replay() {
        let text = format!("{}\n", record("a")).repeat(10_000);
        for threaded in [false, true] {
            let mut calls = 0;
            let mut step = |_: Option<&mut Line<'_>>, _: &mut Vec<Output>| {
                calls += 1;
                if calls == 5 {
                    Err(std::io::Error::other("stderr closed"))
                } else {
                    Ok(())
                }
            };
            let mut sink = std::io::sink();
            let result = if threaded {
                run_threaded(&mut text.as_bytes(), &no_flows(), &mut sink, &mut step)
            } else {
                run_in_turn(&mut text.as_bytes(), &no_flows(), &mut sink, &mut step)
            };
            assert_eq!(result.unwrap_err().to_string(), "stderr closed");
            assert_eq!(calls, 5);
        }
    }
}
