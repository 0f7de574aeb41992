//! Handlers shared by the examples and the conformance suite.

use bytes::Bytes;
use gale_core::codec::{LengthDelimited, Raw};
use gale_core::{CloseReason, Context, Handler};

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
