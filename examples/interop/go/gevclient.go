// Command gevclient speaks gev's protobuf plugin (github.com/Allenxuxu/gev, plugins/protobuf,
// MIT licensed) from Go, to check that gale and gev interoperate both ways:
//
//	gevclient -addr 127.0.0.1:1833 [-n 1000] [-conns 1] [-seed 1] [-max-name 200]
//	    sends edge-case and random msg1 / msg2 frames packed as gev's PackMessage packs
//	    them, reads the replies as gev's Protocol.UnPacket reads them, and checks each one,
//	    byte for byte and field by field, against the `response` gale's `protobuf` example
//	    owes (gale_examples::protobuf::reply). Exit status 1 on a wrong, missing or extra
//	    reply, 2 on an I/O error or timeout.
//
//	gevclient -serve PORT
//	    a gev-style server on 127.0.0.1:PORT (0: any free port) that answers every msg1 /
//	    msg2 with the same `response`, so gale's own client (`protobuf-client`) can check
//	    gale's encoder and decoder against it. Prints "listening on ADDR" once it accepts
//	    connections, and exits when its standard input ends.
//
// The messages are gev's example/protobuf/proto/user.proto, encoded and decoded with
// google.golang.org/protobuf's protowire (the wire layer of Go's protobuf runtime), so no
// protoc and no generated code are needed:
//
//	message Msg1 { string name = 1; int32 id = 2; }                    // "msg1"
//	message Msg2 { string name = 1; string alias = 2; int32 id = 3; }  // "msg2"
//	message Response { string content = 1; }                          // "response"
//
// Replies: msg1 -> "msg1 id=<id> name=<name>", msg2 -> "msg2 id=<id> name=<name> alias=<alias>".
//
// Build offline against Debian's packages (golang-go, golang-google-protobuf-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode CGO_ENABLED=0 go build -o gevclient .
//
// examples/tests/go_interop.rs builds and runs it against gale.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1833", "client mode: the gale protobuf server")
	n := flag.Int("n", 1000, "client mode: random messages per connection (after the edge cases)")
	conns := flag.Int("conns", 1, "client mode: connections, run in parallel")
	seed := flag.Int64("seed", 1, "client mode: seed of the message generator")
	maxName := flag.Int("max-name", 200, "client mode: longest random name or alias, in characters")
	timeout := flag.Duration("timeout", 60*time.Second, "deadline of each connection")
	serve := flag.String("serve", "", "server mode: listen on 127.0.0.1:PORT instead")
	flag.Parse()

	if *serve != "" {
		if err := runServer(*serve, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "gevclient: server:", err)
			os.Exit(2)
		}
		return
	}
	sent, err := runClient(*addr, *conns, *n, *seed, *maxName, *timeout)
	var mismatch *mismatchError
	switch {
	case errors.As(err, &mismatch):
		fmt.Fprintln(os.Stderr, "gevclient: mismatch:", err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "gevclient: i/o error:", err)
		os.Exit(2)
	}
	fmt.Printf("ok: %d replies verified on %d connections\n", sent, *conns)
}

// packMessage frames data as gev's protobuf.PackMessage(msgType, data) does: a big-endian
// uint32 counting everything after it, a big-endian uint16 type-name length, the type name,
// the payload.
func packMessage(msgType string, data []byte) []byte {
	total := 2 + len(msgType) + len(data)
	frame := make([]byte, 4+total)
	binary.BigEndian.PutUint32(frame[0:4], uint32(total))
	binary.BigEndian.PutUint16(frame[4:6], uint16(len(msgType)))
	copy(frame[6:], msgType)
	copy(frame[6+len(msgType):], data)
	return frame
}

// maxFrame bounds what unPacket buffers (gev itself has no bound).
const maxFrame = 4 << 20

