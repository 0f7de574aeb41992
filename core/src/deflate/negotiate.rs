//! Extension negotiation (RFC 7692 §5, §7.1): [`DeflateConfig::negotiate`] reads the
//! client's `Sec-WebSocket-Extensions` offers and agrees on [`DeflateParams`].
//!
//! ```text
//!   Sec-WebSocket-Extensions = 1#extension                      (RFC 6455 §9.1, any number
//!   extension = token *( OWS ";" OWS param )                     of fields; lists joined)
//!   param     = token [ OWS "=" OWS ( token / quoted-string ) ]  (a quoted value must
//!                                                                 unescape to a token)
//! ```

use std::fmt;

use super::{DeflateConfig, WindowBits};

/// The parameters agreed for one connection: how each side compresses. Its
/// [`Display`](fmt::Display) form is the `Sec-WebSocket-Extensions` value of the 101
/// response.
///
/// "Server" is this side: it compresses with `server_max_window_bits` and, with
/// `server_no_context_takeover`, starts every message with an empty window; the client
/// does the same under the `client_*` parameters, and this side inflates accordingly.
///
/// ```
/// use gale_core::deflate::{DeflateParams, WindowBits};
///
/// let params = DeflateParams::default()
///     .with_server_no_context_takeover(true)
///     .with_server_max_window_bits(WindowBits::new(10).unwrap());
/// assert_eq!(
///     params.to_string(),
///     "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: WindowBits,
    client_max_window_bits: WindowBits,
    /// The offer carried `server_max_window_bits`, so the response must (§7.1.2.1).
    announce_server_bits: bool,
}

impl Default for DeflateParams {
    /// `permessage-deflate` without parameters: context takeover both ways, 15-bit windows.
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: WindowBits::MAX,
            client_max_window_bits: WindowBits::MAX,
            announce_server_bits: false,
        }
    }
}

impl DeflateParams {
    /// Whether this side compresses every message with an empty window.
    pub fn server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// Whether the client compresses every message with an empty window.
    pub fn client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// The window this side compresses with.
    pub fn server_max_window_bits(&self) -> WindowBits {
        self.server_max_window_bits
    }

    /// The largest window the client compresses with (15 unless its offer said less).
    pub fn client_max_window_bits(&self) -> WindowBits {
        self.client_max_window_bits
    }

    /// With [`server_no_context_takeover`](Self::server_no_context_takeover) set to `on`.
    pub fn with_server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// With [`client_no_context_takeover`](Self::client_no_context_takeover) set to `on`.
    pub fn with_client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// With [`server_max_window_bits`](Self::server_max_window_bits) set to `bits`.
    pub fn with_server_max_window_bits(mut self, bits: WindowBits) -> Self {
        self.server_max_window_bits = bits;
        self
    }

    /// With [`client_max_window_bits`](Self::client_max_window_bits) set to `bits`.
    pub fn with_client_max_window_bits(mut self, bits: WindowBits) -> Self {
        self.client_max_window_bits = bits;
        self
    }

    /// The same agreement seen from the client: server and client parameters swapped, so a
    /// [`PerMessageDeflate`](super::PerMessageDeflate) built from it compresses what this
    /// side inflates and the other way round (for tests and fuzzing).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn mirrored(self) -> Self {
        Self {
            server_no_context_takeover: self.client_no_context_takeover,
            client_no_context_takeover: self.server_no_context_takeover,
            server_max_window_bits: self.client_max_window_bits,
            client_max_window_bits: self.server_max_window_bits,
            announce_server_bits: false,
        }
    }
}

impl fmt::Display for DeflateParams {
    /// The response's extension value. `client_max_window_bits` is never sent: zlib-rs
    /// allocates a 32 KiB inflate window whatever the size, so limiting the client would
    /// save nothing, and the client's own offer already bounds it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXTENSION)?;
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        if self.announce_server_bits || self.server_max_window_bits < WindowBits::MAX {
            write!(
                f,
                "; server_max_window_bits={}",
                self.server_max_window_bits
            )?;
        }
        Ok(())
    }
}

