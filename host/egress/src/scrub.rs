//! Reflected secrets: a response is scanned for every secret injected into its request, and each
//! occurrence is replaced by the credential's placeholder before the response reaches the sandbox
//! (invariant 1: an upstream that echoes the header it received — an error page, a "whoami" endpoint —
//! must not hand the secret to the server). Bodies are scanned as they stream, across chunk boundaries.

use bytes::Bytes;
use zeroize::Zeroizing;

/// Replaces secrets by placeholders in a stream of chunks. Holds back between chunks only a chunk's end
/// that begins a secret (at most the longest secret's length minus one byte), so a secret split across two
/// chunks is still found. A chunk without a
/// secret passes without being copied; candidates are found with `memchr` on the secrets' first bytes.
pub struct Scrubber {
    /// (secret, placeholder), the secret zeroized when the scrubber goes.
    needles: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>,
    /// The distinct first bytes of the secrets.
    firsts: Vec<u8>,
    carry: Zeroizing<Vec<u8>>,
    hold: usize,
}

impl Scrubber {
    pub fn new(needles: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>) -> Self {
        let mut needles: Vec<_> = needles.into_iter().filter(|(s, _)| !s.is_empty()).collect();
        // Longest first, so a secret that contains another is replaced whole.
        needles.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        let hold = needles.iter().map(|(s, _)| s.len()).max().unwrap_or(1) - 1;
        let mut firsts: Vec<u8> = needles.iter().map(|(s, _)| s[0]).collect();
        firsts.sort_unstable();
        firsts.dedup();
        Self {
            needles,
            firsts,
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
        out.extend_from_slice(&value[consumed..]);
        out
    }

    /// The next chunk of the stream, scrubbed, in two pieces to send in order (either may be empty): the
    /// bytes held back from the previous chunk, then this chunk's. Some bytes may be held back in turn.
    /// In the common case (no byte that could start a secret) nothing is copied but the held-back tail.
    pub fn push(&mut self, chunk: Bytes) -> (Bytes, Bytes) {
        if self.needles.is_empty() {
            return (Bytes::new(), chunk);
        }
        let mut held = Bytes::new();
        if !self.carry.is_empty() {
            if self.candidate(&self.carry).is_some() {
                // A secret may start in the held-back bytes: scan them with this chunk.
                return (self.scan_joined(&chunk), Bytes::new());
            }
            // No secret can start there: they go out as they are.
            held = Bytes::from(std::mem::take(&mut *self.carry));
        }
        let safe = self.keep_from(&chunk);
        if self.candidate(&chunk[..safe]).is_none() {
            self.carry.extend_from_slice(&chunk[safe..]);
            return (held, chunk.slice(..safe));
        }
        let mut out = Vec::with_capacity(chunk.len());
        let consumed = self.scan(&chunk, safe, &mut out);
        self.carry.extend_from_slice(&chunk[consumed..]);
        (held, Bytes::from(out))
    }

    /// The held-back bytes and `chunk` scanned as one.
    fn scan_joined(&mut self, chunk: &[u8]) -> Bytes {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        // Bytes from `safe` on could start a secret that the next chunk completes.
        let safe = self.keep_from(&buf);
        let mut out = Vec::with_capacity(buf.len());
        let consumed = self.scan(&buf, safe, &mut out);
        self.carry = Zeroizing::new(buf[consumed..].to_vec());
        Bytes::from(out)
    }

    /// The bytes held back, scrubbed: the end of the stream.
    pub fn finish(&mut self) -> Bytes {
        let buf = std::mem::take(&mut self.carry);
        Bytes::from(self.scrub_all(&buf))
    }

    /// Where the bytes start that a later chunk could complete into a secret: the first of the last `hold`
    /// positions from which the rest of `buf` is a proper prefix of a secret, or `buf.len()`. Only those
    /// are held back: a chunk that does not end inside a possible secret goes out whole, in one piece.
    fn keep_from(&self, buf: &[u8]) -> usize {
        let mut i = buf.len().saturating_sub(self.hold);
        while let Some(offset) = self.candidate(&buf[i..]) {
            let at = i + offset;
            let rest = &buf[at..];
            if self
                .needles
                .iter()
                .any(|(secret, _)| rest.len() < secret.len() && secret.starts_with(rest))
            {
                return at;
            }
            i = at + 1;
        }
        buf.len()
    }

    /// Where the next byte that could start a secret is.
    fn candidate(&self, hay: &[u8]) -> Option<usize> {
        match self.firsts.as_slice() {
            [] => None,
            [a] => memchr::memchr(*a, hay),
            [a, b] => memchr::memchr2(*a, *b, hay),
            [a, b, c] => memchr::memchr3(*a, *b, *c, hay),
            firsts => hay.iter().position(|b| firsts.contains(b)),
        }
    }

    /// Copies `buf` to `out` with every secret starting before `until` replaced; returns how far it got
    /// (at least `until`, more when a secret starting before `until` ends after it). Bytes from there on
    /// are the caller's.
    fn scan(&self, buf: &[u8], until: usize, out: &mut Vec<u8>) -> usize {
        let mut i = 0;
        let mut copied = 0;
        while i < until {
            let Some(offset) = self.candidate(&buf[i..until]) else {
                break;
            };
            let at = i + offset;
            match self.needles.iter().find(|(secret, _)| buf[at..].starts_with(secret)) {
                Some((secret, placeholder)) => {
                    out.extend_from_slice(&buf[copied..at]);
                    out.extend_from_slice(placeholder);
                    i = at + secret.len();
                    copied = i;
                }
                None => i = at + 1,
            }
        }
        let end = until.max(copied);
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
            let (held, rest) = s.push(Bytes::copy_from_slice(c));
            out.extend_from_slice(&held);
            out.extend_from_slice(&rest);
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
    fn many_secrets_with_distinct_first_bytes_are_all_replaced() {
        let mut s = Scrubber::new(
            ["alpha1", "bravo22", "charlie333", "delta4444"]
                .iter()
                .enumerate()
                .map(|(i, n)| (Zeroizing::new(n.as_bytes().to_vec()), format!("P{i}").into_bytes()))
                .collect(),
        );
        let text = b"x alpha1 bravo22 charlie333 delta4444 alphabet";
        let mut out = Vec::new();
        for c in text.chunks(5) {
            let (held, rest) = s.push(Bytes::copy_from_slice(c));
            out.extend_from_slice(&held);
            out.extend_from_slice(&rest);
        }
        out.extend_from_slice(&s.finish());
        assert_eq!(out, b"x P0 P1 P2 P3 alphabet");
    }

    #[test]
    fn only_a_possible_start_of_a_secret_is_held_back() {
        let mut s = scrubber();
        // Nothing at the end could begin a secret: the chunk goes out whole, nothing is held.
        let (held, rest) = s.push(Bytes::from_static(b"plain text, no secret here"));
        assert!(held.is_empty());
        assert_eq!(&rest[..], b"plain text, no secret here");
        assert_eq!(&s.finish()[..], b"");
        // A chunk ending with the start of a secret keeps exactly that start.
        let mut s = scrubber();
        let (held, rest) = s.push(Bytes::from_static(b"token: s3cr"));
        assert_eq!((&held[..], &rest[..]), (&b""[..], &b"token: "[..]));
        let (held, rest) = s.push(Bytes::from_static(b"3t-value."));
        assert_eq!([&held[..], &rest[..]].concat(), b"gigph_A.");
    }

    #[test]
    fn overlapping_secrets_stream_as_they_scrub_whole() {
        let secrets = ["abab", "aba", "ba", "bb"];
        let make = || {
            Scrubber::new(
                secrets
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (Zeroizing::new(n.as_bytes().to_vec()), format!("<{i}>").into_bytes()))
                    .collect(),
            )
        };
        for text in [&b"abababbaab"[..], b"aababab", b"bbabababa", b"xabx", b"ab", b"babb"] {
            let whole = make().scrub_all(text);
            for size in 1..=text.len() {
                let mut s = make();
                let mut out = Vec::new();
                for c in text.chunks(size) {
                    let (held, rest) = s.push(Bytes::copy_from_slice(c));
                    out.extend_from_slice(&held);
                    out.extend_from_slice(&rest);
                }
                out.extend_from_slice(&s.finish());
                assert_eq!(out, whole, "{} in chunks of {size}", String::from_utf8_lossy(text));
            }
        }
    }

    #[test]
    fn header_values_are_scrubbed_whole() {
        assert_eq!(scrubber().scrub_all(b"x s3cr3t-value y other"), b"x gigph_A y gigph_B");
        assert_eq!(scrubber().scrub_all(b""), b"");
    }
}
