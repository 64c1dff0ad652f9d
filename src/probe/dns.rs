//! `dns://name?type=A&server=host:port`: one query over UDP (again over
//! TCP when the answer is truncated) to the site's server, or to the first
//! `nameserver` of `/etc/resolv.conf`. The check is up when the server
//! answers `NOERROR` with at least one record of the type asked (and the
//! site's `regex`, if any, matches one of them); `dns_rcode`,
//! `dns_answers` and the resolve time (`dns_ms`, also the response time)
//! are kept either way. A server that does not answer within the timeout
//! is `timeout`; a refused datagram or connection is `connect`.

use std::net::SocketAddr;
use std::time::Instant;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Outcome, millis};
use crate::message::ErrorKind;
use crate::sites::{DnsType, Site};

/// Answers a check keeps at most.
const MAX_ANSWERS: usize = 100;

/// Checks a `dns://` site.
pub(super) async fn check(
    site: &Site,
    name: &str,
    record: DnsType,
    server: Option<&str>,
) -> Outcome {
    let start = Instant::now();
    let mut answered_ip = None;
    let result =
        tokio::time::timeout(site.timeout, query(name, record, server, &mut answered_ip)).await;
    let elapsed = start.elapsed();
    let mut outcome = Outcome::new(elapsed);
    outcome.ip = answered_ip;
    match result {
        Err(_) => {
            outcome.error_kind = Some(ErrorKind::Timeout);
            outcome.error = Some(format!(
                "timed out after {}: the DNS server did not answer",
                humantime::format_duration(site.timeout)
            ));
        }
        Ok(Err((kind, why))) => {
            outcome.error_kind = Some(kind);
            outcome.error = Some(why);
        }
        Ok(Ok((rcode, answers))) => {
            outcome.dns_ms = Some(millis(elapsed));
            let matched = site
                .regex
                .as_ref()
                .map(|re| answers.iter().any(|a| re.is_match(a.as_bytes())));
            outcome.regex_matched = matched;
            outcome.condition = if rcode != "NOERROR" {
                Some(format!("rcode {rcode}, expected NOERROR"))
            } else if answers.is_empty() {
                Some(format!(
                    "no {} record for {name} (NOERROR, empty answer)",
                    record.as_str()
                ))
            } else if matched == Some(false) {
                Some(format!(
                    "regex `{}` matches none of the answers ({})",
                    site.regex.as_ref().map_or("", |r| r.as_str()),
                    answers.join(", ")
                ))
            } else {
                None
            };
            outcome.dns_rcode = Some(rcode);
            outcome.dns_answers = Some(answers);
        }
    }
    outcome
}

/// The server to ask: the site's, else the system's first `nameserver`.
async fn server_address(server: Option<&str>) -> Result<SocketAddr, (ErrorKind, String)> {
    let text = match server {
        Some(s) => s.to_owned(),
        None => {
            let conf = tokio::fs::read_to_string("/etc/resolv.conf")
                .await
                .unwrap_or_default();
            let first = conf
                .lines()
                .filter_map(|l| l.trim().strip_prefix("nameserver"))
                .map(str::trim)
                .next()
                .ok_or_else(|| {
                    (
                        ErrorKind::Dns,
                        "no server given (server=host:port) and no nameserver in /etc/resolv.conf"
                            .to_owned(),
                    )
                })?;
            match first.parse::<std::net::IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, 53).to_string(),
                Err(_) => format!("{first}:53"),
            }
        }
    };
    tokio::net::lookup_host(text.as_str())
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            (
                ErrorKind::Dns,
                format!("the DNS server `{text}` has no address"),
            )
        })
}

/// One query; the response code's name and the answers of the type asked.
async fn query(
    name: &str,
    record: DnsType,
    server: Option<&str>,
    answered_ip: &mut Option<std::net::IpAddr>,
) -> Result<(String, Vec<String>), (ErrorKind, String)> {
    let server = server_address(server).await?;
    *answered_ip = Some(server.ip());
    let fqdn = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    let qname = Name::from_utf8(&fqdn)
        .map_err(|e| (ErrorKind::Dns, format!("`{name}` is not a DNS name: {e}")))?;
    let record_type = match record {
        DnsType::A => RecordType::A,
        DnsType::Aaaa => RecordType::AAAA,
        DnsType::Cname => RecordType::CNAME,
        DnsType::Mx => RecordType::MX,
        DnsType::Txt => RecordType::TXT,
        DnsType::Ns => RecordType::NS,
    };
    let id: u16 = rand_id();
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(qname, record_type));
    let bytes = message
        .to_vec()
        .map_err(|e| (ErrorKind::Dns, format!("cannot write the query: {e}")))?;
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| (ErrorKind::Connect, format!("cannot open a UDP socket: {e}")))?;
    socket
        .connect(server)
        .await
        .map_err(|e| (ErrorKind::Connect, super::one_line(&e.to_string())))?;
    socket
        .send(&bytes)
        .await
        .map_err(|e| (ErrorKind::Connect, super::one_line(&e.to_string())))?;
    let mut buf = vec![0u8; 4096];
    let response = loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| (ErrorKind::Connect, super::one_line(&e.to_string())))?;
        // Anything that is not the answer to this query is ignored.
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.metadata.id == id
            && m.metadata.message_type == MessageType::Response
        {
            break m;
        }
    };
    let response = if response.metadata.truncation {
        over_tcp(server, &bytes, id).await?
    } else {
        response
    };
    let rcode = rcode_name(response.metadata.response_code);
    let answers = response
        .answers
        .iter()
        .filter(|r| r.record_type() == record_type)
        .map(|r| text(&r.data))
        .take(MAX_ANSWERS)
        .collect();
    Ok((rcode, answers))
}

/// The query again over TCP (a truncated UDP answer).
async fn over_tcp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
) -> Result<Message, (ErrorKind, String)> {
    let io = |e: std::io::Error| (ErrorKind::Connect, super::one_line(&e.to_string()));
    let mut stream = tokio::net::TcpStream::connect(server).await.map_err(io)?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(io)?;
    let length = stream.read_u16().await.map_err(io)?;
    let mut buf = vec![0u8; usize::from(length)];
    stream.read_exact(&mut buf).await.map_err(io)?;
    Message::from_vec(&buf)
        .ok()
        .filter(|m| m.metadata.id == id)
        .ok_or_else(|| {
            (
                ErrorKind::Dns,
                "the DNS server's TCP answer is not one".to_owned(),
            )
        })
}

/// A record's data as text: `192.0.2.1`, `10 mail.example.com.`, the TXT
/// strings joined.
fn text(data: &RData) -> String {
    let text = match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    };
    crate::escape::controls(&text).chars().take(1024).collect()
}

/// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, as DNS operators write them.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// A query id no off-path sender guesses easily.
fn rand_id() -> u16 {
    let bytes = uuid::Uuid::new_v4();
    let b = bytes.as_bytes();
    u16::from_be_bytes([b[0], b[1]])
}
