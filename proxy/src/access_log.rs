//! The access log: one line per request, formatted by hand into a per-thread buffer and
//! written in batches, the way nginx's `access_log ... buffer=` works.
//!
//! Going through `tracing`'s formatter cost ~40% of the proxy's CPU per request in the
//! benchmark (docs/benchmarks.md); this writer costs a few percent. Lines keep the shape
//! of the other log lines (`--log-format json|text`, target `ficus::access`). A buffer is
//! handed over when it passes 32 KiB, every 200 ms by the worker's flush task, and when the
//! worker stops, so at most 200 ms of lines are lost if the process is killed.
//!
//! Full buffers go to one writer thread (`ficus-access-log`) that writes them to stdout, so
//! a worker does not stop serving while `write` blocks (a 32 KiB write to a file took
//! ~80 µs in the benchmark). The channel holds [`QUEUED`] buffers; when the writer falls
//! that far behind, workers wait for it rather than drop lines. A worker's lines stay in
//! order, and a worker that stops waits until its last lines are written.

use std::cell::RefCell;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const FLUSH_AT: usize = 32 * 1024;
/// Full buffers the writer thread may have queued before workers wait for it.
const QUEUED: usize = 8;
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// One request, as logged.
pub struct Entry<'a> {
    pub route: &'a str,
    pub mode: &'a str,
    pub upstream: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration: Duration,
    /// When the request finished (the wall clock is derived from it, see [`Buffer`]).
    pub at: Instant,
    pub request_id: &'a [u8],
}

struct Buffer {
    bytes: Vec<u8>,
    /// Cached "YYYY-MM-DDTHH:MM:SS" of `second`.
    second: u64,
    stamp: [u8; 19],
    /// A wall-clock reading and the monotonic instant it was taken at, renewed every
    /// second, so a line costs no extra clock read.
    anchor: Option<(Instant, Duration)>,
}

thread_local! {
    static BUF: RefCell<Buffer> = RefCell::new(Buffer {
        bytes: Vec::with_capacity(FLUSH_AT + 1024),
        second: u64::MAX,
        stamp: [b'0'; 19],
        anchor: None,
    });
}

pub fn log(format: Format, e: &Entry<'_>) {
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        let now = match b.anchor {
            Some((at, wall)) if e.at >= at && e.at - at < Duration::from_secs(1) => {
                wall + (e.at - at)
            }
            _ => {
                let wall = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                b.anchor = Some((e.at, wall));
                wall
            }
        };
        if now.as_secs() != b.second {
            b.second = now.as_secs();
            b.stamp = civil(now.as_secs());
        }
        let Buffer {
            bytes: out, stamp, ..
        } = &mut *b;
        let millis = now.subsec_millis();
        // Integer formatting: float formatting showed up in profiles.
        let us = e.duration.as_micros();
        let (ms, frac) = (us / 1000, us % 1000);
        let _ = match format {
            Format::Json => {
                out.extend_from_slice(b"{\"timestamp\":\"");
                out.extend_from_slice(stamp);
                out.push(b'.');
                push_padded(out, millis.into(), 3);
                out.extend_from_slice(
                    b"Z\",\"level\":\"INFO\",\"target\":\"ficus::access\",\"route\":",
                );
                json_str(out, e.route.as_bytes());
                out.extend_from_slice(b",\"mode\":\"");
                out.extend_from_slice(e.mode.as_bytes());
                out.extend_from_slice(b"\",\"upstream\":");
                json_str(out, e.upstream.as_bytes());
                out.extend_from_slice(b",\"method\":");
                json_str(out, e.method.as_bytes());
                out.extend_from_slice(b",\"path\":");
                json_str(out, e.path.as_bytes());
                out.extend_from_slice(b",\"status\":");
                push_padded(out, e.status.into(), 1);
                out.extend_from_slice(b",\"duration_ms\":");
                push_millis(out, ms, frac);
                out.extend_from_slice(b",\"request_id\":");
                json_str(out, e.request_id);
                out.extend_from_slice(b"}\n");
                Ok(())
            }
            Format::Text => {
                out.extend_from_slice(stamp);
                out.push(b'.');
                push_padded(out, millis.into(), 3);
                out.extend_from_slice(b"Z  INFO ficus::access: route=");
                out.extend_from_slice(e.route.as_bytes());
                out.extend_from_slice(b" mode=");
                out.extend_from_slice(e.mode.as_bytes());
                out.extend_from_slice(b" upstream=");
                out.extend_from_slice(e.upstream.as_bytes());
                out.extend_from_slice(b" method=");
                out.extend_from_slice(e.method.as_bytes());
                out.extend_from_slice(b" path=");
                text_value(out, e.path.as_bytes());
                out.extend_from_slice(b" status=");
                push_padded(out, e.status.into(), 1);
                out.extend_from_slice(b" duration_ms=");
                push_millis(out, ms, frac);
                out.extend_from_slice(b" request_id=");
                text_value(out, e.request_id);
                out.push(b'\n');
                Ok::<(), ()>(())
            }
        };
        if out.len() >= FLUSH_AT {
            write_out(out);
        }
    });
}

/// Hands this thread's buffered lines to the writer thread now.
pub fn flush() {
    BUF.with(|b| write_out(&mut b.borrow_mut().bytes));
}

/// Hands this thread's buffered lines to the writer thread and returns once they and every
/// buffer queued before them are written: for a worker that stops.
pub fn flush_and_wait() {
    flush();
    if let Some(writer) = writer() {
        let (done, written) = mpsc::sync_channel(1);
        if writer.send(Batch::Sync(done)).is_ok() {
            let _ = written.recv();
        }
    }
}

