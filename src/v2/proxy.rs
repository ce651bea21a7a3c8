//! The frames of the v2 proxy websocket (PROTOCOL_V2.md §5), without
//! sockets: [`ClientFrame`] (what a client sends) and [`ServerFrame`] (what
//! the server sends), each encoded to and decoded from the bytes of one
//! binary websocket message, plus what the server's close codes mean.
//!
//! Every frame is a run of little-endian 32-bit words, the first being the
//! op code ([`Op`]). Calls (`OPEN`, `CLOSE`, `OPEN_UNCONNECTED`) carry a
//! correlation id chosen by the client, which the reply echoes; `MESSAGE`
//! and `MESSAGE_TO` carry a channel id issued by the server, then one UDP
//! datagram's bytes. Call frames have an exact length: a short frame, or
//! one with bytes left over, is a protocol abuse for which the server
//! closes the whole websocket ([`FrameError::server_close_code`]).
//!
//! ```
//! use spalloc::v2::proxy::{ClientFrame, ServerFrame, SCP_PORT};
//!
//! // Open a channel to the SCP port of the board whose Ethernet chip is
//! // (0, 0) of the job, as call number 7.
//! let open = ClientFrame::Open { correlation: 7, x: 0, y: 0, port: u32::from(SCP_PORT) };
//! let bytes = open.encode()?;
//! assert_eq!(bytes.len(), 20);
//! assert_eq!(ClientFrame::decode(&bytes)?, open);
//!
//! // The server's answer: channel 42.
//! let reply = [0u8, 0, 0, 0, 7, 0, 0, 0, 42, 0, 0, 0];
//! assert_eq!(
//!     ServerFrame::decode(&reply)?,
//!     ServerFrame::Opened { correlation: 7, channel: 42 }
//! );
//! # Ok::<(), spalloc::v2::proxy::FrameError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;

/// The largest datagram the proxy relays from a board: its 2048-byte
/// receive buffer holds the 8-byte `MESSAGE` header too (PROTOCOL_V2.md
/// E16). A client never sends a longer one either ([`ClientFrame::encode`]):
/// no SpiNNaker packet is that long, and no reply to it could come back.
pub const MAX_PAYLOAD: usize = 2040;

/// The longest message an `ERROR` frame carries, in bytes; the server sends
/// an empty message rather than a longer one.
pub const MAX_ERROR_TEXT: usize = 1000;

/// The UDP port of a board's SCP (and EIEIO) service, the usual target of
/// `OPEN`.
pub const SCP_PORT: u16 = 17893;

/// The UDP port a board is booted through.
pub const BOOT_PORT: u16 = 54321;

/// A normal close: the websocket's purpose is fulfilled.
pub const CLOSE_NORMAL: u16 = 1000;
/// The server closes with this when a client sends a text frame.
pub const CLOSE_TEXT_REJECTED: u16 = 1003;
/// The server closes with this on a protocol abuse (§5.4).
pub const CLOSE_BAD_DATA: u16 = 1007;
/// A websocket message longer than the receiver accepts.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The server closes with this on its own failures, on op codes beyond the
/// protocol's (E3), and when the job has no boards when the websocket opens.
pub const CLOSE_SERVER_ERROR: u16 = 1011;

/// An op code: the first word of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Open a channel to one port of one board of the job (a call).
    Open,
    /// Close a channel (a call).
    Close,
    /// One datagram on a channel, either way.
    Message,
    /// Open a channel that receives from every board of the job (a call).
    OpenUnconnected,
    /// One datagram from an unconnected channel to one board's port.
    MessageTo,
    /// A failed call (server to client only).
    Error,
}

impl Op {
    /// The op code on the wire.
    pub fn code(self) -> u32 {
        match self {
            Op::Open => 0,
            Op::Close => 1,
            Op::Message => 2,
            Op::OpenUnconnected => 3,
            Op::MessageTo => 4,
            Op::Error => 5,
        }
    }

    /// The op with this code, if there is one.
    pub fn from_code(code: u32) -> Option<Op> {
        Some(match code {
            0 => Op::Open,
            1 => Op::Close,
            2 => Op::Message,
            3 => Op::OpenUnconnected,
            4 => Op::MessageTo,
            5 => Op::Error,
            _ => return None,
        })
    }

