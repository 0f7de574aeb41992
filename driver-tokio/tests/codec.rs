//! gale-core codecs through tokio-util's `Framed` (feature `codec`).
#![cfg(feature = "codec")]

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gale_core::codec::{CodecError, LengthDelimited, Lines};
use gale_tokio::codec::{Compat, CompatError};
use gale_tokio::gale_core;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Framed, FramedRead};

#[tokio::test]
async fn lines_through_framed() {
    let (a, b) = tokio::io::duplex(64);
    let mut a = Framed::new(a, Compat::new(Lines::new()));
    let mut b = Framed::new(b, Compat::new(Lines::new()));
    let sent: Vec<Bytes> = (0..100).map(|i| Bytes::from(format!("line {i}"))).collect();
    let writer = tokio::spawn(async move {
        for line in sent {
            a.send(line).await.unwrap();
        }
        a
    });
    for i in 0..100 {
        assert_eq!(b.next().await.unwrap().unwrap(), format!("line {i}"));
    }
    // EOF after an unterminated line yields it (Lines' decode_eof), then the end.
    let mut a = writer.await.unwrap().into_inner();
    a.write_all(b"tail").await.unwrap();
    drop(a);
    assert_eq!(b.next().await.unwrap().unwrap(), "tail");
    assert!(b.next().await.is_none());
}

#[tokio::test]
async fn length_delimited_through_framed_with_limits() {
    let (a, b) = tokio::io::duplex(1024);
    let mut a = Framed::new(a, Compat::new(LengthDelimited::new()));
    let mut b = Framed::new(b, Compat::new(LengthDelimited::new()));
    let big = Bytes::from(vec![9u8; 300_000]);
    let expect = big.clone();
    let writer = tokio::spawn(async move {
        a.send(Bytes::from_static(b"small")).await.unwrap();
        a.send(big).await.unwrap();
        a.send(&b""[..]).await.unwrap();
    });
    assert_eq!(b.next().await.unwrap().unwrap(), "small");
    assert_eq!(b.next().await.unwrap().unwrap(), expect);
    assert_eq!(b.next().await.unwrap().unwrap(), "");
    writer.await.unwrap();

    // A declared length over the maximum is the codec's typed error.
    let small = LengthDelimited::builder()
        .max_frame_length(16)
        .build()
        .unwrap();
    let mut reader = FramedRead::new(&b"\x00\x00\x00\x20rest"[..], Compat::new(small));
    match reader.next().await {
        Some(Err(CompatError::Codec(CodecError::FrameTooLong { max: 16, .. }))) => {}
        other => panic!("expected FrameTooLong, got {other:?}"),
    }

    // The stream ending inside a frame is reported as truncation.
    let mut reader = FramedRead::new(
        &b"\x00\x00\x00\x05abc"[..],
        Compat::new(LengthDelimited::new()),
    );
    match reader.next().await {
        Some(Err(CompatError::Codec(CodecError::Truncated { buffered: 7 }))) => {}
        other => panic!("expected Truncated, got {other:?}"),
    }
}
