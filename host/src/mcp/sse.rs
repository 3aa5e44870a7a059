//! A minimal incremental reader of `text/event-stream`, for upstream streamable-HTTP responses.

/// Feeds bytes in, takes complete events' data out.
#[derive(Default)]
pub struct SseReader {
    buffer: Vec<u8>,
    data: Vec<String>,
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
                if !self.data.is_empty() {
                    events.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data.push(rest.strip_prefix(' ').unwrap_or(rest).to_owned());
            }
            // `event:`, `id:`, `retry:` and comments carry nothing the gateway needs.
        }
        if self.buffer.len() + self.data.iter().map(String::len).sum::<usize>() > MAX_EVENT_BYTES {
            return Err("event too large".into());
        }
        Ok(events)
    }
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
