//! `icmp://host`: three echo requests over an unprivileged ICMP socket
//! (Linux's ping sockets, which `net.ipv4.ping_group_range` allows per
//! group; no raw socket, no privilege), their replies awaited within the
//! site's timeout. `response_time_ms` is the mean round trip of the
//! replies, `packet_loss` the share of requests unanswered; the check is
//! up when any reply came. A host whose kernel does not allow ping sockets
//! to this process's group gets an error that says which setting allows
//! them.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::{Outcome, millis};
use crate::message::ErrorKind;
use crate::sites::Site;

/// Echo requests per check.
pub const REQUESTS: u16 = 3;

/// Checks an `icmp://` site.
pub(super) async fn check(site: &Site, host: &str) -> Outcome {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + site.timeout;
    let mut outcome = Outcome::new(Duration::ZERO);
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            let found = tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, 0))).await;
            outcome.dns_ms = Some(millis(start.elapsed()));
            match found {
                Ok(Ok(mut addrs)) => addrs.next().map(|a| a.ip()),
                Ok(Err(e)) => {
                    outcome.error_kind = Some(ErrorKind::Dns);
                    outcome.error = Some(super::one_line(&e.to_string()));
                    None
                }
                Err(_) => {
                    outcome.error_kind = Some(ErrorKind::Timeout);
                    outcome.error = Some("timed out resolving the host".to_owned());
                    None
                }
            }
        }
    };
    let Some(ip) = ip else {
        outcome.response_time_ms = millis(start.elapsed());
        if outcome.error.is_none() {
            outcome.error_kind = Some(ErrorKind::Dns);
            outcome.error = Some(format!("`{host}` has no address"));
        }
        return outcome;
    };
    outcome.ip = Some(ip);
    match ping(ip, deadline).await {
        Err(why) => {
            outcome.error_kind = Some(ErrorKind::Connect);
            outcome.error = Some(why);
            outcome.response_time_ms = millis(start.elapsed());
        }
        Ok(rtts) => {
            let loss = 1.0 - rtts.len() as f64 / f64::from(REQUESTS);
            outcome.packet_loss = Some(loss);
            if rtts.is_empty() {
                outcome.response_time_ms = millis(start.elapsed());
                outcome.error_kind = Some(ErrorKind::Timeout);
                outcome.error = Some(format!(
                    "no echo reply to {REQUESTS} requests in {} (100% loss)",
                    humantime::format_duration(site.timeout)
                ));
            } else {
                let mean = rtts.iter().sum::<Duration>() / rtts.len() as u32;
                outcome.response_time_ms = millis(mean);
            }
        }
    }
    outcome
}

/// Sends the echo requests and waits for their replies until `deadline`:
/// the round trip of each reply. The error says why no socket could be
/// opened or written to.
async fn ping(ip: IpAddr, deadline: tokio::time::Instant) -> Result<Vec<Duration>, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (domain, protocol, request, reply) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4, 8u8, 0u8),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6, 128u8, 129u8),
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(protocol)).map_err(|e| not_allowed(&e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("cannot use the ICMP socket: {e}"))?;
    let socket = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))
        .map_err(|e| format!("cannot use the ICMP socket: {e}"))?;
    socket
        .connect(SocketAddr::new(ip, 0))
        .await
        .map_err(|e| super::one_line(&e.to_string()))?;
    let mut sent = Vec::new();
    for seq in 1..=REQUESTS {
        let packet = echo_request(request, seq);
        sent.push(Instant::now());
        socket
            .send(&packet)
            .await
            .map_err(|e| super::one_line(&e.to_string()))?;
    }
    let mut rtts = vec![None; usize::from(REQUESTS)];
    let mut buf = [0u8; 1500];
    while rtts.iter().any(Option::is_none) {
        let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await else {
            break;
        };
        let Ok(n) = received else { break };
        // The kernel hands a ping socket the ICMP message alone (no IP
        // header), with its own identifier: the sequence says which.
        if n >= 8 && buf[0] == reply {
            let seq = u16::from_be_bytes([buf[6], buf[7]]);
            if (1..=REQUESTS).contains(&seq) {
                let i = usize::from(seq - 1);
                rtts[i].get_or_insert_with(|| sent[i].elapsed());
            }
        }
    }
    Ok(rtts.into_iter().flatten().collect())
}

/// An echo request: type, code, checksum, identifier (the kernel's), the
/// sequence number, a payload.
fn echo_request(kind: u8, seq: u16) -> Vec<u8> {
    let mut packet = vec![kind, 0, 0, 0, 0, 0];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(b"sitewatch-ping..");
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Why an ICMP socket could not be opened, with the setting that allows it.
fn not_allowed(e: &std::io::Error) -> String {
    if matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::Unsupported
    ) || e.raw_os_error() == Some(13)
        || e.raw_os_error() == Some(1)
    {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
            .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".to_owned());
        let gid = own_gid();
        format!(
            "this host does not allow unprivileged ping sockets to group {gid} (net.ipv4.ping_group_range is `{range}`): allow it with `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` (or a range with that group)"
        )
    } else {
        format!("cannot open an ICMP socket: {e}")
    }
}

/// This process's group, from `/proc/self/status`.
fn own_gid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Gid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "?".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_echo_request_checks_out() {
        let packet = super::echo_request(8, 2);
        assert_eq!(&packet[..2], &[8, 0]);
        assert_eq!(&packet[6..8], &[0, 2]);
        assert_eq!(
            super::checksum(&packet),
            0,
            "a packet with its checksum sums to zero"
        );
    }
}
