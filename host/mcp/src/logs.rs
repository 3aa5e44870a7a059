//! Servers' logs: what each sandbox wrote on stderr, and the gateway's own lines about it (started, closed,
//! stopped), kept in memory so the API and the dashboard can show why a server misbehaves, and sent to
//! followers as they are written.
//!
//! Bounded: a ring of [`LINES_PER_SANDBOX`] lines per sandbox, each line cut at [`MAX_LINE_BYTES`]; of the
//! sandboxes that ended, the last [`ENDED_SANDBOXES_KEPT`] of each server are kept (the crash someone wants
//! to read about is usually the last one). Every line of a server gets the next number of that server's
//! sequence, so a follower that reconnects resumes after the last number it saw, missing nothing still kept
//! and seeing nothing twice.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::server::{LogLine, LogStream};
use gigmcp_types::sync::lock;

/// Lines kept per sandbox.
pub const LINES_PER_SANDBOX: usize = 500;
/// Ended sandboxes whose lines are kept, per server.
pub const ENDED_SANDBOXES_KEPT: usize = 4;
/// A longer line is cut here (at a character boundary) and ends with `…`.
pub const MAX_LINE_BYTES: usize = 2048;
/// Lines a follower may fall behind before it has to read them again from the rings.
const FOLLOW_BUFFER: usize = 1024;

/// Every server's log.
#[derive(Default)]
pub struct ServerLogs {
    servers: Mutex<HashMap<ServerName, Arc<ServerLog>>>,
}

struct ServerLog {
    state: Mutex<LogState>,
    /// Sent under the state lock, so followers get lines in sequence order.
    follow: broadcast::Sender<LogLine>,
}

#[derive(Default)]
struct LogState {
    next_seq: u64,
    /// By sandbox id, which grows with each start: the oldest first.
    sandboxes: BTreeMap<u64, SandboxLog>,
}

struct SandboxLog {
    profile: String,
    lines: VecDeque<LogLine>,
    ended: bool,
}

impl ServerLogs {
    fn log(&self, server: &ServerName) -> Arc<ServerLog> {
        lock(&self.servers)
            .entry(server.clone())
            .or_insert_with(|| {
                Arc::new(ServerLog {
                    state: Mutex::default(),
                    follow: broadcast::channel(FOLLOW_BUFFER).0,
                })
            })
            .clone()
    }

    /// Where sandbox `sandbox` of `server`, serving `profile` (`None`: a probe), writes its lines.
    pub fn sink(&self, server: &ServerName, profile: Option<&ProfileSlug>, sandbox: u64) -> LogSink {
        let log = self.log(server);
        lock(&log.state).sandboxes.insert(
            sandbox,
            SandboxLog {
                profile: profile.map(ToString::to_string).unwrap_or_default(),
                lines: VecDeque::new(),
                ended: false,
            },
        );
        LogSink { log, sandbox }
    }

    /// The lines kept of `server` numbered above `after` (all with `None`), oldest first.
    pub fn lines(&self, server: &ServerName, after: Option<u64>) -> Vec<LogLine> {
        match lock(&self.servers).get(server) {
            Some(log) => collect(&lock(&log.state), after),
            None => Vec::new(),
        }
    }

    /// The lines kept numbered above `after`, and a receiver of every line written from now on: nothing
    /// written in between is missed or given twice.
    pub fn follow(&self, server: &ServerName, after: Option<u64>) -> (Vec<LogLine>, broadcast::Receiver<LogLine>) {
        let log = self.log(server);
        let state = lock(&log.state);
        let receiver = log.follow.subscribe();
        (collect(&state, after), receiver)
    }

    /// Forgets a removed server's lines (a server defined again under its name starts with an empty log).
    pub fn forget(&self, server: &ServerName) {
        lock(&self.servers).remove(server);
    }
}

fn collect(state: &LogState, after: Option<u64>) -> Vec<LogLine> {
    let mut lines: Vec<LogLine> = state
        .sandboxes
        .values()
        .flat_map(|s| s.lines.iter())
        .filter(|l| after.is_none_or(|after| l.seq > after))
        .cloned()
        .collect();
    lines.sort_unstable_by_key(|l| l.seq);
    lines
}

/// One sandbox's end of its server's log.
pub struct LogSink {
    log: Arc<ServerLog>,
    sandbox: u64,
}

impl LogSink {
    /// A line the server wrote on stderr.
    pub fn stderr(&self, text: &str) {
        self.write(LogStream::Stderr, text);
    }

    /// A line of the gateway's about the sandbox.
    pub fn gateway(&self, text: &str) {
        self.write(LogStream::Gateway, text);
    }

    /// The last `n` lines the sandbox wrote on stderr, oldest first.
    pub fn last_stderr(&self, n: usize) -> Vec<String> {
        let state = lock(&self.log.state);
        let Some(sandbox) = state.sandboxes.get(&self.sandbox) else {
            return Vec::new();
        };
        let mut tail: Vec<String> = sandbox
            .lines
            .iter()
            .rev()
            .filter(|l| l.stream == LogStream::Stderr)
            .take(n)
            .map(|l| l.text.clone())
            .collect();
        tail.reverse();
        tail
    }