impl DeflateConfig {
    /// Picks the first acceptable `permessage-deflate` offer among the values of the
    /// request's `Sec-WebSocket-Extensions` fields (in arrival order), or `None`: disabled,
    /// not offered, or every offer declined. Never an error: an offer with an unknown,
    /// repeated or invalid parameter, or that does not parse, is declined (RFC 7692 §5.1)
    /// and the next one considered; other extensions are ignored.
    ///
    /// ```
    /// use gale_core::deflate::DeflateConfig;
    ///
    /// let mut config = DeflateConfig::default();
    /// config.set_enabled(true);
    /// let offers = [
    ///     &b"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=7"[..],
    ///     &b"permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits"[..],
    /// ];
    /// let params = config.negotiate(offers).expect("the second offer is fine");
    /// assert_eq!(params.server_max_window_bits().get(), 10);
    /// assert_eq!(params.to_string(), "permessage-deflate; server_max_window_bits=10");
    /// ```
    ///
    /// With core's HTTP types: `config.negotiate(head.headers().get_all("sec-websocket-extensions"))`.
    pub fn negotiate<'h, I>(&self, header_values: I) -> Option<DeflateParams>
    where
        I: IntoIterator<Item = &'h [u8]>,
    {
        if !self.is_enabled() {
            return None;
        }
        header_values.into_iter().find_map(|value| {
            let mut lexer = Lexer { s: value, i: 0 };
            std::iter::from_fn(|| lexer.next_offer())
                .flatten()
                .find_map(|offer| offer.accept(self))
        })
    }
}

/// What one `permessage-deflate` element asked for.
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<WindowBits>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<WindowBits>>,
    /// An unknown, repeated or invalid parameter: the offer must be declined.
    declined: bool,
}

impl Offer {
    fn param(&mut self, name: &[u8], value: Value<'_>) {
        let ok = if name.eq_ignore_ascii_case(b"server_no_context_takeover") {
            flag(&mut self.server_no_context_takeover, value)
        } else if name.eq_ignore_ascii_case(b"client_no_context_takeover") {
            flag(&mut self.client_no_context_takeover, value)
        } else if name.eq_ignore_ascii_case(b"server_max_window_bits") {
            // A value is required in an offer (§7.1.2.1).
            let bits = value.window_bits();
            let ok = self.server_max_window_bits.is_none() && matches!(bits, Some(Some(_)));
            self.server_max_window_bits = bits.flatten();
            ok
        } else if name.eq_ignore_ascii_case(b"client_max_window_bits") {
            // Valueless means "I can take a limit"; a value is a promise (§7.1.2.2).
            let ok = self.client_max_window_bits.is_none() && value.window_bits().is_some();
            self.client_max_window_bits = value.window_bits();
            ok
        } else {
            false
        };
        self.declined |= !ok;
    }

    /// The agreement for this offer, or `None` if it must be declined. Every valid offer
    /// is satisfiable: this server can always use a smaller window or drop its context.
    fn accept(self, config: &DeflateConfig) -> Option<DeflateParams> {
        if self.declined {
            return None;
        }
        let cap = config.server_max_window_bits();
        Some(DeflateParams {
            server_no_context_takeover: self.server_no_context_takeover
                || config.server_no_context_takeover(),
            client_no_context_takeover: self.client_no_context_takeover
                || config.client_no_context_takeover(),
            server_max_window_bits: self.server_max_window_bits.map_or(cap, |b| b.min(cap)),
            client_max_window_bits: self.client_max_window_bits.flatten().unwrap_or_default(),
            announce_server_bits: self.server_max_window_bits.is_some(),
        })
    }
}

/// A valueless flag parameter, not seen before.
fn flag(seen: &mut bool, value: Value<'_>) -> bool {
    let ok = !*seen && matches!(value, Value::Absent);
    *seen = true;
    ok
}

/// A parameter's value as written.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Absent,
    Token(&'a [u8]),
    /// Between the quotes, backslash escapes not yet removed.
    Quoted(&'a [u8]),
}

impl Value<'_> {
    /// `None`: invalid; `Some(None)`: no value; `Some(Some(bits))`: a decimal 8 to 15
    /// without leading zeros (§7.1.2.1), possibly quoted.
    fn window_bits(self) -> Option<Option<WindowBits>> {
        let mut digits = [0u8; 2];
        let mut n = 0;
        let mut push = |b: u8| {
            let slot = digits.get_mut(n)?;
            *slot = b;
            n += 1;
            Some(())
        };
        match self {
            Value::Absent => return Some(None),
            Value::Token(t) => t.iter().try_for_each(|&b| push(b))?,
            Value::Quoted(q) => unescape(q).try_for_each(push)?,
        }
        let bits = match digits.get(..n)? {
            [d @ b'8'..=b'9'] => d - b'0',
            [b'1', d @ b'0'..=b'5'] => 10 + d - b'0',
            _ => return None,
        };
        WindowBits::new(bits).map(Some)
    }
}

