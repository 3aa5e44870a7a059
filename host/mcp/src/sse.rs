//! A minimal incremental reader of `text/event-stream`, for upstream streamable-HTTP responses.

/// Feeds bytes in, takes complete events' data out.
#[derive(Default)]
pub struct SseReader {
    buffer: Vec<u8>,
    data: Vec<String>,
    last_event_id: Option<String>,
    retry: Option<std::time::Duration>,
}

/// The most an event may hold before the stream is treated as broken.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

impl SseReader {
    /// Appends `chunk` and returns the data of every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<String>, String> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line).map_err(|_| "event stream is not UTF-8".to_string())?;
            if line.is_empty() {
                let data = self.data.join("\n");
                self.data.clear();
                // An event with no data (a priming event that only carries an id) delivers nothing.
                if !data.trim().is_empty() {
                    events.push(data);
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data.push(strip_space(rest).to_owned());
            } else if let Some(rest) = line.strip_prefix("id:") {
                self.last_event_id = Some(strip_space(rest).to_owned()).filter(|id| !id.is_empty());
            } else if let Some(rest) = line.strip_prefix("retry:")
                && let Ok(ms) = strip_space(rest).parse::<u64>()
            {
                self.retry = Some(std::time::Duration::from_millis(ms));
            }
            // `event:` and comments carry nothing the gateway needs.
        }
        if self.buffer.len() + self.data.iter().map(String::len).sum::<usize>() > MAX_EVENT_BYTES {
            return Err("event too large".into());
        }
        Ok(events)
    }
}

impl SseReader {
    /// The id of the last event seen, for resuming with `Last-Event-ID`.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// How long the server asked clients to wait before reconnecting.
    pub fn retry(&self) -> Option<std::time::Duration> {
        self.retry
    }
}

fn strip_space(value: &str) -> &str {
    value.strip_prefix(' ').unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_joined() {
        let mut r = SseReader::default();
        assert!(r.feed(b"event: message\nda").unwrap().is_empty());
        assert!(r.feed(b"ta: {\"a\":\r\n").unwrap().is_empty());
        assert_eq!(
            r.feed(b"data: 1}\n\n: comment\n\ndata:x\n\n").unwrap(),
            vec!["{\"a\":\n1}", "x"]
        );
    }
}
