//! A tiny blocking HTTP/1.1 client over `std::net` for the server tests: one request per
//! connection, `Connection: close`, the default all-permissions key, chunked bodies decoded.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};

/// Sends `method path?query` with an optional JSON body; returns status and JSON body (`Null`
/// when not JSON).
pub async fn request(base: &str, method: &str, path_and_query: &str, body: Option<String>) -> (u16, serde_json::Value) {
    let addr = base.trim_start_matches("http://").to_owned();
    let head_path = path_and_query.to_owned();
    let method = method.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let body = body.unwrap_or_default();
        let request = format!(
            "{method} {head_path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            offerloop_sim::state::DEFAULT_API_KEY,
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut payload = raw[split + 4..].to_vec();
        let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            payload = dechunk(&payload);
        }
        (status, serde_json::from_slice(&payload).unwrap_or(serde_json::Value::Null))
    })
    .await
    .unwrap()
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
    out
}

/// Percent-encodes a query component.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
