//! Handlers shared by the examples and the conformance suite.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gale_core::codec::{LengthDelimited, Lines, Raw};
use gale_core::{CloseReason, Context, Handler};

use crate::TaskPool;

/// Echoes every byte back (gev's echo example, `DefaultProtocol`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    type Protocol = Raw;
    type State = ();

    fn protocol(&self) -> Raw {
        Raw::new()
    }

    fn on_connect(&self, cx: &mut Context<'_, Self>) {
        tracing::debug!(peer = %cx.peer_addr(), "connected");
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Bytes) {
        // A full send buffer means the peer does not read: give up on it.
        if cx.send(msg).is_err() {
            cx.close();
        }
    }

    fn on_close(&self, cx: &mut Context<'_, Self>, reason: &CloseReason) {
        tracing::debug!(peer = %cx.peer_addr(), %reason, "closed");
    }
}

/// Echoes each length-prefixed frame back as a frame (gev's custom protocol example):
/// a 4-byte big-endian payload length, then the payload.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameEcho;

impl Handler for FrameEcho {
    type Protocol = LengthDelimited;
    type State = ();

    fn protocol(&self) -> LengthDelimited {
        LengthDelimited::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, frame: Bytes) {
        if cx.send(frame).is_err() {
            cx.close();
        }
    }

    fn on_close(&self, cx: &mut Context<'_, Self>, reason: &CloseReason) {
        tracing::debug!(peer = %cx.peer_addr(), %reason, "closed");
    }
}

/// Hands every line to a [`TaskPool`] as simulated work (sleeping `work`), then answers
/// through the connection's handle: `done <line>` when the work is done, `timeout <line>`
/// when it waited too long, and at once `busy <line>` when the pool refused it.
#[derive(Clone)]
pub struct TaskLines {
    /// Where the work runs.
    pub pool: Arc<dyn TaskPool>,
    /// How long one line's simulated work takes.
    pub work: Duration,
}

impl Handler for TaskLines {
    type Protocol = Lines;
    type State = ();

    fn protocol(&self) -> Lines {
        Lines::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
        let Some(done) = cx.handle() else {
            return;
        };
        let expired = done.clone();
        let work = self.work;
        let text = String::from_utf8_lossy(&line).into_owned();
        let late = text.clone();
        let submitted = self.pool.submit(
            Box::new(move || {
                std::thread::sleep(work);
                done.send(format!("done {text}").into())
                    .map_err(|e| e.to_string())
            }),
            Box::new(move || {
                let _ = expired.send(format!("timeout {late}").into());
            }),
        );
        if submitted.is_refused() {
            let busy = format!("busy {}", String::from_utf8_lossy(&line));
            if cx.send(busy.into()).is_err() {
                cx.close();
            }
        }
    }
}
