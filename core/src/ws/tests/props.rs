//! Sending, memory, and quickcheck properties over arbitrary client scripts.

use super::*;
use crate::ws::{Frame, OpCode};

#[test]
fn outbound_control_frames_are_checked() {
    let mut h = open(WsConfig::default());
    let handle = h.handle();
    handle
        .send(Outbound::Ping(Bytes::from_static(b"hi")))
        .unwrap();
    handle
        .send(Outbound::Pong(Bytes::from_static(b"")))
        .unwrap();
    handle
        .send(Outbound::Frame(Frame::new(false, OpCode::Text, "str")))
        .unwrap();
    handle
        .send(Outbound::Frame(Frame::new(
            true,
            OpCode::Continuation,
            "eam",
        )))
        .unwrap();
    h.step();
    assert_eq!(
        written_frames(&mut h),
        [
            (FIN | PING, Bytes::from_static(b"hi")),
            (FIN | PONG, Bytes::new()),
            (TEXT, Bytes::from_static(b"str")),
            (FIN | CONT, Bytes::from_static(b"eam")),
        ]
    );
    // A ping that is too long is the sender's mistake; through a handle it ends the
    // connection, through a context it is an error returned to the caller.
    let mut send = SendQueue::new();
    let mut close = false;
    let mut proto = open_protocol(WsConfig::default());
    let mut cx = ProtocolCx::new(t0(), &mut send, &mut close);
    assert!(
        proto
            .encode(&mut cx, Outbound::Ping(Bytes::from(vec![0; 126])))
            .is_err()
    );
    assert!(
        proto
            .encode(
                &mut cx,
                Outbound::Close(Some(CloseFrame::new(CloseCode(1005), "")))
            )
            .is_err()
    );
    assert!(
        proto
            .encode(
                &mut cx,
                Outbound::Frame(Frame::new(true, OpCode::Close, ""))
            )
            .is_err()
    );
    assert!(
        proto
            .encode(
                &mut cx,
                Outbound::Frame(Frame::new(false, OpCode::Ping, ""))
            )
            .is_err()
    );
}

/// A protocol driven directly (no connection), past its handshake.
fn open_protocol(config: WsConfig) -> WebSocket {
    let mut ws = WebSocket::new(Arc::new(config));
    let mut send = SendQueue::new();
    let mut close = false;
    let mut cx = ProtocolCx::new(t0(), &mut send, &mut close);
    let mut src = BytesMut::from(&upgrade_request("/")[..]);
    let open = ws.decode(&mut cx, &mut src).unwrap();
    assert!(matches!(open, Some(Message::Open(_))));
    assert!(ws.is_open());
    ws
}

#[test]
fn idle_connection_holds_no_handshake_or_message_memory() {
    let mut ws = WebSocket::default();
    assert_eq!(ws.heap_bytes(), 0, "nothing before the request");
    let mut send = SendQueue::new();
    let mut close = false;
    let mut cx = ProtocolCx::new(t0(), &mut send, &mut close);
    let request = upgrade_request("/");
    let mut src = BytesMut::from(&request[..10]);
    assert_eq!(ws.decode(&mut cx, &mut src).unwrap(), None);
    assert!(
        ws.heap_bytes() > 0,
        "the handshake decoder, while the request arrives"
    );
    src.extend_from_slice(&request[10..]);
    let open = ws.decode(&mut cx, &mut src).unwrap();
    assert!(matches!(open, Some(Message::Open(_))));
    assert_eq!(ws.heap_bytes(), 0, "decoder dropped at the upgrade");
    let mut src =
        BytesMut::from(&[frame(BINARY, &[1; 3000]), frame(CONT, &[2; 3000])].concat()[..]);
    assert_eq!(ws.decode(&mut cx, &mut src).unwrap(), None);
    assert!(ws.heap_bytes() >= 6000, "fragments reassembling");
    src.extend_from_slice(&frame(FIN | CONT, b"!"));
    let msg = ws.decode(&mut cx, &mut src).unwrap();
    assert!(matches!(msg, Some(Message::Binary(b)) if b.len() == 6001));
    assert_eq!(ws.heap_bytes(), 0, "reassembly buffer freed");
    assert!(src.is_empty());
    // Every open connection holds one (see "Memory" in the type's docs).
    assert!(size_of::<WebSocket>() <= 112, "{}", size_of::<WebSocket>());
}