/// The bytes of a quoted-string's content with `\x` escapes replaced by `x`.
fn unescape(raw: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut escaped = false;
    raw.iter().filter_map(move |&b| {
        if !escaped && b == b'\\' {
            escaped = true;
            None
        } else {
            escaped = false;
            Some(b)
        }
    })
}

/// A cursor over one field value.
struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Lexer<'a> {
    /// The next list element: `Some(None)` for an element that is not permessage-deflate
    /// or does not parse (the cursor then skips past its comma), `None` at the end.
    fn next_offer(&mut self) -> Option<Option<Offer>> {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
        self.peek()?;
        let parsed = self.element();
        if parsed.is_none() {
            self.skip_element();
        }
        Some(parsed.flatten())
    }

    /// Parses an element up to (not including) its comma. Outer `None`: malformed.
    fn element(&mut self) -> Option<Option<Offer>> {
        let name = self.token()?;
        let mut offer = name
            .eq_ignore_ascii_case(EXTENSION.as_bytes())
            .then(Offer::default);
        loop {
            self.ows();
            match self.peek() {
                None | Some(b',') => return Some(offer),
                Some(b';') => self.i += 1,
                Some(_) => return None,
            }
            self.ows();
            let param = self.token()?;
            self.ows();
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                self.ows();
                if self.peek() == Some(b'"') {
                    let quoted = self.quoted()?;
                    // RFC 6455 §9.1: the unescaped value must be a token.
                    if quoted.is_empty() || !unescape(quoted).all(is_tchar) {
                        return None;
                    }
                    Value::Quoted(quoted)
                } else {
                    Value::Token(self.token()?)
                }
            } else {
                Value::Absent
            };
            if let Some(offer) = offer.as_mut() {
                offer.param(param, value);
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// `1*tchar`.
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    /// A quoted-string at the cursor (RFC 9110 §5.6.4); returns its raw content.
    fn quoted(&mut self) -> Option<&'a [u8]> {
        self.i += 1; // the opening quote
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => {
                    let content = &self.s[start..self.i];
                    self.i += 1;
                    return Some(content);
                }
                b'\\' => {
                    self.i += 1;
                    let escaped = self.peek()?;
                    if !(escaped == b'\t' || escaped >= b' ') || escaped == 0x7f {
                        return None;
                    }
                    self.i += 1;
                }
                b if b == b'\t' || (b >= b' ' && b != 0x7f) => self.i += 1,
                _ => return None,
            }
        }
    }

    /// Skips to just past the next comma outside a quoted string, or to the end.
    fn skip_element(&mut self) {
        let mut quoted = false;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'\\' if quoted => self.i += 1,
                b'"' => quoted = !quoted,
                b',' if !quoted => return,
                _ => {}
            }
        }
    }
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The extension's registered name (RFC 7692 §7).
const EXTENSION: &str = "permessage-deflate";

#[cfg(test)]
mod tests {
    use super::{DeflateConfig, DeflateParams, WindowBits};

    fn enabled() -> DeflateConfig {
        let mut c = DeflateConfig::default();
        c.set_enabled(true);
        c
    }

    /// The response value for these header values, or `None` when nothing was accepted.
    fn answer(config: &DeflateConfig, values: &[&str]) -> Option<String> {
        config
            .negotiate(values.iter().map(|v| v.as_bytes()))
            .map(|p| p.to_string())
    }

    fn one(value: &str) -> Option<String> {
        answer(&enabled(), &[value])
    }

    fn bits(n: u8) -> WindowBits {
        WindowBits::new(n).unwrap()
    }

