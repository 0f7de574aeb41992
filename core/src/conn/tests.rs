//! Scenario tests: one connection against a scripted peer on a virtual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quickcheck::{QuickCheck, TestResult};

use crate::codec::{Lines, Raw};
use crate::testing::Harness;
use crate::{
    CloseReason, ConnConfig, ConnHandle, Context, Handler, MailboxClosed, Protocol, ProtocolCx,
    ProtocolError, SendError, TimerError, t0,
};

/// Echoes lines; records callbacks; `quit` closes, `half` shuts down the write side,
/// `timer N` arms timer N after N ms, `flood N` sends N KiB.
#[derive(Default)]
struct Probe {
    log: Mutex<Vec<String>>,
}

impl Probe {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn push(&self, s: String) {
        self.log.lock().unwrap().push(s);
    }
}

impl Handler for Probe {
    type Protocol = Lines;
    type State = u32;

    fn protocol(&self) -> Lines {
        Lines::new()
    }

    fn on_connect(&self, _cx: &mut Context<'_, Self>) {
        self.push("connect".into());
    }

    fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
        *cx.state() += 1;
        let text = String::from_utf8_lossy(&line).into_owned();
        let mut words = text.split(' ');
        match (
            words.next(),
            words.next().and_then(|n| n.parse::<u64>().ok()),
        ) {
            (Some("quit"), _) => {
                let _ = cx.send(Bytes::from_static(b"bye"));
                cx.close();
            }
            (Some("half"), _) => {
                let _ = cx.send(Bytes::from_static(b"half"));
                cx.shutdown_write();
            }
            (Some("timer"), Some(ms)) => {
                cx.set_timer_after(ms, Duration::from_millis(ms)).unwrap();
            }
            (Some("cancel"), Some(id)) => {
                cx.cancel_timer(id);
            }
            (Some("flood"), Some(kib)) => {
                for _ in 0..kib {
                    let _ = cx.send(Bytes::from(vec![b'x'; 1023]));
                }
            }
            _ => {
                let _ = cx.send(line);
            }
        }
    }

    fn on_writable(&self, _cx: &mut Context<'_, Self>) {
        self.push("writable".into());
    }

    fn on_timer(&self, cx: &mut Context<'_, Self>, timer: u64) {
        self.push(format!("timer {timer}"));
        let _ = cx.send(Bytes::from(format!("timer {timer}")));
    }

    fn on_close(&self, cx: &mut Context<'_, Self>, reason: &CloseReason) {
        assert_eq!(cx.send(Bytes::from_static(b"late")), Err(SendError::Closed));
        self.push(format!("close {reason} after {}", cx.state()));
    }
}

fn harness(config: ConnConfig) -> (Arc<Probe>, Harness<Probe>) {
    let probe = Arc::new(Probe::default());
    let h = Harness::new(probe.clone(), config, t0());
    (probe, h)
}

#[test]
fn echo_in_pieces() {
    let (probe, mut h) = harness(ConnConfig::default());
    h.peer_send(b"hel");
    assert!(h.written().is_empty());
    h.peer_send(b"lo\r\nworld\n");
    assert_eq!(h.take_written(), b"hello\nworld\n"[..]);
    assert_eq!(probe.log(), ["connect"]);
    assert_eq!(*h.conn().state(), 2);
}

#[test]
fn close_flushes_queued_replies_first() {
    let (probe, mut h) = harness(ConnConfig::default());
    h.set_peer_window(Some(2));
    h.peer_send(b"one\nquit\nnever\n");
    // Reading stopped at `quit`; only 2 bytes went out so far.
    assert_eq!(h.written(), b"on");
    assert!(h.closed().is_none());
    h.set_peer_window(None);
    assert_eq!(h.take_written(), b"one\nbye\n"[..]);
    assert_eq!(h.closed(), Some(&CloseReason::Local));
    assert_eq!(probe.log(), ["connect", "close closed locally after 2"]);
}

#[test]
fn close_linger_bounds_flushing_to_a_peer_that_never_reads() {
    let mut config = ConnConfig::default();
    config.set_close_linger(Duration::from_secs(2));
    let (_, mut h) = harness(config);
    h.set_peer_window(Some(0));
    h.peer_send(b"quit\n");
    h.advance(Duration::from_millis(1999));
    assert!(h.closed().is_none());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(), Some(&CloseReason::Local));
}