// unPacket takes one frame off the front of buf as gev's Protocol.UnPacket takes it off its
// ring buffer: nothing until more than 6 bytes are buffered and the whole frame (4 + the
// length field) has arrived; then the type name and a copy of the payload. n is the bytes
// consumed (0: wait for more). gev panics on a length field below 2 + the type-name length
// and buffers any length; this returns an error instead.
func unPacket(buf []byte) (msgType string, data []byte, n int, err error) {
	if len(buf) <= 6 {
		return "", nil, 0, nil
	}
	total := int(binary.BigEndian.Uint32(buf[0:4]))
	if total+4 > maxFrame {
		return "", nil, 0, fmt.Errorf("frame of %d bytes is over the %d-byte limit", total+4, maxFrame)
	}
	if len(buf) < total+4 {
		return "", nil, 0, nil
	}
	typeLen := int(binary.BigEndian.Uint16(buf[4:6]))
	if total < 2+typeLen {
		return "", nil, 0, fmt.Errorf("type name of %d bytes overruns a %d-byte frame", typeLen, total)
	}
	msgType = string(buf[6 : 6+typeLen])
	data = append([]byte(nil), buf[6+typeLen:4+total]...)
	return msgType, data, total + 4, nil
}

// frameReader reads frames from a stream with unPacket.
type frameReader struct {
	r       io.Reader
	buf     []byte
	start   int
	onBlock func() error // called before each read from r (the server flushes its replies)
}

// next returns the next frame's type, payload and wire bytes; io.EOF at a clean end of the
// stream, io.ErrUnexpectedEOF inside a frame.
func (f *frameReader) next() (msgType string, data, wire []byte, err error) {
	for {
		msgType, data, n, err := unPacket(f.buf[f.start:])
		if err != nil {
			return "", nil, nil, err
		}
		if n > 0 {
			wire = f.buf[f.start : f.start+n]
			f.start += n
			return msgType, data, wire, nil
		}
		if f.onBlock != nil {
			if err := f.onBlock(); err != nil {
				return "", nil, nil, err
			}
		}
		// Compact, then read at least 64 KiB more.
		f.buf = append(f.buf[:0], f.buf[f.start:]...)
		f.start = 0
		if cap(f.buf)-len(f.buf) < 64<<10 {
			f.buf = append(make([]byte, 0, 2*cap(f.buf)+64<<10), f.buf...)
		}
		m, err := f.r.Read(f.buf[len(f.buf):cap(f.buf)])
		f.buf = f.buf[:len(f.buf)+m]
		if m > 0 {
			continue
		}
		if err == io.EOF && len(f.buf) > 0 {
			return "", nil, nil, io.ErrUnexpectedEOF
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return "", nil, nil, err
	}
}

// message is a request of gev's example.
type message interface {
	typeName() string
	marshal() []byte
	reply() string
}

type msg1 struct {
	name string
	id   int32
}

type msg2 struct {
	name, alias string
	id          int32
}

func (m msg1) typeName() string { return "msg1" }
func (m msg2) typeName() string { return "msg2" }

// marshal writes what proto.Marshal writes for the generated types: fields in tag order,
// proto3 defaults left out.
func (m msg1) marshal() []byte {
	b := appendString(nil, 1, m.name)
	return appendInt32(b, 2, m.id)
}

func (m msg2) marshal() []byte {
	b := appendString(nil, 1, m.name)
	b = appendString(b, 2, m.alias)
	return appendInt32(b, 3, m.id)
}

// The replies of gale's protobuf example (gale_examples::protobuf::reply).
func (m msg1) reply() string { return fmt.Sprintf("msg1 id=%d name=%s", m.id, m.name) }
func (m msg2) reply() string {
	return fmt.Sprintf("msg2 id=%d name=%s alias=%s", m.id, m.name, m.alias)
}

// marshalResponse encodes Response{content}.
func marshalResponse(content string) []byte { return appendString(nil, 1, content) }

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendInt32(b []byte, num protowire.Number, v int32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	// Sign-extended, as proto.Marshal writes int32: a negative id takes 10 bytes.
	return protowire.AppendVarint(b, uint64(int64(v)))
}

// unmarshal decodes a message into the string and int32 fields named by their tags, as
// proto.Unmarshal does: the last occurrence wins, unknown fields (and known numbers with
// another wire type) are skipped, strings must be UTF-8.
func unmarshal(b []byte, strs map[protowire.Number]*string, ints map[protowire.Number]*int32) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case typ == protowire.BytesType && strs[num] != nil:
			s, m := protowire.ConsumeString(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if !utf8.ValidString(s) {
				return fmt.Errorf("field %d is not UTF-8", num)
			}
			*strs[num], n = s, m
		case typ == protowire.VarintType && ints[num] != nil:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			*ints[num], n = int32(v), m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
		}
		b = b[n:]
	}
	return nil
}