    #[test]
    fn plain_offer() {
        assert_eq!(
            one("permessage-deflate").as_deref(),
            Some("permessage-deflate")
        );
        let p = enabled().negotiate([&b"permessage-deflate"[..]]).unwrap();
        assert_eq!(p, DeflateParams::default());
        assert_eq!(
            one("PerMessage-Deflate").as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn disabled_or_absent() {
        let off = DeflateConfig::default();
        assert_eq!(answer(&off, &["permessage-deflate"]), None);
        assert_eq!(answer(&enabled(), &[]), None);
        assert_eq!(one(""), None);
        assert_eq!(one("x-webkit-deflate-frame"), None);
        assert_eq!(one(" , ,, "), None);
        assert_eq!(one("permessage-deflat"), None);
    }

    #[test]
    fn all_parameters() {
        let p = enabled()
            .negotiate([&b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"[..]])
            .unwrap();
        assert!(p.server_no_context_takeover() && p.client_no_context_takeover());
        assert_eq!(p.server_max_window_bits(), bits(10));
        assert_eq!(p.client_max_window_bits(), bits(9));
        assert_eq!(
            p.to_string(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
    }

    #[test]
    fn first_acceptable_offer_wins() {
        // Firefox-style single offer, Chrome-style with the valueless client bits.
        assert_eq!(
            one("permessage-deflate; client_max_window_bits").as_deref(),
            Some("permessage-deflate")
        );
        // Autobahn 13.7-style list: the first one is taken.
        assert_eq!(
            one("permessage-deflate; client_no_context_takeover; client_max_window_bits=8, permessage-deflate; client_max_window_bits, permessage-deflate").as_deref(),
            Some("permessage-deflate; client_no_context_takeover")
        );
        let p = enabled()
            .negotiate([&b"permessage-deflate; client_max_window_bits=8, permessage-deflate"[..]])
            .unwrap();
        assert_eq!(p.client_max_window_bits(), WindowBits::MIN);
        // Declined offers are skipped, in one field or across fields.
        assert_eq!(
            one("permessage-deflate; x=1, permessage-deflate; server_max_window_bits=12")
                .as_deref(),
            Some("permessage-deflate; server_max_window_bits=12")
        );
        assert_eq!(
            answer(
                &enabled(),
                &[
                    "foo, permessage-deflate; server_max_window_bits",
                    "bar; a=b",
                    "permessage-deflate; server_no_context_takeover",
                    "permessage-deflate",
                ]
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn other_extensions_are_skipped_whatever_their_parameters() {
        assert_eq!(
            one("foo; a=\"x, y; z\"; b, permessage-deflate").as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(
            one("foo; a=\"unterminated, permessage-deflate"),
            None,
            "the rest of an unterminated quoted string is all one element"
        );
        assert_eq!(
            one("foo; bad value, permessage-deflate").as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn quoted_values() {
        assert_eq!(
            one("permessage-deflate; server_max_window_bits=\"10\"").as_deref(),
            Some("permessage-deflate; server_max_window_bits=10")
        );
        assert_eq!(
            one(r#"permessage-deflate; server_max_window_bits="1\1""#).as_deref(),
            Some("permessage-deflate; server_max_window_bits=11"),
            "escapes are removed before the value is read"
        );
        assert_eq!(
            one("permessage-deflate; client_max_window_bits=\"8\"").as_deref(),
            Some("permessage-deflate")
        );
        for bad in [
            "permessage-deflate; server_max_window_bits=\"\"",
            "permessage-deflate; server_max_window_bits=\" 10\"",
            "permessage-deflate; server_max_window_bits=\"10",
            "permessage-deflate; server_max_window_bits=\"1,0\"",
            "permessage-deflate; server_no_context_takeover=\"\"",
            "permessage-deflate; client_max_window_bits=\"a b\"",
        ] {
            assert_eq!(one(bad), None, "{bad}");
        }
    }

    #[test]
    fn window_bits_values() {
        for n in 8..=15 {
            let offer = format!("permessage-deflate; server_max_window_bits={n}");
            assert_eq!(
                one(&offer),
                Some(format!("permessage-deflate; server_max_window_bits={n}"))
            );
            let p = enabled()
                .negotiate([format!("permessage-deflate; client_max_window_bits={n}").as_bytes()])
                .unwrap();
            assert_eq!(p.client_max_window_bits(), bits(n));
        }
        for bad in [
            "7", "16", "0", "08", "010", "9a", "+9", "-9", "1", "150", "99",
        ] {
            let s = format!("permessage-deflate; server_max_window_bits={bad}");
            assert_eq!(one(&s), None, "{s}");
            let c = format!("permessage-deflate; client_max_window_bits={bad}");
            assert_eq!(one(&c), None, "{c}");
        }
        assert_eq!(
            one("permessage-deflate; server_max_window_bits"),
            None,
            "server_max_window_bits needs a value in an offer"
        );
        assert_eq!(
            one("permessage-deflate; server_max_window_bits="),
            None,
            "an empty value does not parse"
        );
    }

    #[test]
    fn unknown_duplicate_and_valued_flags_are_declined() {
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; foo=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=true",
            "permessage-deflate; server_max_window_bits=10; x",
        ] {
            assert_eq!(one(bad), None, "{bad}");
        }
    }

    #[test]
    fn syntax_errors_decline_only_their_element() {
        for bad in [
            "permessage-deflate;",
            "permessage-deflate; ;",
            "permessage-deflate; =10",
            "permessage-deflate server_no_context_takeover",
            "permessage-deflate; server_max_window_bits==10",
            "permessage-deflate; server_max_window_bits=10 11",
            "permessage-deflate; server_no_context_takeover\u{7f}",
            "\"permessage-deflate\"",
        ] {
            assert_eq!(one(bad), None, "{bad}");
            let then_good = format!("{bad}, permessage-deflate; client_max_window_bits");
            assert_eq!(
                one(&then_good).as_deref(),
                Some("permessage-deflate"),
                "{then_good}"
            );
        }
    }

    #[test]
    fn whitespace_is_optional_around_separators() {
        assert_eq!(
            one("\tpermessage-deflate ;server_max_window_bits = 9\t; client_no_context_takeover ,")
                .as_deref(),
            Some("permessage-deflate; client_no_context_takeover; server_max_window_bits=9")
        );
        assert_eq!(
            one("permessage-deflate;server_no_context_takeover;client_max_window_bits=15")
                .as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn server_settings_shape_the_answer() {
        let mut c = enabled();
        c.set_server_max_window_bits(bits(11))
            .set_server_no_context_takeover(true)
            .set_client_no_context_takeover(true);
        assert_eq!(
            answer(&c, &["permessage-deflate"]).as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11"
            )
        );
        // The client's limit wins when smaller, the server's cap when the client allows more.
        let p = c
            .negotiate([&b"permessage-deflate; server_max_window_bits=9"[..]])
            .unwrap();
        assert_eq!(p.server_max_window_bits(), bits(9));
        let p = c
            .negotiate([&b"permessage-deflate; server_max_window_bits=14"[..]])
            .unwrap();
        assert_eq!(p.server_max_window_bits(), bits(11));
        // An offered server_max_window_bits=15 must be answered even at the default cap.
        assert_eq!(
            one("permessage-deflate; server_max_window_bits=15").as_deref(),
            Some("permessage-deflate; server_max_window_bits=15")
        );
    }

    #[test]
    fn mirrored_swaps_sides() {
        let p = DeflateParams::default()
            .with_server_no_context_takeover(true)
            .with_server_max_window_bits(bits(9))
            .with_client_max_window_bits(bits(12));
        let m = p.mirrored();
        assert!(m.client_no_context_takeover() && !m.server_no_context_takeover());
        assert_eq!(m.server_max_window_bits(), bits(12));
        assert_eq!(m.client_max_window_bits(), bits(9));
        assert_eq!(m.mirrored(), p);
    }

    quickcheck::quickcheck! {
        /// Arbitrary header bytes never panic, and whatever is accepted is a valid
        /// agreement that the negotiation accepts again unchanged (the answer is a valid
        /// offer of the same parameters, minus client_max_window_bits).
        fn any_header_is_safe(values: Vec<Vec<u8>>) -> bool {
            let c = enabled();
            match c.negotiate(values.iter().map(Vec::as_slice)) {
                None => true,
                Some(p) => {
                    let again = c.negotiate([p.to_string().as_bytes()]);
                    again.map(|a| a.to_string()) == Some(p.to_string())
                }
            }
        }

        /// Offers assembled from valid parts are always accepted, and agree with them.
        fn valid_offers_are_accepted(snct: bool, cnct: bool, sbits: Option<u8>, cbits: Option<Option<u8>>, quote: bool) -> bool {
            let sbits = sbits.map(|b| 8 + b % 8);
            let cbits = cbits.map(|b| b.map(|b| 8 + b % 8));
            let q = if quote { "\"" } else { "" };
            let mut offer = String::from("permessage-deflate");
            if snct { offer += "; server_no_context_takeover"; }
            if cnct { offer += ";client_no_context_takeover"; }
            if let Some(b) = sbits { offer += &format!(" ; server_max_window_bits={q}{b}{q}"); }
            match cbits {
                Some(Some(b)) => offer += &format!("; client_max_window_bits = {q}{b}{q}"),
                Some(None) => offer += "; client_max_window_bits",
                None => {}
            }
            let Some(p) = enabled().negotiate([offer.as_bytes()]) else { return false };
            p.server_no_context_takeover() == snct
                && p.client_no_context_takeover() == cnct
                && p.server_max_window_bits().get() == sbits.unwrap_or(15)
                && p.client_max_window_bits().get() == cbits.flatten().unwrap_or(15)
        }
    }
}
