//! Reflected secrets: a response is scanned for every secret injected into its request, and each
//! occurrence is replaced by the credential's placeholder before the response reaches the sandbox
//! (invariant 1: an upstream that echoes the header it received — an error page, a "whoami" endpoint —
//! must not hand the secret to the server). Bodies are scanned as they stream, across chunk boundaries.

use bytes::{Bytes, BytesMut};
use zeroize::Zeroizing;

/// Replaces secrets by placeholders in a stream of chunks. Holds back at most the longest secret's length
/// minus one byte between chunks, so a secret split across two chunks is still found.
pub struct Scrubber {
    /// (secret, placeholder), the secret zeroized when the scrubber goes.
    needles: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>,
    carry: Zeroizing<Vec<u8>>,
    hold: usize,
}

impl Scrubber {
    pub fn new(needles: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>) -> Self {
        let mut needles: Vec<_> = needles.into_iter().filter(|(s, _)| !s.is_empty()).collect();
        // Longest first, so a secret that contains another is replaced whole.
        needles.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        let hold = needles.iter().map(|(s, _)| s.len()).max().unwrap_or(1) - 1;
        Self {
            needles,
            carry: Zeroizing::new(Vec::new()),
            hold,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Scrubs a whole value (a header) at once.
    pub fn scrub_all(&self, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(value.len());
        let consumed = self.scan(value, value.len(), &mut out);
        debug_assert_eq!(consumed, value.len());
        out
    }

    /// The next chunk of the stream, scrubbed; some bytes may be held back until the next call.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        if self.needles.is_empty() {
            return Bytes::copy_from_slice(chunk);
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        // Bytes from `safe` on could start a secret that the next chunk completes.
        let safe = buf.len().saturating_sub(self.hold);
        let mut out = Vec::with_capacity(buf.len());
        let consumed = self.scan(&buf, safe, &mut out);
        self.carry = Zeroizing::new(buf[consumed..].to_vec());
        Bytes::from(out)
    }

    /// The bytes held back, scrubbed: the end of the stream.
    pub fn finish(&mut self) -> Bytes {
        let buf = std::mem::take(&mut self.carry);
        let mut out = BytesMut::with_capacity(buf.len());
        let mut scrubbed = Vec::new();
        self.scan(&buf, buf.len(), &mut scrubbed);
        out.extend_from_slice(&scrubbed);
        out.freeze()
    }

    /// Copies `buf` to `out` with every secret starting before `until` replaced; returns how far it got
    /// (at least `until`, more when a secret starting before `until` ends after it).
    fn scan(&self, buf: &[u8], until: usize, out: &mut Vec<u8>) -> usize {
        let mut i = 0;
        let mut copied = 0;
        while i < until {
            let byte = buf[i];
            let found = self
                .needles
                .iter()
                .find(|(secret, _)| secret[0] == byte && buf[i..].starts_with(secret));
            match found {
                Some((secret, placeholder)) => {
                    out.extend_from_slice(&buf[copied..i]);
                    out.extend_from_slice(placeholder);
                    i += secret.len();
                    copied = i;
                }
                None => i += 1,
            }
        }
        let end = i.max(copied);
        out.extend_from_slice(&buf[copied..end]);
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber() -> Scrubber {
        Scrubber::new(vec![
            (Zeroizing::new(b"s3cr3t-value".to_vec()), b"gigph_A".to_vec()),
            (Zeroizing::new(b"other".to_vec()), b"gigph_B".to_vec()),
        ])
    }

    fn stream(chunks: &[&[u8]]) -> Vec<u8> {
        let mut s = scrubber();
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&s.push(c));
        }
        out.extend_from_slice(&s.finish());
        out
    }

    #[test]
    fn a_secret_split_across_chunks_is_replaced() {
        let text = b"{\"auth\":\"Bearer s3cr3t-value\",\"x\":\"other\"}";
        let expected = b"{\"auth\":\"Bearer gigph_A\",\"x\":\"gigph_B\"}".to_vec();
        // Every split point, and every chunk size from 1 byte up.
        for cut in 0..=text.len() {
            assert_eq!(stream(&[&text[..cut], &text[cut..]]), expected, "cut at {cut}");
        }
        for size in 1..text.len() {
            let chunks: Vec<&[u8]> = text.chunks(size).collect();
            assert_eq!(stream(&chunks), expected, "chunks of {size}");
        }
    }

    #[test]
    fn text_without_secrets_passes_unchanged_and_nothing_is_lost() {
        let text: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<&[u8]> = text.chunks(333).collect();
        assert_eq!(stream(&chunks), text);
        assert_eq!(stream(&[b"s3cr3t-valu", b"E"]), b"s3cr3t-valuE");
        assert_eq!(stream(&[b"s3cr3t-value"]), b"gigph_A");
        assert_eq!(stream(&[b"s3cr3t-values3cr3t-value"]), b"gigph_Agigph_A");
    }

    #[test]
    fn header_values_are_scrubbed_whole() {
        assert_eq!(scrubber().scrub_all(b"x s3cr3t-value y other"), b"x gigph_A y gigph_B");
        assert_eq!(scrubber().scrub_all(b""), b"");
    }
}