// decodeRequest decodes a msg1 or msg2 frame.
func decodeRequest(msgType string, data []byte) (message, error) {
	switch msgType {
	case "msg1":
		var m msg1
		err := unmarshal(data, map[protowire.Number]*string{1: &m.name}, map[protowire.Number]*int32{2: &m.id})
		return m, err
	case "msg2":
		var m msg2
		err := unmarshal(data, map[protowire.Number]*string{1: &m.name, 2: &m.alias}, map[protowire.Number]*int32{3: &m.id})
		return m, err
	default:
		return nil, fmt.Errorf("unknown message type %q", msgType)
	}
}

// ---- client ----

type mismatchError struct {
	conn, index int
	expected    string
	got         string
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("connection %d, reply %d: expected %s, got %s", e.conn, e.index, e.expected, e.got)
}

// runClient runs conns connections in parallel and returns the replies verified, or the
// first error (lowest connection index).
func runClient(addr string, conns, n int, seed int64, maxName int, timeout time.Duration) (int, error) {
	counts := make([]int, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			msgs := messages(rand.New(rand.NewSource(seed+int64(i))), n, maxName)
			counts[i], errs[i] = clientConn(addr, i, msgs, timeout)
		}(i)
	}
	wg.Wait()
	total := 0
	for i := range errs {
		if errs[i] != nil {
			return total, errs[i]
		}
		total += counts[i]
	}
	return total, nil
}

// messages returns the edge cases, then n random messages.
func messages(rng *rand.Rand, n, maxName int) []message {
	msgs := []message{
		msg1{},                  // empty payload: a 10-byte frame
		msg2{},                  // likewise
		msg1{id: -1},            // a 10-byte varint
		msg1{id: math.MinInt32}, // the smallest int32
		msg2{id: math.MaxInt32, name: "\x00", alias: "\n"},
		msg1{name: strings.Repeat("x", 300), id: 42},            // over gale's 256-byte inline copy
		msg2{name: strings.Repeat("\u4e2d", 40000), alias: "🦀"}, // a 120 KB name, many reads
	}
	for i := 0; i < n; i++ {
		id := int32(rng.Uint32())
		name := randomString(rng, maxName)
		if rng.Intn(2) == 0 {
			msgs = append(msgs, msg1{name: name, id: id})
		} else {
			msgs = append(msgs, msg2{name: name, alias: randomString(rng, maxName), id: id})
		}
	}
	return msgs
}

// alphabet mixes ASCII (space, '=' and control characters included) with 2-, 3- and 4-byte
// UTF-8.
var alphabet = []rune("abcxyzAZ09 =\n\x00éßЖ中€🦀")

func randomString(rng *rand.Rand, maxChars int) string {
	var sb strings.Builder
	for i, n := 0, rng.Intn(maxChars+1); i < n; i++ {
		sb.WriteRune(alphabet[rng.Intn(len(alphabet))])
	}
	return sb.String()
}