    /// The sandbox has ended: its lines are kept until [`ENDED_SANDBOXES_KEPT`] newer ones have ended too.
    pub fn end(&self) {
        let mut state = lock(&self.log.state);
        if let Some(sandbox) = state.sandboxes.get_mut(&self.sandbox) {
            sandbox.ended = true;
        }
        let ended: Vec<u64> = state
            .sandboxes
            .iter()
            .filter(|(_, s)| s.ended)
            .map(|(id, _)| *id)
            .collect();
        for id in ended.iter().take(ended.len().saturating_sub(ENDED_SANDBOXES_KEPT)) {
            state.sandboxes.remove(id);
        }
    }

    fn write(&self, stream: LogStream, text: &str) {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut state = lock(&self.log.state);
        let seq = state.next_seq + 1;
        let Some(sandbox) = state.sandboxes.get_mut(&self.sandbox) else {
            return; // its server was removed, or it ended long ago
        };
        let line = LogLine {
            seq,
            at_ms,
            profile: sandbox.profile.clone(),
            sandbox: self.sandbox,
            stream,
            text: cut(text),
        };
        if sandbox.lines.len() == LINES_PER_SANDBOX {
            sandbox.lines.pop_front();
        }
        sandbox.lines.push_back(line.clone());
        state.next_seq = seq;
        // No follower is not an error.
        let _ = self.log.follow.send(line);
    }
}

/// `text` without control characters but tabs (a server's escape sequences stay out of terminals and
/// pages), cut at [`MAX_LINE_BYTES`].
fn cut(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LINE_BYTES + 3));
    for c in text.chars() {
        if out.len() + c.len_utf8() > MAX_LINE_BYTES {
            out.push('…');
            break;
        }
        if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str) -> ServerName {
        ServerName::parse(name).unwrap()
    }

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn a_sandbox_keeps_its_last_lines_numbered_in_order() {
        let logs = ServerLogs::default();
        let profile = ProfileSlug::parse("team").unwrap();
        let sink = logs.sink(&server("s"), Some(&profile), 7);
        for i in 0..LINES_PER_SANDBOX + 3 {
            sink.stderr(&format!("line {i}"));
        }
        let lines = logs.lines(&server("s"), None);
        assert_eq!(lines.len(), LINES_PER_SANDBOX);
        assert_eq!(lines[0].text, "line 3");
        assert_eq!(lines[0].seq, 4);
        assert!(lines.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert!(
            lines
                .iter()
                .all(|l| l.profile == "team" && l.sandbox == 7 && l.stream == LogStream::Stderr)
        );
        assert_eq!(
            texts(&logs.lines(&server("s"), Some(lines[LINES_PER_SANDBOX - 2].seq))),
            ["line 502"]
        );
        assert!(logs.lines(&server("other"), None).is_empty());
    }

    #[test]
    fn only_the_last_ended_sandboxes_are_kept() {
        let logs = ServerLogs::default();
        let running = logs.sink(&server("s"), None, 1);
        running.gateway("started");
        for id in 2..2 + ENDED_SANDBOXES_KEPT as u64 + 2 {
            let sink = logs.sink(&server("s"), None, id);
            sink.stderr(&format!("sandbox {id}"));
            sink.end();
        }
        let lines = logs.lines(&server("s"), None);
        let sandboxes: Vec<u64> = lines.iter().map(|l| l.sandbox).collect();
        assert_eq!(
            sandboxes,
            [1, 4, 5, 6, 7],
            "the running one and the last four that ended"
        );
        logs.forget(&server("s"));
        assert!(logs.lines(&server("s"), None).is_empty());
        // The sink of a server since removed writes nowhere.
        running.gateway("after the removal");
        assert!(logs.lines(&server("s"), None).is_empty());
    }

    #[test]
    fn an_error_report_quotes_the_sandboxs_last_stderr_lines() {
        let logs = ServerLogs::default();
        let sink = logs.sink(&server("s"), None, 1);
        sink.gateway("started");
        for i in 0..5 {
            sink.stderr(&format!("line {i}"));
        }
        sink.gateway("closed");
        assert_eq!(sink.last_stderr(2), ["line 3", "line 4"]);
        assert_eq!(logs.sink(&server("s"), None, 2).last_stderr(2), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_follower_gets_what_is_kept_then_every_new_line_once() {
        let logs = ServerLogs::default();
        let sink = logs.sink(&server("s"), None, 1);
        sink.stderr("one");
        sink.stderr("two");
        let (kept, mut follow) = logs.follow(&server("s"), Some(1));
        assert_eq!(texts(&kept), ["two"]);
        sink.stderr("three");
        let next = follow.recv().await.unwrap();
        assert_eq!((next.seq, next.text.as_str()), (3, "three"));
    }

    #[test]
    fn long_lines_are_cut_and_control_characters_dropped() {
        assert_eq!(cut("a\u{1b}[31mred\u{7}\tx"), "a[31mred\tx");
        let long = "é".repeat(MAX_LINE_BYTES);
        let cut_long = cut(&long);
        assert!(cut_long.ends_with('…'));
        assert!(cut_long.len() <= MAX_LINE_BYTES + '…'.len_utf8());
    }
}
