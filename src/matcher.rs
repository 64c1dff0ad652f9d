//! A site's body regex, matched as the body streams in: no check holds its
//! body, so memory does not grow with body sizes or with how many sites
//! serve large ones.
//!
//! The regex compiles twice: as `regex::bytes::Regex` (what is shown and
//! published, and the fallback) and as a lazy DFA that is fed byte by byte
//! and keeps only its state. A pattern the lazy DFA cannot run exactly
//! (Unicode word boundaries such as `\b` on non-ASCII text) falls back to
//! buffering the body, within a budget shared by all checks.

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::util::prefilter::Prefilter;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind, Span, nfa::thompson, util::syntax};

/// Room for one check's lazy-DFA states: plenty for health-check patterns;
/// a pattern that needs more runs on, clearing the cache as it goes.
const CACHE_BYTES: usize = 256 * 1024;

/// A compiled body regex.
#[derive(Debug)]
pub struct BodyRegex {
    regex: regex::bytes::Regex,
    /// `None` when the pattern must see the whole body (see the module doc).
    dfa: Option<DFA>,
    /// The literals every match starts with, for a pattern without
    /// look-around: the stream jumps to them instead of feeding every byte
    /// to the DFA (docs/src/decisions.md, Checks).
    prefilter: Option<Prefilter>,
}