// clientConn sends msgs on one connection from one goroutine and checks the replies on
// another, then expects the server to close once it has answered everything.
func clientConn(addr string, conn int, msgs []message, timeout time.Duration) (int, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, fmt.Errorf("connection %d: %w", conn, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	sendErr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c, 64<<10)
		for _, m := range msgs {
			if _, err := w.Write(packMessage(m.typeName(), m.marshal())); err != nil {
				sendErr <- err
				return
			}
		}
		if err := w.Flush(); err != nil {
			sendErr <- err
			return
		}
		sendErr <- c.(*net.TCPConn).CloseWrite()
	}()
	verified, err := receive(c, conn, msgs)
	if err != nil {
		c.Close() // unblocks a sender stuck on a server that stopped reading
		<-sendErr
		return verified, err
	}
	if err := <-sendErr; err != nil {
		return verified, fmt.Errorf("connection %d: sending: %w", conn, err)
	}
	return verified, nil
}

func receive(c net.Conn, conn int, msgs []message) (int, error) {
	fr := &frameReader{r: c}
	for i, m := range msgs {
		want := m.reply()
		wantWire := packMessage("response", marshalResponse(want))
		mismatch := func(got string) error {
			return &mismatchError{conn, i, fmt.Sprintf("response %q for %s %q", want, m.typeName(), m.marshal()), got}
		}
		msgType, data, wire, err := fr.next()
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return i, mismatch("the end of the stream")
		case err != nil && isTimeout(err):
			return i, fmt.Errorf("connection %d, reply %d: %w", conn, i, err)
		case err != nil:
			return i, mismatch(err.Error())
		}
		if msgType != "response" {
			return i, mismatch(fmt.Sprintf("a %q frame (%d bytes)", msgType, len(wire)))
		}
		var content string
		if err := unmarshal(data, map[protowire.Number]*string{1: &content}, nil); err != nil {
			return i, mismatch(fmt.Sprintf("an undecodable response: %v", err))
		}
		if content != want {
			return i, mismatch(fmt.Sprintf("response %q", content))
		}
		if !bytes.Equal(wire, wantWire) {
			return i, mismatch(fmt.Sprintf("the same content in other bytes: % x", wire))
		}
	}
	_, _, wire, err := fr.next()
	switch {
	case err == io.EOF:
		return len(msgs), nil
	case err == io.ErrUnexpectedEOF:
		return len(msgs), &mismatchError{conn, len(msgs), "the end of the stream", "a partial frame"}
	case err != nil && isTimeout(err):
		return len(msgs), fmt.Errorf("connection %d: waiting for the close: %w", conn, err)
	case err != nil:
		return len(msgs), &mismatchError{conn, len(msgs), "the end of the stream", err.Error()}
	default:
		return len(msgs), &mismatchError{conn, len(msgs), "the end of the stream", fmt.Sprintf("another %d-byte frame", len(wire))}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ---- server ----

func runServer(port string, timeout time.Duration) error {
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("-serve wants a port number: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	// Whoever started the server stops it by closing our standard input.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveConn(c, timeout)
	}
}

// serveConn answers each msg1 / msg2 with its response, flushing whenever it runs out of
// buffered requests; closes after the client's end of stream, or on a bad frame.
func serveConn(c net.Conn, timeout time.Duration) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	w := bufio.NewWriterSize(c, 64<<10)
	fr := &frameReader{r: c, onBlock: w.Flush}
	for {
		msgType, data, _, err := fr.next()
		if err == io.EOF {
			_ = w.Flush()
			return
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gevclient: %s: %v; closing\n", c.RemoteAddr(), err)
			return
		}
		m, err := decodeRequest(msgType, data)
		if err != nil {
			_ = w.Flush()
			fmt.Fprintf(os.Stderr, "gevclient: %s: %v; closing\n", c.RemoteAddr(), err)
			return
		}
		if _, err := w.Write(packMessage("response", marshalResponse(m.reply()))); err != nil {
			return
		}
	}
}
