//! A guard in front of the LSP framework's input. tower-lsp-server stops reading its input for good after a
//! frame whose body is not JSON (its framed stream ends on the first decode error), which would leave the
//! editor with a server that silently never answers again. We check each frame here and replace a
//! malformed one with a notification the server reports, so one bad message costs one message.
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

pub const MALFORMED_METHOD: &str = "$/lokal/malformedMessage";

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn malformed(why: &str) -> Vec<u8> {
    let body = serde_json::json!({"jsonrpc": "2.0", "method": MALFORMED_METHOD, "params": {"error": why}});
    frame(&serde_json::to_vec(&body).unwrap())
}

/// Copy LSP frames from `input` to `output` until EOF, rewriting frames the framework would choke on.
pub async fn sanitize(input: impl AsyncRead + Unpin, mut output: impl AsyncWrite + Unpin) -> std::io::Result<()> {
    let mut r = BufReader::new(input);
    loop {
        let mut len: Option<usize> = None;
        let mut bad_header = None;
        let mut saw_any = false;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await? == 0 {
                output.shutdown().await?;
                return Ok(());
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                if saw_any {
                    break;
                }
                continue;
            }
            saw_any = true;
            match l.split_once(':') {
                Some((k, v)) if k.eq_ignore_ascii_case("content-length") => match v.trim().parse::<usize>() {
                    Ok(n) if n <= 256 * 1024 * 1024 => len = Some(n),
                    _ => bad_header = Some(format!("bad Content-Length {:?}", v.trim())),
                },
                Some(_) => {}
                None => bad_header = Some(format!("not a header line: {:?}", l.chars().take(80).collect::<String>())),
            }
        }
        let Some(n) = len.filter(|_| bad_header.is_none()) else {
            let why = bad_header.unwrap_or_else(|| "missing Content-Length".into());
            tracing::warn!("dropped malformed LSP frame: {why}");
            output.write_all(&malformed(&why)).await?;
            output.flush().await?;
            continue;
        };
        let mut body = vec![0u8; n];
        r.read_exact(&mut body).await?;
        let out = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) if v.is_object() || v.is_array() => frame(&body),
            Ok(_) => malformed("message body is not a JSON object"),
            Err(e) => {
                tracing::warn!("dropped malformed LSP message: {e}");
                malformed(&format!("message body is not valid JSON: {e}"))
            }
        };
        output.write_all(&out).await?;
        output.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn malformed_frames_become_notifications_and_good_ones_pass() {
        let input = b"Content-Length: 9\r\n\r\n{not jsonContent-Length: 2\r\n\r\n{}".to_vec();
        let mut out = Vec::new();
        sanitize(&input[..], &mut out).await.unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains(MALFORMED_METHOD), "{s}");
        assert!(s.ends_with("Content-Length: 2\r\n\r\n{}"), "{s}");
    }
}