impl BodyRegex {
    /// Compiles `pattern` with the syntax of `regex::bytes::Regex`.
    pub fn new(pattern: &str) -> Result<BodyRegex, regex::Error> {
        let regex = regex::bytes::Regex::new(pattern)?;
        // As regex::bytes: Unicode classes, and may match any bytes.
        let syntax = syntax::Config::new().utf8(false);
        let dfa = DFA::builder()
            .configure(DFA::config().cache_capacity(CACHE_BYTES))
            .syntax(syntax)
            .thompson(thompson::Config::new().utf8(false))
            .build(pattern)
            .ok();
        // Skipping bytes is exact only when no state depends on the bytes
        // before (no ^, $, \b, \A, \z, ...).
        let prefilter = syntax::parse_with(pattern, &syntax)
            .ok()
            .filter(|hir| hir.properties().look_set().is_empty())
            .and_then(|hir| Prefilter::from_hir_prefix(MatchKind::LeftmostFirst, &hir))
            .filter(|p| p.is_fast() && p.max_needle_len() > 0);
        Ok(BodyRegex {
            regex,
            dfa,
            prefilter,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether the whole body must be buffered for this pattern.
    pub fn needs_body(&self) -> bool {
        self.dfa.is_none()
    }

    /// Matches a whole body (the fallback, and for tests).
    pub fn is_match(&self, body: &[u8]) -> bool {
        self.regex.is_match(body)
    }

    /// A matcher fed chunk by chunk, or `None` when [`needs_body`](Self::needs_body).
    pub fn stream(&self) -> Option<Stream<'_>> {
        let dfa = self.dfa.as_ref()?;
        let mut cache = dfa.create_cache();
        let state = dfa
            .start_state(&mut cache, &start::Config::new().anchored(Anchored::No))
            .ok()?;
        Some(Stream {
            dfa,
            prefilter: self.prefilter.as_ref(),
            start: state,
            cache,
            state,
            matched: false,
        })
    }
}

/// An unanchored search in progress: the DFA's state after the bytes fed.
pub struct Stream<'a> {
    dfa: &'a DFA,
    prefilter: Option<&'a Prefilter>,
    /// The unanchored start state: where no match is under way.
    start: LazyStateID,
    cache: Cache,
    state: LazyStateID,
    matched: bool,
}

impl Stream<'_> {
    /// Feeds the next bytes of the body. Once matched (or once no match is
    /// possible any more), the rest is not looked at.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.matched || self.state.is_dead() {
            return;
        }
        let mut state = self.state;
        let mut at = 0;
        while at < bytes.len() {
            if let Some(pre) = self.prefilter
                && state == self.start
            {
                // No match under way: no byte before the next literal can
                // start one, so the DFA skips them. A literal cut by the
                // chunk's end is fed byte by byte from its possible start.
                match pre.find(bytes, Span::from(at..bytes.len())) {
                    Some(found) => at = found.start,
                    None => {
                        at = at.max(bytes.len().saturating_sub(pre.max_needle_len() - 1));
                        if at == bytes.len() {
                            break;
                        }
                    }
                }
            }
            let byte = bytes[at];
            at += 1;
            // The common case is one table lookup; a tagged state (not yet
            // computed, a match, dead) takes the slow path.
            let mut next = if state.is_tagged() {
                match self.dfa.next_state(&mut self.cache, state, byte) {
                    Ok(next) => next,
                    // No quit bytes and no give-up are configured.
                    Err(_) => break,
                }
            } else {
                self.dfa.next_state_untagged(&self.cache, state, byte)
            };
            if next.is_unknown() {
                next = match self.dfa.next_state(&mut self.cache, state, byte) {
                    Ok(next) => next,
                    Err(_) => break,
                };
            }
            state = next;
            if state.is_tagged() {
                // A match state is entered one byte after the match ends.
                if state.is_match() {
                    self.matched = true;
                    break;
                }
                if state.is_dead() || state.is_quit() {
                    break;
                }
            }
        }
        self.state = state;
    }

    /// The verdict once the body ended.
    pub fn finish(mut self) -> bool {
        if self.matched {
            return true;
        }
        if self.state.is_dead() || self.state.is_quit() {
            return false;
        }
        self.dfa
            .next_eoi_state(&mut self.cache, self.state)
            .is_ok_and(|s| s.is_match())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in chunks of `size` and compares with a whole-body match.
    fn agrees(pattern: &str, body: &[u8]) {
        let re = BodyRegex::new(pattern).unwrap();
        let whole = re.is_match(body);
        for size in [1, 2, 3, 7, 64, body.len().max(1)] {
            let mut s = re.stream().expect("streamable");
            for chunk in body.chunks(size) {
                s.feed(chunk);
            }
            assert_eq!(
                s.finish(),
                whole,
                "{pattern:?} on {body:?} in chunks of {size}"
            );
        }
    }

    #[test]
    fn streaming_agrees_with_a_whole_body_match() {
        let bodies: [&[u8]; 6] = [
            b"",
            b"hello sitewatch",
            b"<html>\nOrder confirmed #123456\n</html>",
            b"no match here at all",
            b"\xff\xfe invalid utf-8 \xc3\x28 needle",
            b"line one\nline two end",
        ];
        for pattern in [
            "hello",
            "(?i)HELLO",
            r"order\s+confirmed\s+#\d{6}",
            "^line two",
            "(?m)^line two",
            "end$",
            r"\Aline",
            r"one\z",
            "needle",
            "",
            "a{3,}",
            r"(?-u:\xff)",
            "confirmed|sitewatch",
            "e two e",
            "(?i)NEEDLE",
            r"Order\s+\w+",
        ] {
            for body in bodies {
                agrees(pattern, body);
            }
        }
    }

    #[test]
    fn streaming_agrees_on_random_bodies_cut_anywhere() {
        // Bodies from pieces of the patterns, so near-misses and literals
        // cut by a chunk's end are common.
        let pieces: [&[u8]; 8] = [
            b"nee", b"dle", b"needle", b"x", b"\n", b"ord", b"er 12", b"3456",
        ];
        let patterns = [
            "needle",
            "needle|order",
            r"ord\w*\s\d+",
            "dle\nnee",
            "(?i)NEEDLE x",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..400 {
            let mut body = Vec::new();
            for _ in 0..(next() % 12) {
                body.extend_from_slice(pieces[(next() % 8) as usize]);
            }
            let pattern = patterns[(next() % 5) as usize];
            let re = BodyRegex::new(pattern).unwrap();
            let mut s = re.stream().unwrap();
            let mut rest = &body[..];
            while !rest.is_empty() {
                let n = 1 + (next() as usize % rest.len());
                s.feed(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(s.finish(), re.is_match(&body), "{pattern:?} on {body:?}");
        }
    }

    #[test]
    fn a_unicode_word_boundary_falls_back_to_the_whole_body() {
        let re = BodyRegex::new(r"\bword\b").unwrap();
        assert!(re.needs_body());
        assert!(re.stream().is_none());
        assert!(re.is_match(b"a word here"));
        let ascii = BodyRegex::new(r"(?-u:\b)word(?-u:\b)").unwrap();
        assert!(!ascii.needs_body());
    }
}
