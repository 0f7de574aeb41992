//! [`TypedFrame`]: a type name and a payload, as gev frames carry them.

use std::fmt;

use bytes::Bytes;

/// One gev frame: a type name and the payload it names, both sharing the receive buffer.
///
/// The name is valid UTF-8 (the decoder checks it, the constructors take `&str`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TypedFrame {
    /// invariant: valid UTF-8.
    name: Bytes,
    payload: Bytes,
}

impl TypedFrame {
    /// A frame naming `name` (copied) and carrying `payload`.
    pub fn new(name: &str, payload: impl Into<Bytes>) -> Self {
        Self {
            name: Bytes::copy_from_slice(name.as_bytes()),
            payload: payload.into(),
        }
    }

    /// A frame with a static name, without copying it.
    pub fn from_static(name: &'static str, payload: impl Into<Bytes>) -> Self {
        Self {
            name: Bytes::from_static(name.as_bytes()),
            payload: payload.into(),
        }
    }

    /// A frame from a name already checked to be UTF-8.
    pub(super) fn from_utf8_name(name: Bytes, payload: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&name).is_ok());
        Self { name, payload }
    }

    /// The type name.
    #[must_use]
    pub fn name(&self) -> &str {
        // invariant: every constructor takes a `&str` or a name checked to be UTF-8.
        std::str::from_utf8(&self.name).expect("type names are UTF-8")
    }

    /// The protobuf-encoded message.
    #[must_use]
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The payload, dropping the name.
    #[must_use]
    pub fn into_payload(self) -> Bytes {
        self.payload
    }
}

impl fmt::Debug for TypedFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedFrame")
            .field("name", &self.name())
            .field("payload", &self.payload)
            .finish()
    }
}
