//! Zero-downtime restart by socket handoff over a Unix socket (SCM_RIGHTS).
//!
//! A running `ficus` started with `--handoff-socket PATH` listens on PATH. A new `ficus`
//! started with the same flag first connects to PATH and asks for the listening
//! sockets; the old process sends duplicates of its proxy and admin listeners. The new
//! process starts serving on them and then says `ready`; only then does the old process
//! stop accepting and drain. Both processes accept from the same kernel queue in between,
//! so no connection is refused and none waits in a queue that nobody reads. If the new
//! process dies before `ready`, the old one simply keeps serving.
//!
//! Protocol (one line each way, then the fds): new -> `takeover\n`; old -> `listeners\n`
//! with two fds attached (proxy, admin); new -> `ready\n`.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::{Context, bail};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Listeners received from a predecessor, and the channel to tell it we are serving.
pub struct Takeover {
    pub proxy: TcpListener,
    pub admin: TcpListener,
    conn: UnixStream,
}

impl Takeover {
    /// Tells the predecessor that we serve now; it stops accepting and drains.
    pub fn ready(mut self) -> std::io::Result<()> {
        self.conn.write_all(b"ready\n")
    }
}

/// Asks a running predecessor at `path` for its listeners. `Ok(None)` when nobody listens.
pub fn take_over(path: &Path) -> anyhow::Result<Option<Takeover>> {
    let mut conn = match UnixStream::connect(path) {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(e).with_context(|| format!("connect to handoff socket {}", path.display()));
        }
    };
    conn.write_all(b"takeover\n")?;
    let mut buf = [0u8; 64];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        &conn,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .context("receive listeners from the running ficus")?;
    if &buf[..msg.bytes] != b"listeners\n" {
        bail!(
            "unexpected handoff reply {:?}",
            String::from_utf8_lossy(&buf[..msg.bytes])
        );
    }
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    let [proxy, admin]: [OwnedFd; 2] = fds
        .try_into()
        .map_err(|v: Vec<OwnedFd>| anyhow::anyhow!("expected 2 listeners, got {}", v.len()))?;
    conn.flush()?;
    Ok(Some(Takeover {
        proxy: TcpListener::from(proxy),
        admin: TcpListener::from(admin),
        conn,
    }))
}

/// Serves handoff requests on `path` from a background thread. Calls `on_handed_over`
/// once a successor has our listeners and reports `ready`.
pub fn listen(
    path: &Path,
    proxy: TcpListener,
    admin: TcpListener,
    on_handed_over: impl FnOnce() + Send + 'static,
) -> anyhow::Result<()> {
    // A stale socket file from a dead process would make bind fail; nobody answered on it.
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .with_context(|| format!("bind handoff socket {}", path.display()))?;
    let path = path.to_owned();
    std::thread::Builder::new()
        .name("ficus-handoff".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                match serve_one(&conn, &proxy, &admin) {
                    Ok(()) => {
                        tracing::info!(socket = %path.display(), "successor is serving; draining");
                        on_handed_over();
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "handoff attempt failed; still serving"),
                }
            }
        })?;
    Ok(())
}

fn serve_one(conn: &UnixStream, proxy: &TcpListener, admin: &TcpListener) -> anyhow::Result<()> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line != "takeover\n" {
        bail!("unexpected handoff request {line:?}");
    }
    let fds = [proxy.as_fd(), admin.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        bail!("ancillary buffer too small");
    }
    rustix::net::sendmsg(
        conn,
        &[IoSlice::new(b"listeners\n")],
        &mut control,
        SendFlags::empty(),
    )?;
    line.clear();
    reader.read_line(&mut line)?;
    if line != "ready\n" {
        bail!("successor did not become ready (said {line:?})");
    }
    Ok(())
}
