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
use regex_automata::util::start;
use regex_automata::{Anchored, nfa::thompson, util::syntax};

/// Room for one check's lazy-DFA states: plenty for health-check patterns;
/// a pattern that needs more runs on, clearing the cache as it goes.
const CACHE_BYTES: usize = 256 * 1024;

/// A compiled body regex.
#[derive(Debug)]
pub struct BodyRegex {
    regex: regex::bytes::Regex,
    /// `None` when the pattern must see the whole body (see the module doc).
    dfa: Option<DFA>,
}

impl BodyRegex {
    /// Compiles `pattern` with the syntax of `regex::bytes::Regex`.
    pub fn new(pattern: &str) -> Result<BodyRegex, regex::Error> {
        let regex = regex::bytes::Regex::new(pattern)?;
        let dfa = DFA::builder()
            .configure(DFA::config().cache_capacity(CACHE_BYTES))
            // As regex::bytes: Unicode classes, and may match any bytes.
            .syntax(syntax::Config::new().utf8(false))
            .thompson(thompson::Config::new().utf8(false))
            .build(pattern)
            .ok();
        Ok(BodyRegex { regex, dfa })
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
            cache,
            state,
            matched: false,
        })
    }
}

/// An unanchored search in progress: the DFA's state after the bytes fed.
pub struct Stream<'a> {
    dfa: &'a DFA,
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
        for &byte in bytes {
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
        ] {
            for body in bodies {
                agrees(pattern, body);
            }
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
