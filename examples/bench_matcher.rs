//! How fast a body regex is matched as the body streams in, against the
//! regex crate on the whole body. Not a test.
//!
//! ```sh
//! cargo run --release --example bench_matcher -- [MIB [CHUNK_KIB]]
//! ```

use std::time::Instant;

use sitewatch::matcher::BodyRegex;

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(256, |a| a.parse().expect("MIB"));
    let chunk: usize = args.next().map_or(32, |a| a.parse().expect("CHUNK_KIB")) * 1024;
    let mut body = Vec::with_capacity(mib << 20);
    let line = b"<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.</p>\n";
    while body.len() < (mib << 20) - line.len() {
        body.extend_from_slice(line);
    }
    body.extend_from_slice(b"needle-at-the-end");
    println!("| pattern | streamed MB/s | whole-body regex MB/s |\n|---|---:|---:|");
    for pattern in [
        "needle-at-the-end",
        r"(?i)order\s+confirmed\s+#\d{6}",
        "needle|haystack",
    ] {
        let re = BodyRegex::new(pattern).unwrap();
        let start = Instant::now();
        let mut stream = re.stream().expect("streamable");
        for c in body.chunks(chunk) {
            stream.feed(c);
        }
        let matched = stream.finish();
        let streamed = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let whole = re.is_match(&body);
        let regex = start.elapsed().as_secs_f64();
        assert_eq!(matched, whole);
        let mb = body.len() as f64 / 1e6;
        println!("| `{pattern}` | {:.0} | {:.0} |", mb / streamed, mb / regex);
    }
}
