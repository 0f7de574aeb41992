//! A WebSocket echo server (RFC 6455): every text and binary message comes back unchanged;
//! pings are answered and closes echoed by gale-core's `ws` protocol. This is the server the
//! Autobahn|Testsuite runs against (`../shared/tools/autobahn/run.sh PORT`).
//!
//! `cargo run --release --example websocket -- --port 9001`, then for example
//! `websocat ws://127.0.0.1:9001/` (any path). With `--deflate` it accepts permessage-deflate
//! (`AUTOBAHN_DEFLATE=1` runs the suite's 12.x/13.x cases). A real browser engine checks the
//! same server setup in `tests/browser_deflate.rs` (headless Chromium; `apt-get install
//! chromium`), and `bench/run-deflate.sh` measures what deflate does to msgs/s, bytes on the
//! wire and memory per connection (`bench/DEFLATE.md`).

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use gale_core::ws::{Message, Outbound, UpgradeDecision, WebSocket, WsConfig};
use gale_core::{CloseReason, Context, Handler};
use gale_examples::CommonArgs;

/// WebSocket echo server.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Send a keepalive ping this often (seconds); 0: never.
    #[arg(long, default_value_t = 0)]
    ping_interval: u64,
    /// Largest message accepted, in bytes (larger ones are refused with close code 1009).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_message: usize,
    /// Accept only upgrades from this `Origin` (default: any).
    #[arg(long)]
    origin: Option<String>,
    /// Accept permessage-deflate (RFC 7692) offers.
    #[arg(long)]
    deflate: bool,
}

/// Echoes messages; the upgrade hook enforces `--origin` and picks the `echo` subprotocol
/// when offered.
struct WsEcho {
    config: Arc<WsConfig>,
}

impl Handler for WsEcho {
    type Protocol = WebSocket;
    type State = ();

    fn protocol(&self) -> WebSocket {
        WebSocket::new(self.config.clone())
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, msg: Message) {
        let echo = match msg {
            Message::Open(upgraded) => {
                tracing::debug!(peer = %cx.peer_addr(), path = upgraded.path(), "open");
                return;
            }
            Message::Text(text) => Outbound::Text(text),
            Message::Binary(data) => Outbound::Binary(data),
            _ => return, // pings and closes are handled by the protocol
        };
        if cx.send(echo).is_err() {
            cx.close(); // the peer does not read: drop it
        }
    }

    fn on_close(&self, cx: &mut Context<'_, Self>, reason: &CloseReason) {
        let ws = cx.protocol();
        tracing::debug!(
            %reason,
            sent = ?ws.sent_close_code(),
            received = ?ws.peer_close_code(),
            "closed"
        );
    }
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.common.init()?;
    let mut config = WsConfig::default();
    config
        .set_max_message_size(args.max_message)
        .set_ping_interval(Some(Duration::from_secs(args.ping_interval)));
    config.deflate_mut().set_enabled(args.deflate);
    let allowed = args.origin.clone();
    config.set_on_upgrade(move |req| {
        if let Some(allowed) = &allowed
            && req.origin() != Some(allowed.as_str())
        {
            return UpgradeDecision::reject(403, "origin not allowed");
        }
        match req.subprotocols().find(|p| *p == "echo") {
            Some(p) => UpgradeDecision::accept().with_subprotocol(p),
            None => UpgradeDecision::accept(),
        }
    });
    let handler = WsEcho {
        config: Arc::new(config),
    };
    args.common
        .run_until_ctrl_c(handler, args.common.server_config())
}
