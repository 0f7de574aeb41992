//! Scenario tests: protobuf handlers on a connection against a scripted peer.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use prost::Message;

use super::example::{self, Msg1, Msg2, Response};
use super::fuzz::pack_message;
use super::{
    GevProtobuf, Outbound, ProtobufError, Registry, TypedFrame, TypedProtobuf, UnknownType,
    VarintProtobuf,
};
use crate::testing::Harness;
use crate::{CloseReason, ConnConfig, Context, Handler, ProtocolError, SendError, t0};

/// The handler's own message type.
#[derive(Debug, PartialEq)]
enum Gev {
    Msg1(Msg1),
    Msg2(Msg2),
    Unknown(TypedFrame),
}

impl From<Msg1> for Gev {
    fn from(m: Msg1) -> Self {
        Self::Msg1(m)
    }
}

impl From<Msg2> for Gev {
    fn from(m: Msg2) -> Self {
        Self::Msg2(m)
    }
}

/// Replies to `msg1` with `msg2`; records `msg2`s and unknown frames; answers an unknown
/// frame by trying to send an unregistered type.
struct Server {
    registry: Arc<Registry<Gev>>,
    log: Mutex<Vec<String>>,
}

impl Server {
    fn new(pass_through: bool) -> Arc<Self> {
        let mut registry = example::registry::<Gev>();
        if pass_through {
            registry.set_unknown(UnknownType::pass_through(Gev::Unknown));
        }
        Arc::new(Self {
            registry: Arc::new(registry),
            log: Mutex::new(Vec::new()),
        })
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Handler for Server {
    type Protocol = TypedProtobuf<Gev>;
    type State = ();

    fn protocol(&self) -> TypedProtobuf<Gev> {
        let mut codec = GevProtobuf::new();
        codec.set_max_frame_length(1024);
        TypedProtobuf::with_codec(self.registry.clone(), codec)
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Gev) {
        let mut log = self.log.lock().unwrap();
        match msg {
            Gev::Msg1(m) => {
                let reply = Msg2 {
                    alias: format!("big {}", m.name),
                    name: m.name,
                    id: m.id + 1,
                };
                cx.send(reply.into()).unwrap();
            }
            Gev::Msg2(m) => log.push(format!("msg2 {}", m.id)),
            Gev::Unknown(frame) => {
                log.push(format!("unknown {}", frame.name()));
                let err = cx.send(Response::default().into()).unwrap_err();
                log.push(err.to_string());
                cx.send(Outbound::from(frame)).unwrap(); // raw frames go out as they are
            }
        }
    }

    fn on_close(&self, _cx: &mut Context<'_, Self>, reason: &CloseReason) {
        self.log.lock().unwrap().push(format!("close: {reason}"));
    }
}

fn msg1_frame(name: &str, id: i32) -> Vec<u8> {
    let msg = Msg1 {
        name: name.into(),
        id,
    };
    pack_message("msg1", &msg.encode_to_vec())
}

#[test]
fn replies_to_msg1_with_msg2() {
    let server = Server::new(false);
    let mut h = Harness::new(server.clone(), ConnConfig::default(), t0());
    // Two frames, the second split mid-header.
    let mut input = msg1_frame("gale", 1);
    input.extend_from_slice(&msg1_frame("gev", 41));
    let (a, b) = input.split_at(input.len() - 12);
    h.peer_send(a);
    h.peer_send(b);
    let reply = |name: &str, id| {
        let msg = Msg2 {
            name: name.into(),
            alias: format!("big {name}"),
            id,
        };
        pack_message("msg2", &msg.encode_to_vec())
    };
    assert_eq!(
        h.take_written(),
        [reply("gale", 2), reply("gev", 42)].concat()
    );
    h.peer_send(&pack_message(
        "msg2",
        &Msg2 {
            id: 9,
            ..Default::default()
        }
        .encode_to_vec(),
    ));
    assert_eq!(server.log(), ["msg2 9"]);
    assert!(h.closed().is_none());
}

#[test]
fn unknown_type_closes_unless_passed_through() {
    let server = Server::new(false);
    let mut h = Harness::new(server.clone(), ConnConfig::default(), t0());
    h.peer_send(&pack_message("proto.Msg1", b""));
    let expected = ProtobufError::UnknownTypeName {
        type_name: "proto.Msg1".into(),
    };
    let reason = CloseReason::Protocol(ProtocolError::Protobuf(expected));
    assert_eq!(h.closed(), Some(&reason));
    assert_eq!(
        server.log(),
        [format!("close: {reason}")],
        "never delivered"
    );

    let server = Server::new(true);
    let mut h = Harness::new(server.clone(), ConnConfig::default(), t0());
    let frame = pack_message("proto.Msg1", b"\x10\x01");
    h.peer_send(&frame);
    assert_eq!(h.take_written(), frame, "the raw frame went back unchanged");
    let unregistered =
        SendError::Encode(ProtocolError::Protobuf(ProtobufError::UnregisteredType {
            rust_type: std::any::type_name::<Response>(),
        }));
    assert_eq!(
        server.log(),
        ["unknown proto.Msg1".to_string(), unregistered.to_string()]
    );
    assert!(h.closed().is_none());
}

#[test]
fn bad_frames_close_with_a_typed_error() {
    let cases: [(Vec<u8>, ProtobufError); 3] = [
        (
            b"\x00\x00\x04\x00".to_vec(),
            ProtobufError::FrameTooLong {
                len: 1028,
                max: 1024,
            },
        ),
        (
            pack_message("msg2", b"\x0a\x05ab"),
            ProtobufError::Decode {
                type_name: "msg2".into(),
                source: Msg2::decode(&b"\x0a\x05ab"[..]).unwrap_err(),
            },
        ),
        (
            b"\x00\x00\x00\x01".to_vec(),
            ProtobufError::FrameTooShort { len: 1 },
        ),
    ];
    for (input, error) in cases {
        let server = Server::new(true);
        let mut h = Harness::new(server.clone(), ConnConfig::default(), t0());
        h.peer_send(&input);
        let reason = CloseReason::Protocol(ProtocolError::Protobuf(error));
        assert_eq!(h.closed(), Some(&reason));
        assert_eq!(server.log(), [format!("close: {reason}")]);
    }
}

#[test]
fn eof_inside_a_frame_is_truncation() {
    let server = Server::new(false);
    let mut h = Harness::new(server, ConnConfig::default(), t0());
    let frame = msg1_frame("x", 1);
    h.peer_send(&frame[..frame.len() - 1]);
    h.peer_eof();
    let reason = ProtobufError::Truncated {
        buffered: frame.len() - 1,
    };
    assert_eq!(
        h.closed(),
        Some(&CloseReason::Protocol(ProtocolError::Protobuf(reason)))
    );
}

#[test]
fn receive_buffer_grows_to_the_announced_frame() {
    let server = Server::new(true);
    let mut h = Harness::new(server, ConnConfig::default(), t0());
    let frame = pack_message("blob", &[7; 900]);
    h.peer_send(&frame[..10]);
    assert!(h.conn().recv_capacity() >= frame.len());
    h.peer_send(&frame[10..]);
    assert_eq!(h.take_written(), frame);
}

/// Echoes varint-delimited `Msg2`s with the id bumped.
struct VarintEcho;

impl Handler for VarintEcho {
    type Protocol = VarintProtobuf<Msg2>;
    type State = ();

    fn protocol(&self) -> VarintProtobuf<Msg2> {
        VarintProtobuf::new()
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, mut msg: Msg2) {
        msg.id += 1;
        cx.send(msg).unwrap();
    }
}

#[test]
fn varint_protobuf_echoes_what_prost_writes() {
    let mut h = Harness::new(Arc::new(VarintEcho), ConnConfig::default(), t0());
    let msgs: Vec<Msg2> = (0..20)
        .map(|i| Msg2 {
            name: "x".repeat(i * 10),
            alias: String::new(),
            id: i as i32,
        })
        .collect();
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for msg in &msgs {
        msg.encode_length_delimited(&mut input).unwrap();
        let mut reply = msg.clone();
        reply.id += 1;
        reply.encode_length_delimited(&mut expected).unwrap();
    }
    for chunk in input.chunks(7) {
        h.peer_send(chunk);
    }
    assert_eq!(h.take_written(), expected);

    h.peer_send(b"\x02\x0a\x05");
    let Some(CloseReason::Protocol(ProtocolError::Protobuf(ProtobufError::Decode {
        type_name,
        ..
    }))) = h.closed()
    else {
        panic!("{:?}", h.closed());
    };
    assert!(type_name.ends_with("Msg2"), "{type_name}");
}

#[test]
fn large_payloads_are_queued_without_copying() {
    let mut protocol = TypedProtobuf::new(Arc::new(example::registry::<Gev>()));
    let payload = Bytes::from(vec![1; 1000]);
    let frame = TypedFrame::from_static("msg1", payload.clone());
    let mut queue = crate::buf::SendQueue::new();
    let mut close = false;
    let mut cx = crate::ProtocolCx::new(t0(), &mut queue, &mut close);
    crate::Protocol::encode(&mut protocol, &mut cx, frame.into()).unwrap();
    crate::Protocol::encode(&mut protocol, &mut cx, Msg1::default().into()).unwrap();
    let mut wire = BytesMut::new();
    let mut slices = [std::io::IoSlice::new(&[]); 8];
    let n = queue.io_slices(&mut slices);
    assert_eq!(
        n, 3,
        "header, shared payload, then a small frame in one chunk"
    );
    assert_eq!(slices[1].as_ptr(), payload.as_ptr());
    for s in &slices[..n] {
        wire.extend_from_slice(s);
    }
    let mut expected = pack_message("msg1", &payload);
    expected.extend_from_slice(&pack_message("msg1", b""));
    assert_eq!(wire, expected);
}
