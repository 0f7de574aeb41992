//! Client for the `protocol` example: sends `--messages` length-prefixed frames of
//! pseudo-random sizes and contents, reads the echoed frames and checks each one. Exits with
//! status 1 on a mismatch, 2 on an I/O error.
//!
//! `cargo run --release --example protocol-client -- --addr 127.0.0.1:1833 --messages 1000`

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Sends frames to the `protocol` example and verifies the echoes.
#[derive(Parser)]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:1833")]
    addr: SocketAddr,
    /// Frames to send.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Largest payload, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_size: usize,
    /// Seed of the payload generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(None) => {
            println!("ok: {} frames echoed intact", args.messages);
            ExitCode::SUCCESS
        }
        Ok(Some(index)) => {
            eprintln!("mismatch in reply {index}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("i/o error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Returns the index of the first wrong reply, if any.
fn run(args: &Args) -> io::Result<Option<usize>> {
    let stream = TcpStream::connect(args.addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let (messages, max_size, seed) = (args.messages, args.max_size, args.seed);
    // Writing and reading at once: the server stops reading while we do not read.
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let mut rng = Rng(seed);
        let mut out = io::BufWriter::new(&mut writer);
        for _ in 0..messages {
            let payload = rng.payload(max_size);
            out.write_all(
                &u32::try_from(payload.len())
                    .map_err(io::Error::other)?
                    .to_be_bytes(),
            )?;
            out.write_all(&payload)?;
        }
        out.flush()
    });
    let mut rng = Rng(seed);
    let mut reader = BufReader::new(stream);
    let mut first_bad = None;
    for index in 0..messages {
        let expected = rng.payload(max_size);
        let mut len = [0; 4];
        reader.read_exact(&mut len)?;
        let mut got = vec![0; u32::from_be_bytes(len) as usize];
        reader.read_exact(&mut got)?;
        if got != expected && first_bad.is_none() {
            first_bad = Some(index);
        }
    }
    sender
        .join()
        .map_err(|_| io::Error::other("sender panicked"))??;
    Ok(first_bad)
}

/// xorshift64: deterministic payloads, so the reader can regenerate what was sent.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn payload(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() % (max as u64 + 1)) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}
