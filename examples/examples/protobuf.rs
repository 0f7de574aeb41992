//! gev's protobuf example (`example/protobuf`): gev's typed frames (`u32` BE length, `u16` BE
//! type-name length, type name, protobuf payload) carrying the messages of gev's
//! `example/protobuf/proto/user.proto`. Every `msg1` / `msg2` is logged, as gev's server
//! does, and answered with a `response`, so a client can check the round trip. Try it with
//! the `protobuf-client` example, or with gev's own Go client (`example/protobuf/client`).
//!
//! `cargo run --release --example protobuf -- --port 1833`
//!
//! # gev's proto and the Rust types
//!
//! gev generates Go code from `user.proto` with `protoc`. gale has no build step for it: the
//! three messages are written by hand with prost's derive in
//! [`gale_core::protobuf::example`], so there is nothing to regenerate (a change to the
//! proto is a change to those structs, field tag by field tag):
//!
//! ```text
//! user.proto (package proto)                 gale_core::protobuf::example   name on the wire
//! message Msg1 {                             struct Msg1 {
//!     string name = 1;                           #[prost(string, tag = "1")] name: String,
//!     int32 id = 2;                              #[prost(int32, tag = "2")]  id: i32,
//! }                                          }                              "msg1"
//! message Msg2 {                             struct Msg2 {
//!     string name = 1;                           #[prost(string, tag = "1")] name: String,
//!     string alias = 2;                          #[prost(string, tag = "2")] alias: String,
//!     int32 id = 3;                              #[prost(int32, tag = "3")]  id: i32,
//! }                                          }                              "msg2"
//! message Response {                         struct Response {
//!     string content = 1;                        #[prost(string, tag = "1")] content: String,
//! }                                          }                              "response"
//! ```
//!
//! The wire names are the strings gev's client passes to `protobuf.PackMessage("msg1",
//! data)`, not the full protobuf names; gev's example never sends a `Response`, so its name
//! is gale's choice. The handler, the registry and the reply format
//! (`msg1 id=7 name=ada`) are in `gale_examples::protobuf`. Per-message logs are at `info`;
//! `RUST_LOG=warn` silences them.

use clap::Parser;
use gale_examples::CommonArgs;
use gale_examples::protobuf::ProtobufServer;

/// gev protobuf server: logs and answers `msg1` / `msg2` frames.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.common.init()?;
    args.common
        .run_until_ctrl_c(ProtobufServer::new(), args.common.server_config())
}