    /// The server's name for it (`OPEN`, `MESSAGE_TO`, …).
    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "OPEN",
            Op::Close => "CLOSE",
            Op::Message => "MESSAGE",
            Op::OpenUnconnected => "OPEN_UNCONNECTED",
            Op::MessageTo => "MESSAGE_TO",
            Op::Error => "ERROR",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why bytes are not a frame of the expected direction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer than 4 bytes: not even an op code.
    NoOpCode {
        /// How many bytes there were.
        len: usize,
    },
    /// An op code the protocol does not have.
    UnknownOp(u32),
    /// An op that never travels this way: `ERROR` from a client, or
    /// `MESSAGE_TO` from a server.
    WrongDirection(Op),
    /// The frame ends before its fixed words do.
    Short {
        /// The op code.
        op: Op,
        /// The frame's length.
        len: usize,
        /// The least length of this op's frames.
        need: usize,
    },
    /// A call frame with bytes after its fixed words.
    Extra {
        /// The op code.
        op: Op,
        /// The frame's length.
        len: usize,
        /// The exact length of this op's frames.
        want: usize,
    },
    /// A datagram longer than [`MAX_PAYLOAD`].
    PayloadTooLarge {
        /// Its length.
        len: usize,
    },
    /// An `ERROR` frame's message is longer than [`MAX_ERROR_TEXT`].
    ErrorTextTooLong {
        /// Its length.
        len: usize,
    },
}

