//! What only this driver's own tests cover: Unix domain sockets. Everything else a driver
//! must do is in the cross-driver conformance suite (examples/tests/conformance.rs), which
//! runs against gale-mio, gale-tokio and gale-smol alike.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use bytes::Bytes;
use gale_core::codec::Lines;
use gale_core::{Context, Handler};
use gale_smol::gale_core;

struct Echo;

impl Handler for Echo {
    type Protocol = Lines;
    type State = ();
    fn protocol(&self) -> Lines {
        Lines::new()
    }
    fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
        let _ = cx.send(line);
    }
}

#[test]
fn echo_over_a_unix_socket_and_the_file_is_removed_on_stop() {
    let path = std::env::temp_dir().join(format!(
        "{}-{}.sock",
        env!("CARGO_PKG_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let server = gale_smol::Server::new(Echo)
        .bind_unix(&path)
        .unwrap()
        .start()
        .unwrap();
    assert_eq!(server.local_addr(), None);
    let mut c = UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"unix\n").unwrap();
    let mut buf = [0; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"unix\n");
    server.stop();
    assert!(!path.exists(), "the socket file is removed on stop");
}