#[test]
fn frame_size_hint_covers_the_frame_in_progress() {
    let mut ws = open_protocol(WsConfig::default());
    let wire = frame(FIN | BINARY, &[0; 70_000]);
    let mut src = BytesMut::from(&wire[..13]);
    assert_eq!(ws.frame_size_hint(&src), None, "header incomplete");
    src.extend_from_slice(&wire[13..14]);
    assert_eq!(ws.frame_size_hint(&src), Some(wire.len()));
    let mut send = SendQueue::new();
    let mut close = false;
    let mut cx = ProtocolCx::new(t0(), &mut send, &mut close);
    src.extend_from_slice(&wire[14..100]);
    assert_eq!(ws.decode(&mut cx, &mut src).unwrap(), None);
    assert_eq!(ws.frame_size_hint(&src), Some(70_000), "header consumed");
}

/// A client's message as a sequence of frames, possibly with control frames in between.
#[derive(Debug, Clone)]
struct Script {
    messages: Vec<(bool, Vec<u8>, u8)>,
    pings: Vec<bool>,
    key: u32,
}

impl Arbitrary for Script {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % 6;
        let messages = (0..n)
            .map(|_| {
                let is_text = bool::arbitrary(g);
                let payload = if is_text {
                    String::arbitrary(g).into_bytes()
                } else {
                    Vec::<u8>::arbitrary(g)
                };
                (is_text, payload, u8::arbitrary(g) % 4 + 1)
            })
            .collect();
        Self {
            messages,
            pings: Vec::arbitrary(g),
            key: u32::arbitrary(g),
        }
    }
}

impl Script {
    /// The wire bytes, and the messages a correct server hands over.
    fn encode(&self) -> (Vec<u8>, Vec<Message>) {
        let key = Some(self.key.to_be_bytes());
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        let mut pings = self.pings.iter().cycle();
        for (i, (is_text, payload, parts)) in self.messages.iter().enumerate() {
            let parts = usize::from(*parts);
            let step = payload.len().div_ceil(parts).max(1);
            let chunks: Vec<&[u8]> = if payload.is_empty() {
                vec![&[]]
            } else {
                payload.chunks(step).collect()
            };
            for (j, chunk) in chunks.iter().enumerate() {
                let op = match (j, is_text) {
                    (0, true) => TEXT,
                    (0, false) => BINARY,
                    _ => CONT,
                };
                let last = j + 1 == chunks.len();
                wire.extend(client_frame(if last { FIN | op } else { op }, chunk, key));
                if last {
                    let body = Bytes::from(payload.clone());
                    expect.push(if *is_text {
                        Message::Text(Utf8Bytes::try_from(body).unwrap())
                    } else {
                        Message::Binary(body)
                    });
                }
                if pings.next() == Some(&true) {
                    let p = [i as u8, j as u8];
                    wire.extend(client_frame(FIN | PING, &p, key));
                    expect.push(Message::Ping(Bytes::copy_from_slice(&p)));
                }
            }
        }
        (wire, expect)
    }
}

/// Any chunking, read into the connection's own buffer or (`shared`) through shared read
/// buffers of any size, as gale's drivers read.
#[test]
fn prop_any_chunking_gives_the_same_messages() {
    fn prop(script: Script, cuts: Vec<usize>, shared: Option<u8>) -> bool {
        let (wire, expect) = script.encode();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(wire.len());
        let mut h = open(WsConfig::default());
        h.set_shared_reads(shared.map(|c| usize::from(c) + 1));
        let mut start = 0;
        for cut in cuts {
            h.peer_send(&wire[start..cut]);
            start = cut;
        }
        let echoed = written_frames(&mut h)
            .iter()
            .filter(|(b0, _)| b0 & 0x0f != PONG)
            .count();
        messages(&mut h) == expect && h.closed().is_none() && echoed == script.messages.len()
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Script, Vec<usize>, Option<u8>) -> bool);
}

#[test]
fn prop_raw_frames_concatenate_to_the_messages() {
    fn prop(script: Script) -> bool {
        let (wire, expect) = script.encode();
        let mut config = WsConfig::default();
        config.set_raw_frames(true);
        let mut h = open(config);
        h.peer_send(&wire);
        let mut got = Vec::new();
        let mut current = Vec::new();
        for msg in messages(&mut h) {
            match msg {
                Message::Frame(f) => {
                    current.extend_from_slice(&f.payload);
                    if f.fin {
                        got.push(std::mem::take(&mut current));
                    }
                }
                Message::Ping(_) => {}
                _ => return false,
            }
        }
        let want: Vec<Vec<u8>> = expect
            .into_iter()
            .filter_map(|m| match m {
                Message::Text(t) => Some(t.as_bytes().to_vec()),
                Message::Binary(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect();
        got == want
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(prop as fn(Script) -> bool);
}
