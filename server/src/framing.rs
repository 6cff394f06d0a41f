//! The transport in front of the LSP framework. tower-lsp-server's framed reader stops for good on the first
//! frame it cannot decode (a body that is not a JSON-RPC message, a Content-Length that does not match the
//! body, a header block without one), which leaves the editor with a server that never answers again. So we
//! read the frames ourselves: each one is checked for the JSON-RPC 2.0 shape, a broken one is answered with
//! a JSON-RPC error (or skipped with a log line when it cannot be answered) and the reader finds the next
//! `Content-Length:` header; only well-formed messages reach the framework. Our replies and the framework's
//! output go through one channel to one writer, so frames never interleave.
use crate::lifecycle::Lifecycle;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

pub use crate::frames::*;

pub fn encode(v: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(v).expect("a Value always serializes");
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// What `read_messages` hands on.
#[derive(Debug)]
pub enum Incoming {
    Message(Value),
    /// An error response for the client, from the transport itself.
    Reply(Value),
}

/// Read frames from `input` into a channel until EOF, telling `life` about `initialize`'s processId,
/// `shutdown`, `exit` and the end of input.
pub fn read_messages(
    mut input: impl AsyncRead + Unpin + Send + 'static,
    life: Lifecycle,
) -> mpsc::UnboundedReceiver<Incoming> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut r = FrameReader::default();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match input.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("reading LSP input: {e}");
                    break;
                }
            };
            r.push(&chunk[..n]);
            while let Some(ev) = r.next_event() {
                let out = match ev {
                    Event::Message(m) => {
                        life.observe(&m);
                        Incoming::Message(m)
                    }
                    Event::Reply(e) => {
                        tracing::warn!("answered a malformed LSP frame: {}", e["error"]["message"]);
                        Incoming::Reply(e)
                    }
                    Event::Skipped(why) => {
                        tracing::warn!("skipped LSP input: {why}");
                        continue;
                    }
                };
                if tx.send(out).is_err() {
                    return;
                }
            }
        }
        if r.pending() > 0 {
            tracing::warn!("input ended inside a frame ({} bytes dropped)", r.pending());
        }
        life.input_closed();
    });
    rx
}

/// An `AsyncWrite` that sends each write to the output channel. The framework's framed writer only ever
/// writes whole encoded frames from its buffer, and this writer takes every write in full, so each chunk is
/// whole frames and never interleaves with our replies.
struct ChannelWriter(mpsc::UnboundedSender<Vec<u8>>);

impl AsyncWrite for ChannelWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(match self.0.send(buf.to_vec()) {
            Ok(()) => Ok(buf.len()),
            Err(_) => Err(std::io::ErrorKind::BrokenPipe.into()),
        })
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The framework's side of a guarded connection.
pub struct Guarded {
    pub input: tokio::io::DuplexStream,
    pub output: Box<dyn AsyncWrite + Unpin + Send>,
    /// Ends when every frame has been written out.
    pub writer: tokio::task::JoinHandle<()>,
}

/// Put our reader and one writer between a connection and the framework.
pub fn guard(
    input: impl AsyncRead + Unpin + Send + 'static,
    mut output: impl AsyncWrite + Unpin + Send + 'static,
    life: Lifecycle,
) -> Guarded {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            if output.write_all(&bytes).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let (mut ours, theirs) = tokio::io::duplex(1 << 20);
    let mut rx = read_messages(input, life);
    let replies = out_tx.clone();
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            match m {
                Incoming::Message(v) => {
                    if ours.write_all(&encode(&v)).await.is_err() {
                        break;
                    }
                }
                Incoming::Reply(v) => {
                    let _ = replies.send(encode(&v));
                }
            }
        }
        let _ = ours.shutdown().await;
    });
    Guarded { input: theirs, output: Box::new(ChannelWriter(out_tx)), writer }
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
