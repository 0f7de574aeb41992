//! The `protobuf-client` logic, also run by `tests/protobuf.rs`: open `conns` connections,
//! send `count` random `msg1` / `msg2` frames on each, and check every reply byte for byte
//! and field by field.
//!
//! Requests are framed with gale's encoder ([`Registry::encode`] +
//! [`GevProtobuf::encode_frame`]); the expected replies are built independently with
//! [`pack_message`], a line-for-line port of gev's `protobuf.PackMessage`, and the received
//! frames are also decoded with gale's decoder. Each connection writes from one thread and
//! reads on another (a server stops reading from a client that does not read its replies),
//! regenerating the same random sequence from its seed to know what to expect.

use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use bytes::BytesMut;
use gale_core::codec::Decoder;
use gale_core::protobuf::example::{Msg1, Msg2};
use gale_core::protobuf::{GevProtobuf, Registry, TypedFrame};
use prost::Message;

use super::{GevMessage, RESPONSE, registry, reply};

/// What [`run`] does.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server.
    pub addr: SocketAddr,
    /// Connections, each on its own threads.
    pub conns: usize,
    /// Messages per connection.
    pub count: usize,
    /// Seed of the message generator (connection `i` uses a seed derived from it and `i`).
    pub seed: u64,
    /// Longest generated `name` / `alias`, in characters (up to 4 UTF-8 bytes each).
    pub max_name_chars: usize,
    /// Read and write timeout of every socket.
    pub timeout: Duration,
}

impl ClientConfig {
    /// One connection, 1000 messages, seed 1, names up to 200 characters (so payloads are
    /// both under and over gale's 256-byte inline-copy threshold), 30 s timeouts.
    #[must_use]
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            conns: 1,
            count: 1000,
            seed: 1,
            max_name_chars: 200,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What a successful [`run`] sent and received.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClientReport {
    /// `msg1` frames sent (and answered).
    pub msg1: u64,
    /// `msg2` frames sent (and answered).
    pub msg2: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes of verified replies.
    pub bytes_received: u64,
}

impl ClientReport {
    /// Messages sent and answered.
    #[must_use]
    pub fn messages(&self) -> u64 {
        self.msg1 + self.msg2
    }

