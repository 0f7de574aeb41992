//! gev's example messages, for examples and tests: `Msg1`, `Msg2` and `Response` from gev's
//! `example/protobuf/proto/user.proto`, written by hand with prost's derive (no `protoc`).
//!
//! ```proto
//! syntax = "proto3";
//! package proto;
//!
//! message Msg1 {
//!     string name = 1;
//!     int32 id = 2;
//! }
//!
//! message Msg2 {
//!     string name = 1;
//!     string alias = 2;
//!     int32 id = 3;
//! }
//!
//! message Response {
//!     string content = 1;
//! }
//! ```
//!
//! There is no generated code and so no regeneration command: the structs below are the
//! whole definition. If the `.proto` changes, edit them by hand, keeping each field's tag and
//! type (`string` → `String` with `#[prost(string)]`, `int32` → `i32` with `#[prost(int32)]`);
//! the test at the bottom pins their encoding to what Go's `proto.Marshal` writes.
//!
//! gev's example client frames them with `protobuf.PackMessage("msg1", data)` and
//! `PackMessage("msg2", data)`: the names on the wire are [`MSG1`] and [`MSG2`], not the full
//! protobuf names (`proto.Msg1`). [`registry`] registers both under gev's names.

use super::Registry;

/// The type name gev's example uses for [`Msg1`].
pub const MSG1: &str = "msg1";
/// The type name gev's example uses for [`Msg2`].
pub const MSG2: &str = "msg2";

/// `message Msg1 { string name = 1; int32 id = 2; }`
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Msg1 {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Field 2.
    #[prost(int32, tag = "2")]
    pub id: i32,
}

/// `message Msg2 { string name = 1; string alias = 2; int32 id = 3; }`
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Msg2 {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub alias: String,
    /// Field 3.
    #[prost(int32, tag = "3")]
    pub id: i32,
}

/// `message Response { string content = 1; }`
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Response {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub content: String,
}

/// A registry with [`Msg1`] and [`Msg2`] under gev's names, each wrapped into `M` by `From`:
/// `registry::<AnyMessage>()`, or an enum of your own with `From<Msg1>` and `From<Msg2>`.
///
/// ```
/// use gale_core::protobuf::{example, AnyMessage};
///
/// let registry = example::registry::<AnyMessage>();
/// assert_eq!(registry.name_of::<example::Msg2>(), Some("msg2"));
/// ```
#[must_use]
pub fn registry<M>() -> Registry<M>
where
    M: From<Msg1> + From<Msg2> + 'static,
{
    let mut registry = Registry::new();
    registry
        .register::<Msg1>(MSG1, M::from)
        .register::<Msg2>(MSG2, M::from);
    registry
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::{Msg1, Msg2, Response};

    #[test]
    fn wire_forms_match_protoc_generated_code() {
        // What Go's proto.Marshal writes for the same values (fields in tag order, proto3
        // defaults omitted).
        let msg1 = Msg1 {
            name: "hello".into(),
            id: 1,
        };
        assert_eq!(msg1.encode_to_vec(), b"\x0a\x05hello\x10\x01");
        let msg2 = Msg2 {
            name: "hello".into(),
            alias: "big hello".into(),
            id: 2,
        };
        assert_eq!(
            msg2.encode_to_vec(),
            b"\x0a\x05hello\x12\x09big hello\x18\x02"
        );
        assert_eq!(
            Msg1 {
                id: -1,
                ..Default::default()
            }
            .encode_to_vec(),
            b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            "negative int32 is a 10-byte varint"
        );
        assert!(Response::default().encode_to_vec().is_empty());
        assert_eq!(Response::decode(&b"\x0a\x02ok"[..]).unwrap().content, "ok");
    }
}