impl FrameError {
    /// The close code with which the Java server ends a websocket whose
    /// client sent such a frame (§5.4 with correction E3): 1011
    /// ([`CLOSE_SERVER_ERROR`]) for an op code past the protocol's, 6 and up
    /// or negative as a signed word (the server fails on an array index
    /// there), and 1007 ([`CLOSE_BAD_DATA`]) for everything else, `ERROR`
    /// (op code 5) included.
    pub fn server_close_code(&self) -> u16 {
        match self {
            FrameError::UnknownOp(_) => CLOSE_SERVER_ERROR,
            FrameError::NoOpCode { .. }
            | FrameError::WrongDirection(_)
            | FrameError::Short { .. }
            | FrameError::Extra { .. }
            | FrameError::PayloadTooLarge { .. }
            | FrameError::ErrorTextTooLong { .. } => CLOSE_BAD_DATA,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::NoOpCode { len } => {
                write!(f, "a {len}-byte frame has no op code (4 bytes)")
            }
            FrameError::UnknownOp(code) => {
                write!(f, "unknown op code {}", i64::from(*code as i32))
            }
            FrameError::WrongDirection(op) => {
                write!(f, "{op} frames are not sent in this direction")
            }
            FrameError::Short { op, len, need } => {
                write!(f, "{op} frame of {len} bytes is short: it needs {need}")
            }
            FrameError::Extra { op, len, want } => write!(
                f,
                "{op} frame of {len} bytes has {} bytes too many: it takes exactly {want}",
                len - want
            ),
            FrameError::PayloadTooLarge { len } => {
                write!(
                    f,
                    "a {len}-byte datagram is over the proxy's limit of {MAX_PAYLOAD} bytes"
                )
            }
            FrameError::ErrorTextTooLong { len } => write!(
                f,
                "an ERROR frame's {len}-byte message is over the limit of {MAX_ERROR_TEXT} bytes"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// A frame a client sends. Payloads borrow from the decoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// Open a channel to `port` of the board whose Ethernet chip is
    /// (`x`, `y`) in job coordinates. Answered by [`ServerFrame::Opened`]
    /// or [`ServerFrame::Error`].
    Open {
        /// Echoed by the reply.
        correlation: u32,
        /// The board's Ethernet chip, relative to the job's root.
        x: u32,
        /// As `x`.
        y: u32,
        /// The board's UDP port, 1 to 65535 (others get an `ERROR`).
        port: u32,
    },
    /// Close a channel. Answered by [`ServerFrame::Closed`].
    Close {
        /// Echoed by the reply.
        correlation: u32,
        /// The channel.
        channel: u32,
    },
    /// Send a datagram to a channel's board. Not answered; dropped if the
    /// channel is unknown, closed or unconnected.
    Message {
        /// The channel.
        channel: u32,
        /// The datagram.
        payload: &'a [u8],
    },
    /// Open a channel that receives from every board of the job. Answered
    /// by [`ServerFrame::OpenedUnconnected`] or [`ServerFrame::Error`].
    OpenUnconnected {
        /// Echoed by the reply.
        correlation: u32,
    },
    /// Send a datagram from an unconnected channel to one board's port. Not
    /// answered; to an unknown board, to a bad port or on a connected
    /// channel it is a protocol abuse (the server closes with 1007).
    MessageTo {
        /// The channel.
        channel: u32,
        /// The board's Ethernet chip, relative to the job's root.
        x: u32,
        /// As `x`.
        y: u32,
        /// The board's UDP port.
        port: u32,
        /// The datagram.
        payload: &'a [u8],
    },
}

/// A frame the server sends. Payloads borrow from the decoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame<'a> {
    /// A channel was opened.
    Opened {
        /// The call's.
        correlation: u32,
        /// The new channel; never 0, unique across the server.
        channel: u32,
    },
    /// A channel was closed.
    Closed {
        /// The call's.
        correlation: u32,
        /// The channel, or 0 if it was unknown or already closed.
        channel: u32,
    },
    /// A datagram from a channel's board (or, on an unconnected channel,
    /// from any board of the job).
    Message {
        /// The channel.
        channel: u32,
        /// The datagram; at most [`MAX_PAYLOAD`] bytes.
        payload: &'a [u8],
    },
    /// An unconnected channel was opened; boards reach it at `address` and
    /// `port`.
    OpenedUnconnected {
        /// The call's.
        correlation: u32,
        /// The new channel.
        channel: u32,
        /// The server-side address boards must send to.
        address: Ipv4Addr,
        /// The server-side UDP port boards must send to.
        port: u32,
    },
    /// A call failed.
    Error {
        /// The call's.
        correlation: u32,
        /// Why, from the server: untrusted text, to be shown only with its
        /// control characters made visible.
        message: Cow<'a, str>,
    },
}

/// The words of a frame, after its op code.
fn word(frame: &[u8], index: usize) -> u32 {
    let at = index * 4;
    let mut w = [0u8; 4];
    if let Some(b) = frame.get(at..at + 4) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

fn words(ws: &[u32], extra: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(ws.len() * 4 + extra);
    for w in ws {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

/// The op code, and checks that an op with fixed words has them, and with
/// `exact`, nothing more.
fn check_len(frame: &[u8], op: Op, need: usize, exact: bool) -> Result<(), FrameError> {
    let len = frame.len();
    if len < need {
        return Err(FrameError::Short { op, len, need });
    }
    if exact && len > need {
        return Err(FrameError::Extra {
            op,
            len,
            want: need,
        });
    }
    Ok(())
}

fn op_code(frame: &[u8]) -> Result<u32, FrameError> {
    if frame.len() < 4 {
        return Err(FrameError::NoOpCode { len: frame.len() });
    }
    Ok(word(frame, 0))
}

impl<'a> ClientFrame<'a> {
    /// The op code.
    pub fn op(&self) -> Op {
        match self {
            ClientFrame::Open { .. } => Op::Open,
            ClientFrame::Close { .. } => Op::Close,
            ClientFrame::Message { .. } => Op::Message,
            ClientFrame::OpenUnconnected { .. } => Op::OpenUnconnected,
            ClientFrame::MessageTo { .. } => Op::MessageTo,
        }
    }

    /// The frame's bytes.
    ///
    /// # Errors
    ///
    /// [`FrameError::PayloadTooLarge`] for a datagram longer than
    /// [`MAX_PAYLOAD`].
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let op = self.op().code();
        Ok(match self {
            ClientFrame::Open {
                correlation,
                x,
                y,
                port,
            } => words(&[op, *correlation, *x, *y, *port], 0),
            ClientFrame::Close {
                correlation,
                channel,
            } => words(&[op, *correlation, *channel], 0),
            ClientFrame::OpenUnconnected { correlation } => words(&[op, *correlation], 0),
            ClientFrame::Message { channel, payload } => {
                if payload.len() > MAX_PAYLOAD {
                    return Err(FrameError::PayloadTooLarge { len: payload.len() });
                }
                let mut out = words(&[op, *channel], payload.len());
                out.extend_from_slice(payload);
                out
            }
            ClientFrame::MessageTo {
                channel,
                x,
                y,
                port,
                payload,
            } => {
                if payload.len() > MAX_PAYLOAD {
                    return Err(FrameError::PayloadTooLarge { len: payload.len() });
                }
                let mut out = words(&[op, *channel, *x, *y, *port], payload.len());
                out.extend_from_slice(payload);
                out
            }
        })
    }

    /// Reads a frame a client sent, as the server does: call frames must
    /// have exactly their words; `MESSAGE` and `MESSAGE_TO` take any
    /// payload after theirs (the websocket's message limit bounds it).
    ///
    /// # Errors
    ///
    /// A [`FrameError`] saying what is wrong; its
    /// [`server_close_code`](FrameError::server_close_code) is how the
    /// server answers it.
    pub fn decode(frame: &'a [u8]) -> Result<ClientFrame<'a>, FrameError> {
        let code = op_code(frame)?;
        let op = Op::from_code(code).ok_or(FrameError::UnknownOp(code))?;
        let w = |i| word(frame, i);
        Ok(match op {
            Op::Open => {
                check_len(frame, op, 20, true)?;
                ClientFrame::Open {
                    correlation: w(1),
                    x: w(2),
                    y: w(3),
                    port: w(4),
                }
            }
            Op::Close => {
                check_len(frame, op, 12, true)?;
                ClientFrame::Close {
                    correlation: w(1),
                    channel: w(2),
                }
            }
            Op::Message => {
                check_len(frame, op, 8, false)?;
                ClientFrame::Message {
                    channel: w(1),
                    payload: &frame[8..],
                }
            }
            Op::OpenUnconnected => {
                check_len(frame, op, 8, true)?;
                ClientFrame::OpenUnconnected { correlation: w(1) }
            }
            Op::MessageTo => {
                check_len(frame, op, 20, false)?;
                ClientFrame::MessageTo {
                    channel: w(1),
                    x: w(2),
                    y: w(3),
                    port: w(4),
                    payload: &frame[20..],
                }
            }
            Op::Error => return Err(FrameError::WrongDirection(op)),
        })
    }
}

impl<'a> ServerFrame<'a> {
    /// The op code.
    pub fn op(&self) -> Op {
        match self {
            ServerFrame::Opened { .. } => Op::Open,
            ServerFrame::Closed { .. } => Op::Close,
            ServerFrame::Message { .. } => Op::Message,
            ServerFrame::OpenedUnconnected { .. } => Op::OpenUnconnected,
            ServerFrame::Error { .. } => Op::Error,
        }
    }

    /// The correlation id of a call's reply (`None` for `MESSAGE`, which
    /// carries a channel id instead).
    pub fn correlation(&self) -> Option<u32> {
        match self {
            ServerFrame::Opened { correlation, .. }
            | ServerFrame::Closed { correlation, .. }
            | ServerFrame::OpenedUnconnected { correlation, .. }
            | ServerFrame::Error { correlation, .. } => Some(*correlation),
            ServerFrame::Message { .. } => None,
        }
    }

    /// The frame's bytes. An `ERROR` message longer than
    /// [`MAX_ERROR_TEXT`] is sent empty, as the Java server does. A
    /// `MESSAGE` payload longer than [`MAX_PAYLOAD`] is encoded as it is,
    /// making a frame that clients reject; a server never relays one.
    pub fn encode(&self) -> Vec<u8> {
        let op = self.op().code();
        match self {
            ServerFrame::Opened {
                correlation,
                channel,
            }
            | ServerFrame::Closed {
                correlation,
                channel,
            } => words(&[op, *correlation, *channel], 0),
            ServerFrame::Message { channel, payload } => {
                let mut out = words(&[op, *channel], payload.len());
                out.extend_from_slice(payload);
                out
            }
            ServerFrame::OpenedUnconnected {
                correlation,
                channel,
                address,
                port,
            } => {
                let mut out = words(&[op, *correlation, *channel], 8);
                out.extend_from_slice(&address.octets());
                out.extend_from_slice(&port.to_le_bytes());
                out
            }
            ServerFrame::Error {
                correlation,
                message,
            } => {
                let text = if message.len() > MAX_ERROR_TEXT {
                    ""
                } else {
                    message.as_ref()
                };
                let mut out = words(&[op, *correlation], text.len());
                out.extend_from_slice(text.as_bytes());
                out
            }
        }
    }

    /// Reads a frame the server sent.
    ///
    /// # Errors
    ///
    /// A [`FrameError`]: a call reply that is short or has extra bytes, a
    /// datagram over [`MAX_PAYLOAD`], an `ERROR` message over
    /// [`MAX_ERROR_TEXT`], `MESSAGE_TO` (which servers never send), or an
    /// unknown op code. An `ERROR` message that is not UTF-8 is decoded
    /// with replacement characters, not refused.
    pub fn decode(frame: &'a [u8]) -> Result<ServerFrame<'a>, FrameError> {
        let code = op_code(frame)?;
        let op = Op::from_code(code).ok_or(FrameError::UnknownOp(code))?;
        let w = |i| word(frame, i);
        Ok(match op {
            Op::Open => {
                check_len(frame, op, 12, true)?;
                ServerFrame::Opened {
                    correlation: w(1),
                    channel: w(2),
                }
            }
            Op::Close => {
                check_len(frame, op, 12, true)?;
                ServerFrame::Closed {
                    correlation: w(1),
                    channel: w(2),
                }
            }
            Op::Message => {
                check_len(frame, op, 8, false)?;
                let payload = &frame[8..];
                if payload.len() > MAX_PAYLOAD {
                    return Err(FrameError::PayloadTooLarge { len: payload.len() });
                }
                ServerFrame::Message {
                    channel: w(1),
                    payload,
                }
            }
            Op::OpenUnconnected => {
                check_len(frame, op, 20, true)?;
                ServerFrame::OpenedUnconnected {
                    correlation: w(1),
                    channel: w(2),
                    address: Ipv4Addr::new(frame[12], frame[13], frame[14], frame[15]),
                    port: w(4),
                }
            }
            Op::Error => {
                check_len(frame, op, 8, false)?;
                let text = &frame[8..];
                if text.len() > MAX_ERROR_TEXT {
                    return Err(FrameError::ErrorTextTooLong { len: text.len() });
                }
                ServerFrame::Error {
                    correlation: w(1),
                    message: String::from_utf8_lossy(text),
                }
            }
            Op::MessageTo => return Err(FrameError::WrongDirection(op)),
        })
    }
}

/// What a close code from the proxy means (§5.1, §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseKind {
    /// 1000: closed normally.
    Normal,
    /// 1001: the server is going away (shutting down).
    GoingAway,
    /// 1003: the client sent a text frame; the proxy takes only binary
    /// ones.
    TextRejected,
    /// 1007: the client broke the protocol: a short frame, extra bytes on
    /// a call, `ERROR` from a client, or `MESSAGE_TO` to an unknown board,
    /// a bad port or a connected channel.
    BadData,
    /// 1009: a websocket message longer than the server accepts.
    TooBig,
    /// 1011: the server failed: the job had no boards when the websocket
    /// opened, a socket failed, or an op code past the protocol's.
    ServerError,
    /// Any other code.
    Other(u16),
}

impl CloseKind {
    /// The kind of close `code` is.
    pub fn from_code(code: u16) -> CloseKind {
        match code {
            CLOSE_NORMAL => CloseKind::Normal,
            1001 => CloseKind::GoingAway,
            CLOSE_TEXT_REJECTED => CloseKind::TextRejected,
            CLOSE_BAD_DATA => CloseKind::BadData,
            CLOSE_TOO_BIG => CloseKind::TooBig,
            CLOSE_SERVER_ERROR => CloseKind::ServerError,
            other => CloseKind::Other(other),
        }
    }

    /// The code on the wire.
    pub fn code(self) -> u16 {
        match self {
            CloseKind::Normal => CLOSE_NORMAL,
            CloseKind::GoingAway => 1001,
            CloseKind::TextRejected => CLOSE_TEXT_REJECTED,
            CloseKind::BadData => CLOSE_BAD_DATA,
            CloseKind::TooBig => CLOSE_TOO_BIG,
            CloseKind::ServerError => CLOSE_SERVER_ERROR,
            CloseKind::Other(code) => code,
        }
    }
}

impl fmt::Display for CloseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            CloseKind::Normal => "closed normally",
            CloseKind::GoingAway => "the server is going away",
            CloseKind::TextRejected => "the proxy takes only binary frames",
            CloseKind::BadData => "the proxy refused a frame as a protocol error",
            CloseKind::TooBig => "a message was too big for the proxy",
            CloseKind::ServerError => "the proxy failed (or the job has no boards to proxy to)",
            CloseKind::Other(_) => "closed",
        };
        write!(f, "{what} (close code {})", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes from a hex string with spaces.
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| {
                let text = std::str::from_utf8(p).unwrap_or("zz");
                u8::from_str_radix(text, 16).unwrap_or_else(|_| panic!("bad hex {text}"))
            })
            .collect()
    }

    #[test]
    fn the_worked_example_of_section_8_9() -> Result<(), FrameError> {
        let open = hex("00000000 07000000 00000000 00000000 e5450000");
        assert_eq!(
            ClientFrame::decode(&open)?,
            ClientFrame::Open {
                correlation: 7,
                x: 0,
                y: 0,
                port: 17893
            }
        );
        assert_eq!(
            ClientFrame::Open {
                correlation: 7,
                x: 0,
                y: 0,
                port: u32::from(SCP_PORT)
            }
            .encode()?,
            open
        );

        let opened = hex("00000000 07000000 2a000000");
        let frame = ServerFrame::Opened {
            correlation: 7,
            channel: 42,
        };
        assert_eq!(ServerFrame::decode(&opened)?, frame);
        assert_eq!(frame.encode(), opened);
        assert_eq!(frame.correlation(), Some(7));

        let up = hex("02000000 2a000000 0000 87ff 00ff 0000 0000 0000 0100");
        let msg = ClientFrame::Message {
            channel: 42,
            payload: &up[8..],
        };
        assert_eq!(ClientFrame::decode(&up)?, msg);
        assert_eq!(msg.encode()?, up);
        let down = hex("02000000 2a000000 0000 07ff ff00 0000 0000 8000 0100");
        let msg = ServerFrame::Message {
            channel: 42,
            payload: &down[8..],
        };
        assert_eq!(ServerFrame::decode(&down)?, msg);
        assert_eq!(msg.encode(), down);
        assert_eq!(msg.correlation(), None);

        let close = hex("01000000 08000000 2a000000");
        let frame = ClientFrame::Close {
            correlation: 8,
            channel: 42,
        };
        assert_eq!(ClientFrame::decode(&close)?, frame);
        assert_eq!(frame.encode()?, close);
        let closed = ServerFrame::Closed {
            correlation: 8,
            channel: 42,
        };
        assert_eq!(ServerFrame::decode(&close)?, closed);
        assert_eq!(closed.encode(), close);

        // §8.9 shows the start of this one.
        let frame = ServerFrame::Error {
            correlation: 9,
            message: "unrecognised ethernet chip".into(),
        };
        let error = frame.encode();
        assert!(error.starts_with(&hex(
            "05000000 09000000 756e7265636f676e69736564206574686572"
        )));
        assert_eq!(error.len(), 8 + 26);
        assert_eq!(ServerFrame::decode(&error)?, frame);
        Ok(())
    }

    #[test]
    fn every_op_both_ways() -> Result<(), FrameError> {
        let to = hex("04000000 05000000 01000000 02000000 31d40000 aabb");
        let frame = ClientFrame::MessageTo {
            channel: 5,
            x: 1,
            y: 2,
            port: 54321,
            payload: &[0xaa, 0xbb],
        };
        assert_eq!(ClientFrame::decode(&to)?, frame);
        assert_eq!(frame.encode()?, to);
        assert_eq!(frame.op(), Op::MessageTo);

        let unbound = hex("03000000 ffffffff");
        let frame = ClientFrame::OpenUnconnected {
            correlation: u32::MAX,
        };
        assert_eq!(ClientFrame::decode(&unbound)?, frame);
        assert_eq!(frame.encode()?, unbound);

        // The address in network order, as Python's "<IIIBBBBI" reads it.
        let opened = hex("03000000 0b000000 0c000000 7f000001 39300000");
        let frame = ServerFrame::OpenedUnconnected {
            correlation: 11,
            channel: 12,
            address: Ipv4Addr::new(127, 0, 0, 1),
            port: 12345,
        };
        assert_eq!(ServerFrame::decode(&opened)?, frame);
        assert_eq!(frame.encode(), opened);

        // Empty datagrams are datagrams.
        let empty = hex("02000000 01000000");
        assert_eq!(
            ClientFrame::decode(&empty)?,
            ClientFrame::Message {
                channel: 1,
                payload: &[]
            }
        );
        assert_eq!(
            ServerFrame::decode(&empty)?,
            ServerFrame::Message {
                channel: 1,
                payload: &[]
            }
        );
        let empty_to = hex("04000000 01000000 00000000 00000000 e5450000");
        assert!(matches!(
            ClientFrame::decode(&empty_to)?,
            ClientFrame::MessageTo { payload: [], .. }
        ));
        // An ERROR with no message, and one that is not UTF-8.
        assert_eq!(
            ServerFrame::decode(&hex("05000000 03000000"))?,
            ServerFrame::Error {
                correlation: 3,
                message: "".into()
            }
        );
        assert_eq!(
            ServerFrame::decode(&hex("05000000 03000000 61ff62"))?,
            ServerFrame::Error {
                correlation: 3,
                message: "a\u{fffd}b".into()
            }
        );
        Ok(())
    }

    #[test]
    fn short_frames() {
        for (bytes, want) in [
            ("", FrameError::NoOpCode { len: 0 }),
            ("000000", FrameError::NoOpCode { len: 3 }),
            (
                "00000000 07000000 00000000 00000000",
                FrameError::Short {
                    op: Op::Open,
                    len: 16,
                    need: 20,
                },
            ),
            (
                "01000000 08000000",
                FrameError::Short {
                    op: Op::Close,
                    len: 8,
                    need: 12,
                },
            ),
            (
                "02000000 2a00",
                FrameError::Short {
                    op: Op::Message,
                    len: 6,
                    need: 8,
                },
            ),
            (
                "03000000",
                FrameError::Short {
                    op: Op::OpenUnconnected,
                    len: 4,
                    need: 8,
                },
            ),
            (
                "04000000 01000000 00000000 00000000 e545",
                FrameError::Short {
                    op: Op::MessageTo,
                    len: 18,
                    need: 20,
                },
            ),
        ] {
            let err = ClientFrame::decode(&hex(bytes)).err();
            assert_eq!(err.as_ref(), Some(&want), "{bytes}");
            assert_eq!(err.map(|e| e.server_close_code()), Some(1007));
        }
        for (bytes, need) in [
            ("00000000 07000000", 12),
            ("01000000 07000000 0100", 12),
            ("02000000 0100", 8),
            ("03000000 07000000 0a000000 7f000001", 20),
            ("05000000", 8),
        ] {
            assert!(
                matches!(
                    ServerFrame::decode(&hex(bytes)),
                    Err(FrameError::Short { need: n, .. }) if n == need
                ),
                "{bytes}"
            );
        }
        assert_eq!(
            ServerFrame::decode(&[1, 0]),
            Err(FrameError::NoOpCode { len: 2 })
        );
    }

    #[test]
    fn extra_bytes_on_calls() {
        for (bytes, op, want) in [
            (
                "00000000 07000000 00000000 00000000 e5450000 00",
                Op::Open,
                20,
            ),
            ("01000000 08000000 2a000000 00000000", Op::Close, 12),
            ("03000000 08000000 00", Op::OpenUnconnected, 8),
        ] {
            let b = hex(bytes);
            let err = ClientFrame::decode(&b);
            assert_eq!(
                err,
                Err(FrameError::Extra {
                    op,
                    len: b.len(),
                    want
                }),
                "{bytes}"
            );
            assert_eq!(err.err().map(|e| e.server_close_code()), Some(1007));
        }
        for bytes in [
            "00000000 07000000 2a000000 00",
            "01000000 07000000 2a000000 00000000",
            "03000000 07000000 2a000000 7f000001 39300000 00",
        ] {
            assert!(
                matches!(
                    ServerFrame::decode(&hex(bytes)),
                    Err(FrameError::Extra { .. })
                ),
                "{bytes}"
            );
        }
        assert_eq!(
            FrameError::Extra {
                op: Op::Open,
                len: 21,
                want: 20
            }
            .to_string(),
            "OPEN frame of 21 bytes has 1 bytes too many: it takes exactly 20"
        );
    }

    #[test]
    fn op_codes_outside_the_protocol() {
        // ERROR is a server's op: a client sending it is bad data (1007).
        let bytes = hex("05000000 01000000");
        let err = ClientFrame::decode(&bytes);
        assert_eq!(err, Err(FrameError::WrongDirection(Op::Error)));
        assert_eq!(err.err().map(|e| e.server_close_code()), Some(1007));
        // 6 and up, and negative as a signed word: the Java server fails on
        // an array index there and closes with 1011 (E3).
        for (bytes, code) in [
            ("06000000 01000000 02000000", 6),
            ("07000000", 7),
            ("ffffff7f", i32::MAX as u32),
            ("ffffffff 00000000", u32::MAX),
            ("00000080", 0x8000_0000),
        ] {
            let b = hex(bytes);
            let err = ClientFrame::decode(&b);
            assert_eq!(err, Err(FrameError::UnknownOp(code)), "{bytes}");
            assert_eq!(err.err().map(|e| e.server_close_code()), Some(1011));
            assert_eq!(
                ServerFrame::decode(&hex(bytes)),
                Err(FrameError::UnknownOp(code))
            );
        }
        assert_eq!(
            FrameError::UnknownOp(u32::MAX).to_string(),
            "unknown op code -1"
        );
        // MESSAGE_TO never comes from a server.
        assert_eq!(
            ServerFrame::decode(&hex("04000000 01000000 00000000 00000000 e5450000")),
            Err(FrameError::WrongDirection(Op::MessageTo))
        );
        for code in 0..6 {
            assert_eq!(Op::from_code(code).map(Op::code), Some(code));
        }
        assert_eq!(Op::from_code(6), None);
        assert_eq!(Op::OpenUnconnected.to_string(), "OPEN_UNCONNECTED");
    }

    #[test]
    fn the_payload_limit() -> Result<(), FrameError> {
        let most = vec![0x5a; MAX_PAYLOAD];
        let too_many = vec![0x5a; MAX_PAYLOAD + 1];
        // The largest datagram fits a 2048-byte frame, header included.
        let bytes = ClientFrame::Message {
            channel: 3,
            payload: &most,
        }
        .encode()?;
        assert_eq!(bytes.len(), 2048);
        assert!(matches!(
            ServerFrame::decode(&bytes)?,
            ServerFrame::Message { payload, .. } if payload.len() == MAX_PAYLOAD
        ));
        assert_eq!(
            ClientFrame::Message {
                channel: 3,
                payload: &too_many
            }
            .encode(),
            Err(FrameError::PayloadTooLarge {
                len: MAX_PAYLOAD + 1
            })
        );
        assert_eq!(
            ClientFrame::MessageTo {
                channel: 3,
                x: 0,
                y: 0,
                port: 17893,
                payload: &too_many
            }
            .encode(),
            Err(FrameError::PayloadTooLarge {
                len: MAX_PAYLOAD + 1
            })
        );
        // One byte more is refused from a server ...
        let over = ServerFrame::Message {
            channel: 3,
            payload: &too_many,
        }
        .encode();
        assert_eq!(over.len(), 2049);
        assert_eq!(
            ServerFrame::decode(&over),
            Err(FrameError::PayloadTooLarge {
                len: MAX_PAYLOAD + 1
            })
        );
        // ... but the server reads what a client sends whatever its length,
        // as the Java server does.
        assert!(matches!(
            ClientFrame::decode(&over)?,
            ClientFrame::Message { payload, .. } if payload.len() == MAX_PAYLOAD + 1
        ));
        Ok(())
    }

    #[test]
    fn error_messages_are_bounded() -> Result<(), FrameError> {
        let long = "x".repeat(MAX_ERROR_TEXT + 1);
        // The server sends an empty message rather than a long one.
        let bytes = ServerFrame::Error {
            correlation: 4,
            message: long.as_str().into(),
        }
        .encode();
        assert_eq!(bytes, hex("05000000 04000000"));
        let most = "y".repeat(MAX_ERROR_TEXT);
        let bytes = ServerFrame::Error {
            correlation: 4,
            message: most.as_str().into(),
        }
        .encode();
        assert_eq!(bytes.len(), 8 + MAX_ERROR_TEXT);
        assert!(
            matches!(ServerFrame::decode(&bytes)?, ServerFrame::Error { message, .. } if message == most)
        );
        let over = [&hex("05000000 04000000")[..], long.as_bytes()].concat();
        assert_eq!(
            ServerFrame::decode(&over),
            Err(FrameError::ErrorTextTooLong {
                len: MAX_ERROR_TEXT + 1
            })
        );
        Ok(())
    }

    #[test]
    fn close_codes() {
        assert_eq!(CloseKind::from_code(1007), CloseKind::BadData);
        assert_eq!(CloseKind::from_code(1011), CloseKind::ServerError);
        assert_eq!(CloseKind::from_code(1003), CloseKind::TextRejected);
        assert_eq!(CloseKind::from_code(4500), CloseKind::Other(4500));
        for code in [1000, 1001, 1003, 1007, 1009, 1011, 4500] {
            assert_eq!(CloseKind::from_code(code).code(), code);
        }
        assert_eq!(
            CloseKind::BadData.to_string(),
            "the proxy refused a frame as a protocol error (close code 1007)"
        );
    }
}
