//! Benchmark target: one port on 127.0.0.1 whose every request gets a body
//! of BYTES streamed slowly (32 KiB every INTERVAL_MS), ending in
//! `needle-at-the-end`. Used by `bench/memory`; not a test.
//!
//! ```sh
//! cargo run --release --example bench_big_bodies -- [BYTES [INTERVAL_MS]]
//! ```
//!
//! Prints the port, then serves until killed.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CHUNK: usize = 32 * 1024;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let bytes: usize = args.next().map_or(2 << 20, |a| a.parse().expect("BYTES"));
    let interval: u64 = args.next().map_or(64, |a| a.parse().expect("INTERVAL_MS"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    let tail = b"needle-at-the-end";
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        bytes
    );
    let filler = vec![b'a'; CHUNK];
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let (head, filler) = (head.clone(), filler.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut sent = 0;
            while sent < bytes {
                let n = (bytes - sent).min(CHUNK);
                let chunk = if sent + n == bytes {
                    let mut last = filler[..n - tail.len().min(n)].to_vec();
                    last.extend_from_slice(&tail[tail.len() - tail.len().min(n)..]);
                    last
                } else {
                    filler[..n].to_vec()
                };
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += n;
                tokio::time::sleep(Duration::from_millis(interval)).await;
            }
        });
    }
}
