//! A real HTTP receiver of the test's own: it records every request it
//! gets (path, headers, JSON body) and answers each with the next status
//! of its script (200 once the script is used up).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The body as text (lossy), for what is not JSON.
    pub text: String,
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Each answer's status, its `Location` header if any, and its body
    /// (`ok` when none).
    script: VecDeque<(u16, Option<String>, Option<String>)>,
    /// Answer nothing for this long (a receiver that hangs).
    delay: Option<Duration>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let receiver = Receiver {
            addr,
            shared: Arc::clone(&shared),
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The statuses of the next requests, in order.
    pub fn answer(&self, statuses: &[u16]) {
        self.shared
            .lock()
            .unwrap()
            .script
            .extend(statuses.iter().map(|s| (*s, None, None)));
    }

    /// The next answer: `status` with `body` (a service's own answer).
    pub fn answer_with(&self, status: u16, body: &str) {
        self.shared
            .lock()
            .unwrap()
            .script
            .push_back((status, None, Some(body.to_owned())));
    }

    /// The next answer: `status` with a `Location` header.
    pub fn redirect(&self, status: u16, location: &str) {
        self.shared
            .lock()
            .unwrap()
            .script
            .push_back((status, Some(location.to_owned()), None));
    }

    /// Holds every answer this long.
    pub fn delay(&self, delay: Duration) {
        self.shared.lock().unwrap().delay = Some(delay);
    }

    /// Everything received (also what was answered with an error).
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }
}

async fn serve(mut stream: tokio::net::TcpStream, shared: Arc<Mutex<Shared>>) {
    let mut buf = Vec::new();
    loop {
        // Headers.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.lines();
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_default()
            .to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let raw = &buf[head_end..head_end + length];
        let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
        let text = String::from_utf8_lossy(raw).into_owned();
        buf.drain(..head_end + length);
        let (status, delay) = {
            let mut s = shared.lock().unwrap();
            s.received.push(Received {
                path,
                headers,
                body,
                text,
            });
            (s.script.pop_front().unwrap_or((200, None, None)), s.delay)
        };
        let (status, location, answer) = status;
        let answer = answer.unwrap_or_else(|| "ok".to_owned());
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let location = location.map_or_else(String::new, |l| format!("Location: {l}\r\n"));
        let reply = format!(
            "HTTP/1.1 {status} X\r\n{location}Content-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