#[test]
fn idle_timeout_counts_from_last_activity() {
    let mut config = ConnConfig::default();
    config.set_idle_timeout(Some(Duration::from_secs(10)));
    let (probe, mut h) = harness(config);
    h.advance(Duration::from_secs(6));
    h.peer_send(b"x\n");
    h.advance(Duration::from_secs(9));
    assert!(
        h.closed().is_none(),
        "activity at 6 s pushes the deadline to 16 s"
    );
    h.advance(Duration::from_millis(999));
    assert!(h.closed().is_none());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(), Some(&CloseReason::IdleTimeout));
    assert_eq!(probe.log().last().unwrap(), "close idle timeout after 1");
}

#[test]
fn peer_eof_delivers_buffered_message_and_replies_then_closes() {
    let (_, mut h) = harness(ConnConfig::default());
    h.set_peer_window(Some(0));
    h.peer_send(b"a\nlast-without-newline");
    h.peer_eof();
    assert!(h.closed().is_none(), "replies are still queued");
    h.set_peer_window(None);
    assert_eq!(h.take_written(), b"a\nlast-without-newline\n"[..]);
    assert_eq!(h.closed(), Some(&CloseReason::PeerClosed));
}

#[test]
fn shutdown_write_flushes_then_keeps_reading_until_eof() {
    let (probe, mut h) = harness(ConnConfig::default());
    h.peer_send(b"half\n");
    assert_eq!(h.take_written(), b"half\n"[..]);
    assert!(h.write_shut_down());
    assert!(h.conn().wants_read());
    h.peer_send(b"still\n");
    assert!(h.written().is_empty(), "nothing is written after shutdown");
    assert_eq!(*h.conn().state(), 2);
    h.peer_eof();
    assert_eq!(h.closed(), Some(&CloseReason::PeerClosed));
    assert_eq!(probe.log().len(), 2);
}

#[test]
fn backpressure_stops_reading_above_high_and_resumes_below_low() {
    let mut config = ConnConfig::default();
    config.set_watermarks(4 * 1024, 8 * 1024);
    let (probe, mut h) = harness(config);
    h.set_peer_window(Some(0));
    // Each line asks for 2 KiB of reply; the peer reads nothing.
    let mut input = Vec::new();
    for _ in 0..100 {
        input.extend_from_slice(b"flood 2\n");
    }
    h.peer_send(&input);
    let queued = h.conn().write_buffer_len();
    assert!(
        queued > 8 * 1024 && queued <= 8 * 1024 + 2 * 1024,
        "queued {queued}"
    );
    assert!(!h.conn().wants_read());
    assert!(!h.conn().is_writable());
    let handled = *h.conn().state();
    assert!(handled < 100, "decoding paused with input buffered");
    // The peer drains 6 KiB: the queue reaches the low watermark, on_writable fires and
    // decoding resumes until the high watermark is crossed again.
    h.set_peer_window(Some(queued - 4 * 1024));
    assert!(probe.log().contains(&"writable".to_string()));
    assert!(*h.conn().state() > handled);
    h.set_peer_window(None);
    assert_eq!(*h.conn().state(), 100);
    assert_eq!(h.take_written().len(), 100 * 2 * 1024);
    assert!(h.conn().wants_read());
}

#[test]
fn user_timers_fire_at_their_deadline_in_order_and_can_be_cancelled() {
    let (probe, mut h) = harness(ConnConfig::default());
    h.peer_send(b"timer 30\ntimer 10\ntimer 20\ncancel 20\n");
    h.advance(Duration::from_millis(9));
    assert_eq!(probe.log(), ["connect"]);
    h.advance(Duration::from_millis(1));
    assert_eq!(probe.log(), ["connect", "timer 10"]);
    h.advance(Duration::from_secs(1));
    assert_eq!(probe.log(), ["connect", "timer 10", "timer 30"]);
    assert_eq!(h.take_written(), b"timer 10\ntimer 30\n"[..]);
    assert_eq!(h.conn().poll_timeout(), None);
}