    fn add(&mut self, other: &Self) {
        self.msg1 += other.msg1;
        self.msg2 += other.msg2;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
    }
}

/// Why [`run`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A socket operation failed.
    #[error("connection {conn}: {source}")]
    Io {
        /// The connection's index.
        conn: usize,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A reply was not what the server owed (`index == count`: bytes after the last reply).
    #[error("connection {conn}, reply {index}: expected {expected}, got {got}")]
    Mismatch {
        /// The connection's index.
        conn: usize,
        /// The reply's index on its connection.
        index: usize,
        /// What was expected.
        expected: String,
        /// What arrived.
        got: String,
    },
}

/// Runs the client: every connection sends its messages, then shuts down its write side and
/// checks the replies, then that the server closes with nothing more. Returns the totals, or
/// the first failure (lowest connection index).
///
/// # Errors
///
/// [`ClientError::Io`] on a socket error or timeout, [`ClientError::Mismatch`] on a wrong,
/// missing or extra reply.
pub fn run(config: &ClientConfig) -> Result<ClientReport, ClientError> {
    let results: Vec<_> = thread::scope(|s| {
        let workers: Vec<_> = (0..config.conns)
            .map(|conn| s.spawn(move || run_conn(config, conn)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("client threads do not panic"))
            .collect()
    });
    let mut total = ClientReport::default();
    for result in results {
        total.add(&result?);
    }
    Ok(total)
}

/// A random `msg1` or `msg2`: any `i32` id (negative ones are 10-byte varints), names of up
/// to `max_name_chars` characters mixing ASCII, 2-, 3- and 4-byte UTF-8 and control
/// characters.
pub fn random_message(rng: &mut Rng, max_name_chars: usize) -> GevMessage {
    let id = rng.next_u64() as i32;
    let name = rng.string(max_name_chars);
    if rng.next_u64() & 1 == 0 {
        GevMessage::Msg1(Msg1 { name, id })
    } else {
        let alias = rng.string(max_name_chars);
        GevMessage::Msg2(Msg2 { name, alias, id })
    }
}

/// What gev's `protobuf.PackMessage(msgType, data)` returns, byte for byte: `u32` BE
/// length of what follows, `u16` BE type-name length, the type name, the payload.
#[must_use]
pub fn pack_message(msg_type: &str, data: &[u8]) -> Vec<u8> {
    let type_len = msg_type.len();
    let length = data.len() + type_len + 2;
    let mut ret = vec![0; length + 4];
    ret[..4].copy_from_slice(&(length as u32).to_be_bytes());
    ret[4..6].copy_from_slice(&(type_len as u16).to_be_bytes());
    ret[6..6 + type_len].copy_from_slice(msg_type.as_bytes());
    ret[6 + type_len..].copy_from_slice(data);
    ret
}

/// xorshift64*: deterministic, so a connection's reader regenerates what its writer sent.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator; any seed works (0 included).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed: never 0, and nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A string of 0 to `max_chars` characters from [`ALPHABET`].
    pub fn string(&mut self, max_chars: usize) -> String {
        let len = (self.next_u64() % (max_chars as u64 + 1)) as usize;
        (0..len)
            .map(|_| ALPHABET[(self.next_u64() % ALPHABET.len() as u64) as usize])
            .collect()
    }
}

/// One connection: a writer thread sends, this thread checks the replies.
fn run_conn(config: &ClientConfig, conn: usize) -> Result<ClientReport, ClientError> {
    let io_err = |source| ClientError::Io { conn, source };
    let stream = TcpStream::connect(config.addr).map_err(io_err)?;
    stream
        .set_read_timeout(Some(config.timeout))
        .map_err(io_err)?;
    stream
        .set_write_timeout(Some(config.timeout))
        .map_err(io_err)?;
    let writer = stream.try_clone().map_err(io_err)?;
    let seed = config.seed ^ (conn as u64).wrapping_mul(0x0100_0000_01b3);
    let (count, max) = (config.count, config.max_name_chars);
    let sender = thread::spawn(move || send_all(&writer, seed, count, max));
    let received = receive_all(&stream, seed, count, max, conn);
    if received.is_err() {
        // Unblock a writer stuck on a server that stopped reading.
        let _ = stream.shutdown(Shutdown::Both);
    }
    let sent = sender
        .join()
        .map_err(|_| io_err(io::Error::other("sender panicked")))?;
    let bytes_received = received?;
    let mut report = sent.map_err(io_err)?;
    report.bytes_received = bytes_received;
    Ok(report)
}

/// Sends `count` messages framed by gale's encoder, then shuts down the write side.
fn send_all(stream: &TcpStream, seed: u64, count: usize, max: usize) -> io::Result<ClientReport> {
    let registry = registry();
    let codec = GevProtobuf::new();
    let mut rng = Rng::new(seed);
    let mut report = ClientReport::default();
    let mut frame = BytesMut::new();
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    for _ in 0..count {
        let msg = random_message(&mut rng, max);
        match &msg {
            GevMessage::Msg1(_) => report.msg1 += 1,
            GevMessage::Msg2(_) => report.msg2 += 1,
            GevMessage::Response(_) => {}
        }
        frame.clear();
        codec
            .encode_frame(&encode(&registry, &msg)?, &mut frame)
            .map_err(io::Error::other)?;
        out.write_all(&frame)?;
        report.bytes_sent += frame.len() as u64;
    }
    out.flush()?;
    stream.shutdown(Shutdown::Write)?;
    Ok(report)
}

/// Reads and checks `count` replies, then expects the server to close. Returns the bytes
/// received.
fn receive_all(
    stream: &TcpStream,
    seed: u64,
    count: usize,
    max: usize,
    conn: usize,
) -> Result<u64, ClientError> {
    let registry = registry();
    let mut rng = Rng::new(seed);
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut received = 0;
    for index in 0..count {
        let request = random_message(&mut rng, max);
        // invariant: `random_message` makes only msg1 / msg2, which always have a reply.
        let expected = reply(&request).expect("requests have replies");
        let want = pack_message(RESPONSE, &expected.encode_to_vec());
        let mismatch = |got: String| ClientError::Mismatch {
            conn,
            index,
            expected: format!("{expected:?} ({} bytes) for {request:?}", want.len()),
            got,
        };
        let mut got = vec![0; want.len()];
        match reader.read_exact(&mut got[..4]) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(mismatch("the end of the stream".into()));
            }
            Err(source) => return Err(ClientError::Io { conn, source }),
        }
        let total = u32::from_be_bytes([got[0], got[1], got[2], got[3]]) as usize;
        if total + 4 != want.len() {
            return Err(mismatch(format!("a frame of {} bytes", total as u64 + 4)));
        }
        reader
            .read_exact(&mut got[4..])
            .map_err(|source| ClientError::Io { conn, source })?;
        // Byte for byte against gev's packing, then field by field through gale's decoder.
        if got != want {
            return Err(mismatch(describe(&registry, &got)));
        }
        if decode(&registry, &got) != Some(GevMessage::Response(expected.clone())) {
            return Err(mismatch(describe(&registry, &got)));
        }
        received += want.len() as u64;
    }
    // We shut down our side after the last request: the server answers, then closes.
    let mut extra = Vec::new();
    reader
        .read_to_end(&mut extra)
        .map_err(|source| ClientError::Io { conn, source })?;
    if !extra.is_empty() {
        return Err(ClientError::Mismatch {
            conn,
            index: count,
            expected: "the end of the stream".into(),
            got: format!("{} more bytes", extra.len()),
        });
    }
    Ok(received)
}

/// The frame for `msg`, named by the registry.
fn encode(registry: &Registry<GevMessage>, msg: &GevMessage) -> io::Result<TypedFrame> {
    match msg {
        GevMessage::Msg1(m) => registry.encode(m),
        GevMessage::Msg2(m) => registry.encode(m),
        GevMessage::Response(m) => registry.encode(m),
    }
    .map_err(io::Error::other)
}

/// One whole frame decoded by gale, if it is one.
fn decode(registry: &Registry<GevMessage>, frame: &[u8]) -> Option<GevMessage> {
    let mut src = BytesMut::from(frame);
    let frame = GevProtobuf::new().decode(&mut src).ok()??;
    registry.decode(frame).ok().filter(|_| src.is_empty())
}

/// A frame for an error message: decoded if possible, else its first bytes.
fn describe(registry: &Registry<GevMessage>, frame: &[u8]) -> String {
    match decode(registry, frame) {
        Some(msg) => format!("{msg:?} ({} bytes)", frame.len()),
        None => format!(
            "{} undecodable bytes starting {:02x?}",
            frame.len(),
            &frame[..frame.len().min(32)]
        ),
    }
}

/// The characters names are made of: ASCII (with space, `=` and control characters), and
/// 2-, 3- and 4-byte UTF-8.
pub const ALPHABET: &[char] = &[
    'a', 'b', 'c', 'x', 'y', 'z', 'A', 'Z', '0', '9', ' ', '=', '\n', '\0', 'é', 'ß', 'Ж', '中',
    '€', '🦀',
];