fn write_out(bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    // A few lines (the periodic flush of a quiet worker) go as a copy of their size and
    // the buffer is kept; a full buffer is handed over whole and replaced.
    let full = if bytes.len() < FLUSH_AT / 8 {
        let lines = bytes.clone();
        bytes.clear();
        lines
    } else {
        std::mem::replace(bytes, Vec::with_capacity(FLUSH_AT + 1024))
    };
    match writer() {
        Some(writer) => {
            if let Err(mpsc::SendError(Batch::Lines(full))) = writer.send(Batch::Lines(full)) {
                to_stdout(&full);
            }
        }
        None => to_stdout(&full),
    }
}

/// What a worker sends the writer thread.
enum Batch {
    Lines(Vec<u8>),
    /// Answered once everything sent before it is written.
    Sync(SyncSender<()>),
}

/// The process's writer thread, started on first use; `None` if it could not be started
/// (workers then write themselves).
fn writer() -> Option<&'static SyncSender<Batch>> {
    static WRITER: OnceLock<Option<SyncSender<Batch>>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(QUEUED);
            std::thread::Builder::new()
                .name("ficus-access-log".into())
                .spawn(move || write_batches(&rx, to_stdout))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// The writer thread's loop, until every sender is gone.
fn write_batches(batches: &Receiver<Batch>, mut write: impl FnMut(&[u8])) {
    for batch in batches {
        match batch {
            Batch::Lines(lines) => write(&lines),
            Batch::Sync(done) => {
                let _ = done.send(());
            }
        }
    }
}

fn to_stdout(lines: &[u8]) {
    // The stdout lock keeps a batch of lines from interleaving with other log lines.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(lines);
    let _ = out.flush();
}

/// `n` in decimal, zero-padded to at least `width` digits (`fmt` costs ~1k instructions a
/// line, which showed up in profiles).
fn push_padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 || digits.len() - i < width {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[i..]);
}

/// A duration in milliseconds with three decimals: `ms.frac`.
fn push_millis(out: &mut Vec<u8>, ms: u128, frac: u128) {
    push_padded(out, u64::try_from(ms).unwrap_or(u64::MAX), 1);
    out.push(b'.');
    push_padded(out, frac as u64, 3);
}

fn json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    if !s
        .iter()
        .any(|&c| c == b'"' || c == b'\\' || c < 0x20 || c == 0x7f)
    {
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f | 0x7f => {
                let _ = write!(out, "\\u{c:04x}");
            }
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

/// Text values are written as-is unless they contain spaces, quotes or control bytes.
fn text_value(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter().all(|&c| c > b' ' && c != b'"' && c != 0x7f) {
        out.extend_from_slice(s);
    } else {
        json_str(out, s);
    }
}

/// "YYYY-MM-DDTHH:MM:SS" (UTC) of a Unix time (Howard Hinnant's civil-from-days).
fn civil(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut out = [0u8; 19];
    let s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    out.copy_from_slice(&s.as_bytes()[..19]);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn civil_time() {
        assert_eq!(&civil(0), b"1970-01-01T00:00:00");
        assert_eq!(&civil(951_782_400), b"2000-02-29T00:00:00");
        assert_eq!(&civil(1_795_869_296), b"2026-11-28T12:34:56");
    }

    #[test]
    fn numbers_are_formatted_like_fmt() {
        for (n, width) in [
            (0, 1),
            (0, 3),
            (7, 3),
            (42, 3),
            (999, 3),
            (1234, 3),
            (200, 1),
        ] {
            let mut out = Vec::new();
            push_padded(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$}").into_bytes());
        }
        let mut out = Vec::new();
        push_padded(&mut out, u64::MAX, 1);
        assert_eq!(out, u64::MAX.to_string().into_bytes());
        let mut out = Vec::new();
        push_millis(&mut out, 12, 5);
        assert_eq!(out, b"12.005");
    }

    #[test]
    fn the_writer_keeps_each_workers_order_and_answers_sync_after_earlier_lines() {
        let (tx, rx) = mpsc::sync_channel(QUEUED);
        let sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let writer = {
            let sink = sink.clone();
            std::thread::spawn(move || {
                write_batches(&rx, |lines| sink.lock().unwrap().extend_from_slice(lines));
            })
        };
        // More batches than the channel holds, from three threads at once.
        let producers: Vec<_> = (0..3)
            .map(|t| {
                let tx = tx.clone();
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        tx.send(Batch::Lines(format!("{t} {i}\n").into_bytes()))
                            .unwrap();
                    }
                    let (done, written) = mpsc::sync_channel(1);
                    tx.send(Batch::Sync(done)).unwrap();
                    written.recv().unwrap();
                    let text = String::from_utf8(sink.lock().unwrap().clone()).unwrap();
                    assert!(text.contains(&format!("{t} 49\n")), "sync answered early");
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        drop(tx);
        writer.join().unwrap();
        let text = String::from_utf8(sink.lock().unwrap().clone()).unwrap();
        for t in 0..3 {
            let seen: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t} ")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert_eq!(seen, (0..50).collect::<Vec<_>>(), "worker {t}'s lines");
        }
    }

    #[test]
    fn json_lines_are_valid_json_even_with_odd_paths() {
        let mut out = Vec::new();
        json_str(&mut out, b"/a\"b\\c\x01");
        let v: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, "/a\"b\\c\x01");
    }
}