#[test]
fn timer_limit_is_enforced() {
    struct Many;
    impl Handler for Many {
        type Protocol = Raw;
        type State = Option<TimerError>;
        fn protocol(&self) -> Raw {
            Raw::new()
        }
        fn on_connect(&self, cx: &mut Context<'_, Self>) {
            for i in 0..3 {
                if let Err(e) = cx.set_timer_after(i, Duration::from_secs(1)) {
                    *cx.state() = Some(e);
                }
            }
        }
        fn on_message(&self, _: &mut Context<'_, Self>, _: Bytes) {}
    }
    let mut config = ConnConfig::default();
    config.set_max_user_timers(2);
    let mut h = Harness::new(Arc::new(Many), config, t0());
    assert_eq!(*h.conn().state(), Some(TimerError::TooMany { limit: 2 }));
}

#[test]
fn handle_commands_apply_in_order_and_fail_after_close() {
    let (_, mut h) = harness(ConnConfig::default());
    let handle: ConnHandle<Bytes> = h.handle();
    fn assert_send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
    assert_send_sync_clone(&handle);
    handle.send(Bytes::from_static(b"from afar")).unwrap();
    handle.close().unwrap();
    h.step();
    assert_eq!(h.take_written(), b"from afar\n"[..]);
    assert_eq!(h.closed(), Some(&CloseReason::Local));
    assert_eq!(handle.send(Bytes::from_static(b"x")), Err(MailboxClosed));
}

#[test]
fn send_buffer_limit_refuses_sends_and_closes_slow_consumers_of_handles() {
    let mut config = ConnConfig::default();
    config.set_max_send_buffer(4 * 1024);
    let (_, mut h) = harness(config);
    h.set_peer_window(Some(0));
    let handle = h.handle();
    for _ in 0..10 {
        handle.send(Bytes::from(vec![b'y'; 1024])).unwrap();
    }
    h.step();
    assert_eq!(h.closed(), Some(&CloseReason::SendBufferFull));
}

/// A protocol that never produces a message: only the connection-level limit stops it.
struct BlackHole;
impl Protocol for BlackHole {
    type Message = Bytes;
    type Outgoing = Bytes;
    fn decode(
        &mut self,
        _: &mut ProtocolCx<'_>,
        _: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        Ok(None)
    }
    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: Bytes) -> Result<(), ProtocolError> {
        cx.send(msg);
        Ok(())
    }
}
struct Sink;
impl Handler for Sink {
    type Protocol = BlackHole;
    type State = ();
    fn protocol(&self) -> BlackHole {
        BlackHole
    }
    fn on_message(&self, _: &mut Context<'_, Self>, _: Bytes) {}
}

#[test]
fn receive_buffer_limit_closes_protocols_that_never_yield() {
    let mut config = ConnConfig::default();
    config.set_max_recv_buffer(10_000);
    let mut h = Harness::new(Arc::new(Sink), config, t0());
    h.peer_send(&[0u8; 20_000]);
    assert_eq!(h.closed(), Some(&CloseReason::RecvBufferFull));
    assert!(h.conn().read_buffer_len() <= 10_000 + 4096);
}

#[test]
fn codec_error_closes_with_the_reason() {
    struct Strict;
    impl Handler for Strict {
        type Protocol = Lines;
        type State = ();
        fn protocol(&self) -> Lines {
            let mut lines = Lines::new();
            lines.set_max_length(8);
            lines
        }
        fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
            let _ = cx.send(line);
        }
    }
    let mut h = Harness::new(Arc::new(Strict), ConnConfig::default(), t0());
    h.peer_send(b"short\nthis line is far too long\n");
    assert_eq!(h.take_written(), b"short\n"[..]);
    assert!(
        matches!(h.closed(), Some(CloseReason::Protocol(_))),
        "{:?}",
        h.closed()
    );
}

#[test]
fn io_error_closes_at_once_and_drops_queued_bytes() {
    let (probe, mut h) = harness(ConnConfig::default());
    h.set_peer_window(Some(0));
    h.peer_send(b"pending\n");
    let now = h.now();
    h.conn()
        .handle_io_error(now, std::io::ErrorKind::ConnectionReset);
    h.step();
    assert_eq!(
        h.closed(),
        Some(&CloseReason::Io(std::io::ErrorKind::ConnectionReset))
    );
    assert_eq!(h.conn().write_buffer_len(), 0);
    assert_eq!(probe.log().len(), 2, "on_close exactly once");
}

