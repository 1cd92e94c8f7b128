//! The master's one port as an `axum::serve` listener: plain TCP, or TLS with every handshake in
//! its own task (a slow or silent client holds up no one else), and the peer facts handlers see as
//! `ConnectInfo<Peer>`: the address and whether a verified client certificate was presented. At
//! most `--max-connections` connections are open at once: each holds a slot until it closes, and
//! one more is answered 503 in Marathon's shape and closed.

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use gantry_daemon::tls_files::rustls;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server loop to take them.
const READY_QUEUE: usize = 256;

/// A connection on the master's port, with the slot it holds until it closes.
pub enum MasterIo {
    Plain(TcpStream, OwnedSemaphorePermit),
    Tls(Box<TlsStream<TcpStream>>, OwnedSemaphorePermit),
}

/// Who is on the other end of a connection, for handlers (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client presented a certificate and it verified against `--tls-client-ca-file`.
    pub client_cert: bool,
}

/// The master's listener: plain or TLS.
pub struct MasterListener {
    local: SocketAddr,
    inner: Inner,
    slots: Arc<Semaphore>,
    max_connections: usize,
}

enum Inner {
    Plain(TcpListener),
    /// Fed by the accept task, which runs the handshakes.
    Tls(mpsc::Receiver<(MasterIo, SocketAddr)>),
}

impl MasterListener {
    /// Serves `tcp` as it is, or behind TLS with `tls`, with at most `max_connections` open.
    pub fn new(
        tcp: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        max_connections: usize,
    ) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let slots = Arc::new(Semaphore::new(max_connections));
        let inner = match tls {
            None => Inner::Plain(tcp),
            Some(cfg) => {
                let (tx, rx) = mpsc::channel(READY_QUEUE);
                tokio::spawn(accept_tls(tcp, TlsAcceptor::from(cfg), tx, slots.clone()));
                Inner::Tls(rx)
            }
        };
        Ok(Self {
            local,
            inner,
            slots,
            max_connections,
        })
    }
}

/// Answers a connection over the limit with a 503 in Marathon's shape, then closes it.
async fn refuse<S: AsyncWrite + Unpin>(mut stream: S, peer: SocketAddr, limit: usize) {
    tracing::warn!(%peer, limit, "refused a connection: too many open");
    let body = format!(
        "{{\"message\":\"Too many connections: at most {limit} open at once; retry shortly\"}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Waits a little after an accept error (out of file descriptors, mostly) rather than spinning.
async fn accept_failed(e: io::Error) {
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn accept_tls(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(MasterIo, SocketAddr)>,
    slots: Arc<Semaphore>,
) {
    let limit = slots.available_permits();
    // Every slot is free when the loop starts: that count is the limit.
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(ok) => ok,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        if ready.is_closed() {
            return;
        }
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        let slot = slots.clone().try_acquire_owned().ok();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => match slot {
                    Some(slot) => {
                        let _ = ready.send((MasterIo::Tls(Box::new(tls), slot), peer)).await;
                    }
                    None => refuse(tls, peer, limit).await,
                },
                Ok(Err(e)) => handshake_failed(peer, &e),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Logs a failed handshake: a TLS-level refusal (a client certificate from another CA, a client
/// speaking plain HTTP to this port) as a warning, a peer that merely went away at debug level.
fn handshake_failed(peer: SocketAddr, e: &io::Error) {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(why)) => tracing::warn!(
            %peer,
            reason = ?why,
            "refused a TLS client: its certificate does not verify against --tls-client-ca-file"
        ),
        Some(tls @ rustls::Error::InvalidMessage(_)) => tracing::warn!(
            %peer,
            error = %tls,
            "TLS handshake failed: the client does not speak TLS (http:// to this HTTPS port?)"
        ),
        Some(tls) => tracing::warn!(%peer, error = %tls, "TLS handshake failed"),
        None => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
    }
}

impl axum::serve::Listener for MasterListener {
    type Io = MasterIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match &mut self.inner {
                Inner::Plain(tcp) => match TcpListener::accept(tcp).await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        match self.slots.clone().try_acquire_owned() {
                            Ok(slot) => return (MasterIo::Plain(stream, slot), peer),
                            Err(_) => {
                                tokio::spawn(refuse(stream, peer, self.max_connections));
                            }
                        }
                    }
                    Err(e) => accept_failed(e).await,
                },
                Inner::Tls(rx) => match rx.recv().await {
                    Some(ready) => return ready,
                    // The accept task only ends when this receiver is gone.
                    None => std::future::pending::<()>().await,
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl Connected<IncomingStream<'_, MasterListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, MasterListener>) -> Self {
        let client_cert = match stream.io() {
            MasterIo::Plain(..) => false,
            MasterIo::Tls(tls, _) => tls.get_ref().1.peer_certificates().is_some(),
        };
        Peer {
            addr: *stream.remote_addr(),
            client_cert,
        }
    }
}

impl AsyncRead for MasterIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MasterIo::Plain(s, _) => Pin::new(s).poll_read(cx, buf),
            MasterIo::Tls(s, _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MasterIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MasterIo::Plain(s, _) => Pin::new(s).poll_write(cx, buf),
            MasterIo::Tls(s, _) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MasterIo::Plain(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
            MasterIo::Tls(s, _) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MasterIo::Plain(s, _) => s.is_write_vectored(),
            MasterIo::Tls(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MasterIo::Plain(s, _) => Pin::new(s).poll_flush(cx),
            MasterIo::Tls(s, _) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MasterIo::Plain(s, _) => Pin::new(s).poll_shutdown(cx),
            MasterIo::Tls(s, _) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
