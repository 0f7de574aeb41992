//! Scenario tests: a WebSocket connection against a scripted client on a virtual clock.

mod close;
mod deflate;
mod frames;
mod handshake;
mod props;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::fuzz::{Recorder, client_frame, server_frames, upgrade_request};
use super::{
    CloseCode, CloseFrame, HandshakeError, Message, Outbound, UpgradeDecision, Utf8Bytes,
    WebSocket, WsConfig, WsError,
};
use crate::buf::SendQueue;
use crate::testing::Harness;
use crate::{CloseReason, ConnConfig, Protocol, ProtocolCx, ProtocolError, t0};

const KEY: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;
const FIN: u8 = 0x80;

fn harness(config: WsConfig) -> Harness<Recorder> {
    Harness::new(Recorder::new(Arc::new(config)), ConnConfig::default(), t0())
}

/// A connection past its handshake, with the 101 taken.
fn open(config: WsConfig) -> Harness<Recorder> {
    let mut h = harness(config);
    h.peer_send(&upgrade_request("/"));
    assert!(h.take_written().starts_with(b"HTTP/1.1 101 "));
    h
}

fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(b0, payload, Some(KEY))
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// The frames the server wrote since the last call, as `(b0, payload)`.
fn written_frames(h: &mut Harness<Recorder>) -> Vec<(u8, Bytes)> {
    let wire = h.take_written();
    let frames = server_frames(&wire);
    let total: usize = frames
        .iter()
        .map(|(_, p)| crate::ws::frame::header_len(p.len()) + p.len())
        .sum();
    assert_eq!(total, wire.len(), "server wrote a partial or masked frame");
    frames
}

/// The status code of the server's close frame, if it sent exactly one last.
fn sent_close_code(frames: &[(u8, Bytes)]) -> Option<u16> {
    let (b0, payload) = frames.last()?;
    (*b0 == FIN | CLOSE).then(|| {
        if payload.len() >= 2 {
            u16::from_be_bytes([payload[0], payload[1]])
        } else {
            1005
        }
    })
}

fn messages(h: &mut Harness<Recorder>) -> Vec<Message> {
    std::mem::take(&mut h.conn().state().messages)
        .into_iter()
        .filter(|m| !matches!(m, Message::Open(_)))
        .collect()
}

fn text(s: &str) -> Message {
    Message::Text(Utf8Bytes::from(s))
}

/// Sends `input` and checks that the server answered with a close frame carrying `code`
/// and then closed.
fn assert_fails_with(config: WsConfig, input: &[u8], code: u16) {
    let mut h = open(config);
    h.peer_send(input);
    let frames = written_frames(&mut h);
    assert_eq!(sent_close_code(&frames), Some(code), "{frames:?}");
    let Some(CloseReason::Protocol(ProtocolError::WebSocket(e))) = h.closed() else {
        panic!("{:?}", h.closed());
    };
    assert_eq!(e.close_code(), Some(CloseCode(code)), "{e}");
}