#[test]
fn idle_connection_holds_no_buffer_memory() {
    let (_, mut h) = harness(ConnConfig::default());
    for _ in 0..10 {
        h.peer_send(b"some message\n");
    }
    assert_eq!(h.conn().recv_capacity(), 0);
    assert_eq!(h.conn().write_buffer_len(), 0);
}

/// Property (c): whenever more than the high watermark is queued, the connection does not
/// ask to read, and never queues more than high + one reply.
#[test]
fn prop_above_high_watermark_means_no_reading() {
    fn prop(replies_kib: Vec<u8>, window: u16) -> TestResult {
        let mut config = ConnConfig::default();
        config.set_watermarks(2 * 1024, 6 * 1024);
        let (_, mut h) = harness(config);
        h.set_peer_window(Some(window as usize));
        for kib in replies_kib {
            let kib = kib % 5;
            h.peer_send(format!("flood {kib}\n").as_bytes());
            let queued = h.conn().write_buffer_len();
            if queued > 6 * 1024 && h.conn().wants_read() {
                return TestResult::failed();
            }
            if queued > 6 * 1024 + 4 * 1024 {
                return TestResult::failed();
            }
        }
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(prop as fn(Vec<u8>, u16) -> TestResult);
}

/// Property (e): after any traffic is drained, receive capacity is back under a small bound.
#[test]
fn prop_receive_capacity_returns_after_draining() {
    fn prop(chunks: Vec<Vec<u8>>) -> bool {
        let (_, mut h) = harness(ConnConfig::default());
        for chunk in &chunks {
            h.peer_send(chunk);
        }
        h.peer_send(b"\n");
        h.conn().read_buffer_len() == 0 && h.conn().recv_capacity() <= 8 * 1024
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(prop as fn(Vec<Vec<u8>>) -> bool);
}

#[test]
fn pipelined_burst_against_a_non_reading_peer_stays_bounded_and_loses_nothing() {
    let mut config = ConnConfig::default();
    config.set_watermarks(4 * 1024, 8 * 1024);
    let (_, mut h) = harness(config);
    h.set_peer_window(Some(0));
    let burst = "flood 2\n".repeat(2000);
    h.peer_send(burst.as_bytes());
    assert!(h.unread() > 0, "the connection stopped reading");
    assert!(h.conn().write_buffer_len() <= 8 * 1024 + 2 * 1024);
    assert!(h.conn().read_buffer_len() <= 4 * 1024);
    h.set_peer_window(None);
    assert_eq!(h.unread(), 0);
    assert_eq!(*h.conn().state(), 2000);
    assert_eq!(h.take_written().len(), 2000 * 2 * 1024);
}

#[test]
fn abort_drops_queued_bytes_and_reports_the_reason_once() {
    let (probe, mut h) = harness(ConnConfig::default());
    h.set_peer_window(Some(0));
    h.peer_send(b"flood 4\n");
    let now = h.now();
    h.conn().handle_abort(now, CloseReason::Shutdown);
    h.step();
    assert_eq!(h.closed(), Some(&CloseReason::Shutdown));
    assert_eq!(h.conn().write_buffer_len(), 0);
    assert_eq!(probe.log(), ["connect", "close server shutdown after 1"]);
}

/// Lines where every line is owed an answer that arrives later through a handle; after EOF
/// it gives up on owed answers once `GIVE_UP` has passed.
#[derive(Default)]
struct Owing {
    lines: Lines,
    owed: usize,
    give_up_at: Option<std::time::Instant>,
}

impl Owing {
    const GIVE_UP: Duration = Duration::from_secs(5);
}

impl Protocol for Owing {
    type Message = Bytes;
    type Outgoing = Bytes;

    fn decode(
        &mut self,
        _: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        let line = crate::codec::Decoder::decode(&mut self.lines, src)?;
        self.owed += usize::from(line.is_some());
        Ok(line)
    }

    fn decode_eof(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        src: &mut BytesMut,
    ) -> Result<Option<Bytes>, ProtocolError> {
        if self.owed > 0 && self.give_up_at.is_none() {
            self.give_up_at = Some(cx.now() + Self::GIVE_UP);
        }
        match self.decode(cx, src)? {
            None if !src.is_empty() => Err(crate::codec::CodecError::Truncated {
                buffered: src.len(),
            }
            .into()),
            line => Ok(line),
        }
    }

    fn encode(&mut self, cx: &mut ProtocolCx<'_>, msg: Bytes) -> Result<(), ProtocolError> {
        self.owed = self
            .owed
            .checked_sub(1)
            .ok_or_else(|| ProtocolError::other("nothing is owed"))?;
        cx.send(msg);
        Ok(())
    }

    fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.give_up_at.filter(|_| self.owed > 0)
    }

    fn handle_timeout(
        &mut self,
        cx: &mut ProtocolCx<'_>,
        now: std::time::Instant,
    ) -> Result<(), ProtocolError> {
        if self.poll_timeout().is_some_and(|t| t <= now) {
            self.owed = 0;
            cx.close();
        }
        Ok(())
    }

    fn is_idle(&self) -> bool {
        self.owed == 0
    }
}

/// Answers nothing itself: the test answers through the connection's handle.
struct Later;

impl Handler for Later {
    type Protocol = Owing;
    type State = ();
    fn protocol(&self) -> Owing {
        Owing::default()
    }
    fn on_message(&self, _: &mut Context<'_, Self>, _: Bytes) {}
}

#[test]
fn eof_waits_for_replies_the_protocol_still_owes() {
    let mut h = Harness::new(Arc::new(Later), ConnConfig::default(), t0());
    h.peer_send(b"a\nb\n");
    h.peer_eof();
    assert!(h.closed().is_none(), "two answers are owed");
    assert!(!h.conn().wants_read());
    let handle = h.handle();
    handle.send(Bytes::from_static(b"A")).unwrap();
    h.step();
    assert_eq!(h.take_written(), b"A"[..]);
    assert!(h.closed().is_none(), "one answer is owed");
    handle.send(Bytes::from_static(b"B")).unwrap();
    h.step();
    assert_eq!(h.take_written(), b"B"[..]);
    assert_eq!(h.closed(), Some(&CloseReason::PeerClosed));
}

#[test]
fn an_idle_protocol_closes_at_eof_at_once() {
    let mut h = Harness::new(Arc::new(Later), ConnConfig::default(), t0());
    h.peer_send(b"a\n");
    h.handle().send(Bytes::from_static(b"A")).unwrap();
    h.step();
    h.peer_eof();
    assert_eq!(h.take_written(), b"A"[..]);
    assert_eq!(h.closed(), Some(&CloseReason::PeerClosed));
}

#[test]
fn owed_replies_are_waited_for_only_until_the_protocols_deadline() {
    let mut h = Harness::new(Arc::new(Later), ConnConfig::default(), t0());
    h.peer_send(b"a\n");
    h.peer_eof();
    h.advance(Owing::GIVE_UP - Duration::from_millis(1));
    assert!(h.closed().is_none());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closed(), Some(&CloseReason::Local));
    assert!(h.written().is_empty());
}

#[test]
fn a_partial_frame_at_eof_is_still_an_error_while_replies_are_owed() {
    let mut h = Harness::new(Arc::new(Later), ConnConfig::default(), t0());
    h.peer_send(b"a\nunterminated");
    h.peer_eof();
    assert!(
        matches!(h.closed(), Some(CloseReason::Protocol(_))),
        "{:?}",
        h.closed()
    );
}

/// Echoes raw bytes as they came: each reply is the received slice itself.
struct RawEcho;

impl Handler for RawEcho {
    type Protocol = Raw;
    type State = ();
    fn protocol(&self) -> Raw {
        Raw::new()
    }
    fn on_message(&self, cx: &mut Context<'_, Self>, data: Bytes) {
        let _ = cx.send(data);
    }
}

/// Every open connection costs a `Connection`: the mio driver's budget for an idle
/// connection (256 bytes, everything included) leaves it about 220. Grow it only knowingly.
#[test]
fn an_idle_raw_connection_stays_small() {
    let size = size_of::<crate::Connection<RawEcho>>();
    assert!(size <= 224, "Connection<RawEcho> is {size} bytes");
    assert_eq!(size_of::<crate::buf::SendQueue>(), 40);
}

/// Lines, echoed and kept.
#[derive(Default)]
struct Keep {
    kept: Mutex<Vec<Bytes>>,
}

impl Handler for Keep {
    type Protocol = Lines;
    type State = ();
    fn protocol(&self) -> Lines {
        Lines::new()
    }
    fn on_message(&self, cx: &mut Context<'_, Self>, line: Bytes) {
        self.kept.lock().unwrap().push(line.clone());
        let _ = cx.send(line);
    }
}

#[test]
fn shared_reads_are_decoded_in_place_and_only_a_partial_frame_is_copied() {
    let keep = Arc::new(Keep::default());
    let mut conn = crate::Connection::new(
        keep.clone(),
        ConnConfig::default(),
        crate::PeerAddr::Unknown,
        t0(),
    );
    conn.handle_connect(t0());
    let mut shared = BytesMut::zeroed(64);
    let start = shared.as_ptr() as usize;
    let inside = |b: &[u8]| (start..start + 64).contains(&(b.as_ptr() as usize));
    shared[..10].copy_from_slice(b"abc\ndef\ngh");
    conn.handle_bytes(t0(), shared.split_to(10));
    {
        let kept = keep.kept.lock().unwrap();
        assert_eq!(kept.len(), 2);
        assert!(
            kept.iter().all(|m| inside(m)),
            "messages share the read buffer"
        );
    }
    let left = conn.core.recv.bytes_mut();
    assert_eq!(&left[..], b"gh");
    assert!(
        !inside(left),
        "the partial line was copied out of the shared buffer"
    );

    shared[..2].copy_from_slice(b"i\n");
    conn.handle_bytes(t0(), shared.split_to(2));
    let kept = keep.kept.lock().unwrap();
    assert_eq!(&kept[2][..], b"ghi");
    assert_eq!(
        conn.recv_capacity(),
        0,
        "nothing buffered: no receive memory"
    );
    let mut iov = [std::io::IoSlice::new(&[]); 8];
    let n = conn.poll_transmit(&mut iov);
    let out: Vec<u8> = iov[..n].iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(out, b"abc\ndef\nghi\n");
}

/// Shared reads of any size, split anywhere, echo exactly what unshared reads echo, and
/// leave no receive memory behind; also when the peer reads slowly (a window of `window`
/// bytes per piece sent), so queued replies are detached from the shared buffer mid-way.
#[test]
fn prop_shared_reads_echo_the_same_bytes() {
    fn prop(lines: Vec<Vec<u8>>, pieces: Vec<u8>, chunk: u8, window: Option<u8>) -> bool {
        let mut input = Vec::new();
        for line in &lines {
            input.push(b'x');
            input.extend(line.iter().map(|b| b"xyz"[usize::from(b % 3)]));
            input.push(b'\n');
        }
        let (_, mut h) = harness(ConnConfig::default());
        h.set_shared_reads(Some(usize::from(chunk) + 1));
        let mut rest = &input[..];
        let mut sizes = pieces.iter().map(|p| usize::from(*p) + 1).cycle();
        while !rest.is_empty() {
            if let Some(w) = window {
                h.set_peer_window(Some(usize::from(w)));
            }
            let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
            h.peer_send(&rest[..n]);
            rest = &rest[n..];
        }
        h.set_peer_window(None);
        h.take_written() == input && h.conn().recv_capacity() == 0
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Vec<Vec<u8>>, Vec<u8>, u8, Option<u8>) -> bool);
}

/// A peer that stops reading holds only what is queued for it: once a write would block,
/// replies sliced from the shared read buffer are copied out, so that buffer is freed.
#[test]
fn a_peer_that_stops_reading_does_not_pin_the_shared_read_buffer() {
    let run = |blocked: bool| {
        let mut conn = crate::Connection::new(
            Arc::new(RawEcho),
            ConnConfig::default(),
            crate::PeerAddr::Unknown,
            t0(),
        );
        conn.handle_connect(t0());
        let mut shared = BytesMut::zeroed(1024);
        shared[..8].copy_from_slice(b"one two ");
        conn.handle_bytes(t0(), shared.split_to(8));
        if blocked {
            conn.handle_write_blocked();
        }
        shared[..5].copy_from_slice(b"three");
        conn.handle_bytes(t0(), shared.split_to(5));
        let mut iov = [std::io::IoSlice::new(&[]); 16];
        let n = conn.poll_transmit(&mut iov);
        let out: Vec<u8> = iov[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(out, b"one two three");
        shared.freeze().is_unique()
    };
    assert!(
        !run(false),
        "written at once: replies are slices, not copies"
    );
    assert!(
        run(true),
        "blocked: nothing queued refers to the read buffer"
    );
}
