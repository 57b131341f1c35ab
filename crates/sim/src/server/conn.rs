//! The server's listener: TCP connections with a kill switch, so the fault middleware can close a
//! connection without writing the response (a reset, or "applied but response lost").
//!
//! Every accepted connection is wrapped in a [`SimStream`] sharing an `AtomicBool` with the
//! connection's [`ConnInfo`] (available to handlers and middleware as `ConnectInfo<ConnInfo>`). Once
//! [`ConnInfo::kill`] is called, every write fails, so hyper drops the connection before any byte of
//! the response leaves.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections can be killed from a request.
#[derive(Debug)]
pub struct SimListener {
    inner: TcpListener,
}

impl SimListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener) -> SimListener {
        SimListener { inner }
    }
}

/// The connect info of a connection: its peer address and kill switch.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub addr: SocketAddr,
    killed: Arc<AtomicBool>,
}

impl ConnInfo {
    /// Closes the connection as soon as the server tries to write to it.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

/// An accepted connection with a kill switch.
#[derive(Debug)]
pub struct SimStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl SimStream {
    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection killed by fault injection")
}

impl AsyncRead for SimStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Listener for SimListener {
    type Io = SimStream;
    type Addr = ConnInfo;

    async fn accept(&mut self) -> (SimStream, ConnInfo) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Responses are small; sending them at once keeps latency measurements honest.
                    let _ = stream.set_nodelay(true);
                    let killed = Arc::new(AtomicBool::new(false));
                    return (
                        SimStream {
                            inner: stream,
                            killed: killed.clone(),
                        },
                        ConnInfo { addr, killed },
                    );
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little, as axum's own listener does.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<ConnInfo> {
        Ok(ConnInfo {
            addr: self.inner.local_addr()?,
            killed: Arc::new(AtomicBool::new(false)),
        })
    }
}

impl Connected<IncomingStream<'_, SimListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}
