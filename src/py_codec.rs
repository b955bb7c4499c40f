//! `rpcwire.Codec` and `rpcwire.kind`: the Python face of the sans-IO codec.
use std::sync::Arc;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyBaseException, PyException, PyMemoryError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::py_decode::{DecodeError, Decoded, Decoder};
use crate::py_errors::{invalid_request_item, parse_error_item, to_pyerr, IntoPy};
use crate::py_json::write_value;
use crate::py_keyring::Keyring;
use rpcwire_core::compress::Compression;
use rpcwire_core::crypto::KeyRing;
use rpcwire_core::envelope::{self, Envelope, EnvelopeConfig};
use rpcwire_core::errors::{CodecError, CodecResult};
use rpcwire_core::framing::{self, Frame, FrameDecoder, Framing, FramingChoice};
use rpcwire_core::jsonrpc::{self, JsonKind, JsonNode, Recorded, TopLevel};
use rpcwire_core::session::Role;

/// Bodies at least this large are sealed and opened with the GIL released.
const DETACH_MIN: usize = 64 * 1024;
/// Largest `encode_many` buffer a codec keeps for the next call.
const SCRATCH_KEEP_MAX: usize = 4 * 1024 * 1024;
/// Room left in a multi envelope for its header and tag, so the sealed frame stays within `max_frame_size`.
const ENVELOPE_OVERHEAD: usize = 64;

/// A sans-IO JSON-RPC 2.0 codec for one connection: `feed` bytes in, get messages out; `encode`
/// messages, get bytes to write.
#[pyclass(module = "rpcwire")]
pub struct Codec {
    choice: FramingChoice,
    decoder: FrameDecoder,
    envelope: Envelope,
    compression: Option<Compression>,
    compress_min_size: usize,
    max_frame_size: usize,
    /// The receive budgets, and what decompression added since the last `take_inflated`.
    budget: Budget,
    keyring: Option<Py<PyAny>>,
    /// The buffer `encode_many` writes plain frames into, and `feed` copies a mutable chunk into, kept
    /// between calls (up to [`SCRATCH_KEEP_MAX`] bytes of capacity): no allocation, growth or page faults
    /// per batch or chunk.
    scratch: Vec<u8>,
    /// Builds the Python objects of decoded messages (and keeps its key cache between them).
    json: Decoder,
}

const _: () = assert!(
    rpcwire_core::jsonrpc::DEFAULT_MAX_BATCH == 1024,
    "Codec's max_batch default"
);
const _: () = assert!(
    rpcwire_core::compress::DEFAULT_MAX_EXPANSION == 4096,
    "Codec's max_expansion default"
);

/// What one codec lets a peer make it build, and what decompression has added to the input so far.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Most elements a received batch, or records a received multi envelope, may hold.
    max_batch: usize,
    /// Bytes decompression added to the wire bytes since the last `take_inflated`: a transport counts them
    /// against its receive queue, which is measured in bytes, so compressed input cannot queue `max_expansion`
    /// times more than its bound.
    inflated: usize,
}

/// Why handling one frame stopped the feed.
enum Stop {
    /// A fatal codec error: poison the decoder and raise.
    Fatal(CodecError),
    /// A Python error while building items (e.g. `MemoryError`): raise it.
    Python(PyErr),
}

impl From<PyErr> for Stop {
    fn from(error: PyErr) -> Self {
        Self::Python(error)
    }
}

#[pymethods]
impl Codec {
    #[new]
    #[pyo3(signature = (
        framing=None,
        compression=None,
        compress_min_size=1024,
        keyring=None,
        max_frame_size=16_777_216,
        *,
        max_batch=1024,
        max_expansion=4096,
        handshake=None,
    ))]
    // The defaults are written out so Python's signature shows them; the assertions below `Codec` hold them to
    // the core's constants, tests/test_budgets.py to the Python ones.
    #[allow(clippy::too_many_arguments)]
    fn new(
        framing: Option<&str>,
        compression: Option<&str>,
        compress_min_size: i64,
        keyring: Option<Bound<'_, PyAny>>,
        max_frame_size: i64,
        max_batch: usize,
        max_expansion: usize,
        handshake: Option<&str>,
    ) -> PyResult<Self> {
        let compression = compression.map(Compression::from_name).transpose().py()?;
        let handshake = handshake.map(Role::from_name).transpose().py()?;
        let keyring_inner = keyring.as_ref().map(keyring_arc).transpose()?;
        let enveloped = compression.is_some() || keyring_inner.is_some();
        let choice = match framing {
            None if enveloped => FramingChoice::Fixed(Framing::Length),
            None => FramingChoice::Fixed(Framing::Ndjson),
            Some(name) => FramingChoice::from_name(name).py()?,
        };
        if handshake.is_some() && keyring_inner.is_none() {
            return Err(PyValueError::new_err(
                "handshake needs a keyring: it derives the session keys from one",
            ));
        }
        if choice == FramingChoice::Fixed(Framing::Ndjson) && enveloped {
            return Err(PyValueError::new_err(
                "compression and keyring need a binary framing ('length', 'content-length' or 'auto'), not 'ndjson'",
            ));
        }
        let compress_min_size =
            usize::try_from(compress_min_size).map_err(|_| PyValueError::new_err("compress_min_size must be >= 0"))?;
        let max_frame_size = usize::try_from(max_frame_size)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| PyValueError::new_err("max_frame_size must be > 0"))?;
        let max_batch = positive(max_batch, "max_batch")?;
        let max_expansion = positive(max_expansion, "max_expansion")?;
        let envelope = Envelope::new(EnvelopeConfig {
            compression,
            compress_min_size,
            keyring: keyring_inner,
            max_frame_size,
            max_expansion,
            handshake,
        })
        .py()?;
        let detected = match choice {
            FramingChoice::Fixed(f) => Some(f),
            FramingChoice::Auto => None,
        };
        Ok(Self {
            choice,
            decoder: FrameDecoder::new(detected, max_frame_size),
            envelope,
            compression,
            compress_min_size,
            max_frame_size,
            budget: Budget { max_batch, inflated: 0 },
            keyring: keyring.map(Bound::unbind),
            scratch: Vec::new(),
            json: Decoder::new(max_batch),
        })
    }

    /// The framing: as configured, or for `auto` the one detected (`"auto"` until the first byte).
    #[getter]
    fn framing(&self) -> &'static str {
        self.decoder.framing().map_or("auto", Framing::name)
    }

    #[getter]
    fn compression(&self) -> Option<&'static str> {
        self.compression.map(Compression::name)
    }

    #[getter]
    fn compress_min_size(&self) -> usize {
        self.compress_min_size
    }

    #[getter]
    fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Most elements a received batch (and records a received multi envelope) may hold.
    #[getter]
    fn max_batch(&self) -> usize {
        self.budget.max_batch
    }

    /// Decompressed bytes a received compressed body may hold per compressed byte.
    #[getter]
    fn max_expansion(&self) -> usize {
        self.envelope.config().max_expansion
    }

    /// Bytes held waiting for the rest of a frame.
    #[getter]
    fn buffered(&self) -> usize {
        self.decoder.buffered()
    }

    /// The session handshake role (`"initiator"` or `"responder"`), or `None` for the stream form.
    #[getter]
    fn handshake(&self) -> Option<&'static str> {
        self.envelope.handshake().map(Role::name)
    }

    /// True when `encode` can seal: no handshake configured, or the handshake is done.
    #[getter]
    pub(crate) fn established(&self) -> bool {
        self.envelope.established()
    }

    /// Bytes the codec itself has to send (the handshake: the initiator's hello from the start, the
    /// responder's reply once `feed` has read the hello), framed; `b""` when there are none. Write them
    /// before anything `encode` returns.
    fn data_to_send<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.take_data_to_send()?;
        Ok(PyBytes::new(py, &out))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let framing = match self.choice {
            FramingChoice::Fixed(f) => f.name(),
            FramingChoice::Auto => "auto",
        };
        let compression = self
            .compression
            .map_or("None".to_string(), |c| format!("'{}'", c.name()));
        let keyring = match &self.keyring {
            Some(k) => k.bind(py).repr()?.to_string(),
            None => "None".to_string(),
        };
        Ok(format!(
            "rpcwire.Codec(framing='{framing}', compression={compression}, compress_min_size={}, \
             keyring={keyring}, max_frame_size={}, max_batch={}, max_expansion={}{})",
            self.compress_min_size,
            self.max_frame_size,
            self.budget.max_batch,
            self.envelope.config().max_expansion,
            self.envelope
                .handshake()
                .map_or(String::new(), |role| format!(", handshake='{}'", role.name()))
        ))
    }

    /// Decode a chunk of the input stream; `b""` marks the end of input.
    #[pyo3(signature = (data, /))]
    fn feed<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        self.feed_list(py, data, None)
    }

    /// `feed`, handing each item to `handler` as soon as it is decoded instead of returning them all.
    #[pyo3(signature = (data, handler, answers, max_answers, /))]
    fn feed_each<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        handler: Bound<'py, PyAny>,
        answers: Bound<'py, PyList>,
        max_answers: usize,
    ) -> PyResult<(usize, Option<Py<PyBaseException>>, Bound<'py, PyList>)> {
        self.feed_handing(py, data, None, handler, answers, max_answers)
    }

    /// Serialize one message (dict), batch (list) or pre-serialized JSON (bytes) into one frame.
    #[pyo3(signature = (msg, /))]
    fn encode<'py>(&mut self, py: Python<'py>, msg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let framing = self.out_framing();
        let mut out = Vec::new();
        if framing.is_binary() && self.envelope.has_keyring() {
            self.seal_message(py, &mut out, framing, msg)?;
        } else if framing.is_binary() && self.envelope.is_active() {
            let mut body = Vec::new();
            write_message(&mut body, msg, framing)?;
            self.check_size(body.len()).py()?;
            self.seal_into(py, &mut out, framing, body, false)?;
        } else {
            self.frame_message(&mut out, framing, msg)?;
        }
        Ok(PyBytes::new(py, &out))
    }

    /// Serialize many messages into one buffer (one envelope per `max_frame_size` of them when
    /// compression or a keyring is configured).
    #[pyo3(signature = (msgs, /))]
    pub(crate) fn encode_many<'py>(
        &mut self,
        py: Python<'py>,
        msgs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let framing = self.out_framing();
        if !(framing.is_binary() && self.envelope.is_active()) {
            return self.encode_plain(py, framing, msgs);
        }
        let mut out = Vec::new();
        let limit = self.max_frame_size.saturating_sub(ENVELOPE_OVERHEAD).max(1);
        let mut body = Vec::new();
        let mut count = 0usize;
        for msg in msgs.try_iter()? {
            let msg = msg?;
            let at = body.len();
            body.extend_from_slice(&[0; 4]);
            write_message(&mut body, &msg, framing).inspect_err(|_| body.truncate(at))?;
            let len = body.len() - at - 4;
            self.check_size(len).py()?;
            body[at..at + 4].copy_from_slice(&(len as u32).to_be_bytes());
            if count > 0 && (body.len() > limit || count == self.budget.max_batch) {
                // Flush what came before this record as one envelope; the record starts the next (an envelope
                // holds what fits in max_frame_size, and no more records than a receiver's max_batch).
                let record = body.split_off(at);
                self.seal_records(py, &mut out, framing, body, count)?;
                body = record;
                count = 0;
            }
            count += 1;
        }
        if count > 0 {
            self.seal_records(py, &mut out, framing, body, count)?;
        }
        Ok(PyBytes::new(py, &out))
    }
}

impl Codec {
    /// The framed handshake frame waiting to be sent, or nothing.
    pub(crate) fn take_data_to_send(&mut self) -> PyResult<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(payload) = self.envelope.take_outbox() {
            framing::write_frame(&mut out, self.out_framing(), &payload, self.max_frame_size).py()?;
        }
        Ok(out)
    }

    /// Bytes decompression added to the input since the last call (see [`Budget::inflated`]).
    pub(crate) fn take_inflated(&mut self) -> usize {
        std::mem::take(&mut self.budget.inflated)
    }

    /// `feed` of `data`, or of its first `limit` bytes (a transport's read buffer: `rpcwire._core.ProtocolCore`).
    pub(crate) fn feed_list<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let items = PyList::empty(py);
        self.feed_into(py, data, limit, &mut Sink::List(&items))?;
        Ok(items)
    }

    /// `feed` of bytes the caller holds (a slice of a read `ProtocolCore` decodes a part at a time).
    pub(crate) fn feed_list_slice<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyList>> {
        self.budget.inflated = 0;
        let items = PyList::empty(py);
        self.feed_slice(py, data, &mut Sink::List(&items))?;
        Ok(items)
    }

    /// `feed_each` of `data`, or of its first `limit` bytes.
    pub(crate) fn feed_handing<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        limit: Option<usize>,
        handler: Bound<'py, PyAny>,
        answers: Bound<'py, PyList>,
        max_answers: usize,
    ) -> PyResult<(usize, Option<Py<PyBaseException>>, Bound<'py, PyList>)> {
        let mut handing = Handing {
            handler,
            answers,
            max_answers,
            handled: 0,
            error: None,
            rest: PyList::empty(py),
        };
        let fed = self.feed_into(py, data, limit, &mut Sink::Handler(&mut handing));
        match (fed, handing.error) {
            (Ok(()), error) => Ok((handing.handled, error.map(|e| e.into_value(py)), handing.rest)),
            // A fatal error after the handler failed: the decoder is poisoned, so the next call raises it;
            // report the handler's error now, with the items decoded after it.
            (Err(_fatal), Some(error)) if self.decoder.poisoned().is_some() => {
                Ok((handing.handled, Some(error.into_value(py)), handing.rest))
            }
            (Err(err), _) => Err(err),
        }
    }

    /// `encode_many` without an envelope: every frame straight into the kept scratch buffer.
    fn encode_plain<'py>(
        &mut self,
        py: Python<'py>,
        framing: Framing,
        msgs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = self.take_scratch();
        if let Ok(list) = msgs.cast_exact::<PyList>() {
            for msg in list {
                self.frame_message(&mut out, framing, &msg)?;
            }
        } else {
            for msg in msgs.try_iter()? {
                self.frame_message(&mut out, framing, &msg?)?;
            }
        }
        let bytes = PyBytes::new(py, &out);
        self.keep_scratch(out);
        Ok(bytes)
    }

    /// The kept scratch buffer, empty (`encode_many` and `feed` never run at once: both take `&mut self`).
    fn take_scratch(&mut self) -> Vec<u8> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch
    }

    /// Keep `scratch` for the next call, unless a huge batch or chunk grew it past [`SCRATCH_KEEP_MAX`].
    fn keep_scratch(&mut self, scratch: Vec<u8>) {
        if scratch.capacity() <= SCRATCH_KEEP_MAX {
            self.scratch = scratch;
        }
    }

    /// The framing `encode` writes: the configured one, or for `auto` the one detected, else the default.
    fn out_framing(&self) -> Framing {
        match self.choice {
            FramingChoice::Fixed(f) => f,
            FramingChoice::Auto => self.decoder.framing().unwrap_or(if self.envelope.is_active() {
                Framing::Length
            } else {
                Framing::Ndjson
            }),
        }
    }

    fn check_size(&self, size: usize) -> CodecResult<()> {
        if size > self.max_frame_size {
            return Err(CodecError::usage(format!(
                "message of {size} bytes exceeds max_frame_size {}",
                self.max_frame_size
            )));
        }
        Ok(())
    }

    /// Write one plain frame around `msg`, serializing it straight into `out`.
    fn frame_message(&self, out: &mut Vec<u8>, framing: Framing, msg: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(bytes) = msg.cast::<PyBytes>() {
            let bytes = bytes.as_bytes();
            check_ndjson_bytes(bytes, framing)?;
            framing::write_frame(out, framing, bytes, self.max_frame_size).py()?;
            return Ok(());
        }
        check_message_type(msg)?;
        let mark = framing::begin_frame(out, framing);
        write_value(out, msg).inspect_err(|_| out.truncate(mark.header))?;
        framing::end_frame(out, framing, mark, self.max_frame_size).py()?;
        Ok(())
    }

    /// Encrypt one message: serialized straight into `out` after room for the frame and envelope headers and
    /// sealed there in place (no copy of the body), unless it is to be compressed first.
    fn seal_message(
        &mut self,
        py: Python<'_>,
        out: &mut Vec<u8>,
        framing: Framing,
        msg: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let mark = framing::begin_frame(out, framing);
        let at = out.len();
        let header_len = self.envelope.sealed_header_len();
        out.resize(at + header_len, 0);
        write_message(out, msg, framing)?;
        let body_len = out.len() - at - header_len;
        self.check_size(body_len).py()?;
        if !self.envelope.seals_in_place(body_len) {
            let body = out.split_off(at + header_len);
            out.truncate(mark.header);
            return self.seal_into(py, out, framing, body, false);
        }
        let envelope = &mut self.envelope;
        if body_len >= DETACH_MIN {
            py.detach(|| envelope.seal_in_place(out, at, false))
        } else {
            envelope.seal_in_place(out, at, false)
        }
        .py()?;
        framing::end_frame(out, framing, mark, self.max_frame_size).py()?;
        Ok(())
    }

    /// Seal a records body holding `count` messages (a plain body when there is one).
    fn seal_records(
        &mut self,
        py: Python<'_>,
        out: &mut Vec<u8>,
        framing: Framing,
        mut body: Vec<u8>,
        count: usize,
    ) -> PyResult<()> {
        if count == 1 {
            body.drain(..4);
            return self.seal_into(py, out, framing, body, false);
        }
        self.seal_into(py, out, framing, body, true)
    }

    /// Seal `body`, then frame the envelope, or the plain message(s) when the envelope says so.
    fn seal_into(
        &mut self,
        py: Python<'_>,
        out: &mut Vec<u8>,
        framing: Framing,
        body: Vec<u8>,
        multi: bool,
    ) -> PyResult<()> {
        let envelope = &mut self.envelope;
        let sealed = if body.len() >= DETACH_MIN {
            py.detach(|| envelope.seal(&body, multi))
        } else {
            envelope.seal(&body, multi)
        }
        .py()?;
        match sealed {
            Some(payload) => framing::write_frame(out, framing, &payload, self.max_frame_size).py()?,
            None if multi => {
                for record in envelope::split_records(&body) {
                    framing::write_frame(out, framing, record.py()?, self.max_frame_size).py()?;
                }
            }
            None => framing::write_frame(out, framing, &body, self.max_frame_size).py()?,
        }
        Ok(())
    }

    /// Decode `data` (any bytes-like object), or its first `limit` bytes, into `sink`.
    fn feed_into<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        limit: Option<usize>,
        sink: &mut Sink<'_, 'py>,
    ) -> PyResult<()> {
        self.budget.inflated = 0;
        if let Ok(bytes) = data.cast::<PyBytes>() {
            // bytes are immutable: parse straight from them.
            let bytes = bytes.as_bytes();
            let bytes = &bytes[..limit.map_or(bytes.len(), |n| n.min(bytes.len()))];
            return self.feed_slice(py, bytes, sink);
        }
        // bytearray / memoryview (every socket read: the transports read into one reused buffer): copy
        // first, the caller may mutate them (so may a handler); into the kept scratch buffer, so no
        // allocation per chunk.
        let mut owned = self.take_scratch();
        let fed = copy_buffer_into(py, data, limit, &mut owned).and_then(|()| self.feed_slice(py, &owned, sink));
        self.keep_scratch(owned);
        fed
    }

    fn feed_slice<'py>(&mut self, py: Python<'py>, data: &[u8], items: &mut Sink<'_, 'py>) -> PyResult<()> {
        let Self {
            decoder,
            envelope,
            json,
            budget,
            ..
        } = self;
        let mut frames = decoder.feed(data).map_err(|e| to_pyerr(py, &e))?;
        let Some(framing) = frames.framing() else {
            return Ok(());
        };
        loop {
            let outcome = match frames.next_frame() {
                Ok(Some(frame)) => handle_frame(py, json, envelope, framing, budget, &frame, items),
                Ok(None) => return Ok(()),
                Err(error) => return Err(with_items(py, to_pyerr(py, &error), items)),
            };
            match outcome {
                Ok(()) => {}
                Err(Stop::Fatal(error)) => {
                    let err = to_pyerr(py, &error);
                    frames.poison(error);
                    return Err(with_items(py, err, items));
                }
                Err(Stop::Python(err)) => return Err(err),
            }
        }
    }
}

/// Where decoded items go.
enum Sink<'s, 'py> {
    /// `feed`: into the list it returns.
    List(&'s Bound<'py, PyList>),
    /// `feed_each`: to a handler.
    Handler(&'s mut Handing<'py>),
}

/// `feed_each`'s state: each item goes to `handler` as it is decoded, and dies when the handler is done with
/// it, unless kept. (A chunk's items built all at once live together until the last is handled: a
/// 64 KiB read of small messages is hundreds of dicts, enough to set off `CPython`'s cyclic GC on each read,
/// which then walks them.)
struct Handing<'py> {
    handler: Bound<'py, PyAny>,
    /// The handler's answers that are not `None`, appended in order.
    answers: Bound<'py, PyList>,
    /// Stop handing items out once `answers` holds this many (the caller writes them first).
    max_answers: usize,
    /// Items handed to the handler (the one that raised included).
    handled: usize,
    /// What the handler raised (an `Exception`): no more items go to it.
    error: Option<PyErr>,
    /// Items decoded but not handed out, once the handler raised or `answers` filled.
    rest: Bound<'py, PyList>,
}

impl<'py> Sink<'_, 'py> {
    #[inline]
    fn append(&mut self, item: Bound<'py, PyAny>) -> PyResult<()> {
        match self {
            Self::List(items) => items.append(item),
            Self::Handler(handing) => handing.give(item),
        }
    }
}

impl<'py> Handing<'py> {
    #[inline]
    fn give(&mut self, item: Bound<'py, PyAny>) -> PyResult<()> {
        if self.error.is_some() || self.answers.len() >= self.max_answers {
            return self.rest.append(item);
        }
        self.handled += 1;
        match self.handler.call1((item,)) {
            Ok(answer) if answer.is_none() => Ok(()),
            Ok(answer) => self.answers.append(answer),
            Err(error) if error.is_instance_of::<PyException>(self.handler.py()) => {
                self.error = Some(error);
                Ok(())
            }
            // KeyboardInterrupt, SystemExit, ...: through, as from any callback.
            Err(error) => Err(error),
        }
    }
}

/// Hand the items this chunk completed before a fatal error (and did not hand to a handler) to the caller
/// as the error's `items` attribute, so a stream's last good messages are not lost with it; with a
/// handler, `handled` says how many it was given.
fn with_items(py: Python<'_>, err: PyErr, sink: &Sink<'_, '_>) -> PyErr {
    let value = err.value(py);
    let set = match sink {
        Sink::List(items) => value.setattr("items", items),
        Sink::Handler(handing) => value
            .setattr("items", &handing.rest)
            .and_then(|()| value.setattr("handled", handing.handled)),
    };
    if let Err(attr_error) = set {
        // Only a Python-level failure (e.g. MemoryError) can land here: report that instead.
        return attr_error;
    }
    err
}

/// Turn one frame into items.
fn handle_frame<'py>(
    py: Python<'py>,
    json: &mut Decoder,
    envelope: &mut Envelope,
    framing: Framing,
    budget: &mut Budget,
    frame: &Frame<'_>,
    items: &mut Sink<'_, 'py>,
) -> Result<(), Stop> {
    let payload = frame.payload;
    if !framing.is_binary() {
        if envelope.has_keyring() {
            return Err(Stop::Fatal(CodecError::decrypt(
                "plaintext ndjson frame reached a codec with a keyring",
            )));
        }
        return push_message(py, json, payload, frame, items);
    }
    if payload.first() != Some(&envelope::MAGIC) && !envelope.has_keyring() {
        return push_message(py, json, payload, frame, items);
    }
    let offset = frame.offset;
    let opened = if payload.len() >= DETACH_MIN {
        py.detach(|| envelope.open(payload, offset))
    } else {
        envelope.open(payload, offset)
    };
    if let Ok(opened) = &opened {
        budget.inflated = budget
            .inflated
            .saturating_add(opened.body.len().saturating_sub(payload.len()));
    }
    let max_batch = budget.max_batch;
    match opened {
        Ok(opened) if opened.control => Ok(()),
        Ok(opened) if opened.multi => {
            // Counted first (a walk over the record headers, nothing built): an envelope over the budget is one
            // item, not a record's worth of work for each of millions of records.
            if envelope::split_records(&opened.body).take(max_batch + 1).count() > max_batch {
                let detail = format!("multi envelope of more than {max_batch} records (max_batch)");
                return Ok(items.append(invalid_request_item(py, &detail, None)?)?);
            }
            for record in envelope::split_records(&opened.body) {
                match record {
                    Ok(message) => push_message(py, json, message, frame, items)?,
                    Err(CodecError::Parse { detail }) => items.append(parse_error_item(py, &detail)?)?,
                    Err(error) => return Err(Stop::Fatal(error)),
                }
            }
            Ok(())
        }
        Ok(opened) => push_message(py, json, &opened.body, frame, items),
        Err(CodecError::Parse { detail }) => Ok(items.append(parse_error_item(py, &detail)?)?),
        Err(error) => Err(Stop::Fatal(error)),
    }
}

/// Parse one message and append its item: the dict or batch, or a `ParseError`/`InvalidRequest`.
fn push_message<'py>(
    py: Python<'py>,
    builder: &mut Decoder,
    json: &[u8],
    frame: &Frame<'_>,
    items: &mut Sink<'_, 'py>,
) -> Result<(), Stop> {
    let mut recorded = Recorded::default();
    let Decoded { value, object } = match builder.decode(py, json, &mut recorded) {
        Ok(decoded) => decoded,
        Err(DecodeError::Python(error)) => return Err(Stop::Python(error)),
        Err(DecodeError::Batch(limit)) if !frame.unterminated => {
            let detail = format!("a batch of more than {limit} elements (max_batch)");
            items.append(invalid_request_item(py, &detail, None)?)?;
            return Ok(());
        }
        Err(_) if frame.unterminated => {
            return Err(Stop::Fatal(CodecError::framing(
                format!("input ended mid-frame, {} bytes buffered", json.len()),
                frame.offset,
            )));
        }
        Err(error) => {
            items.append(parse_error_item(py, &error.description(json))?)?;
            return Ok(());
        }
    };
    if object {
        // A top-level object: its members were recorded while it was built, no lookups needed.
        match jsonrpc::classify(&recorded.node()) {
            Ok(_) => items.append(value)?,
            Err(detail) => items.append(invalid_request_item(py, detail, answerable_id(&value))?)?,
        }
        return Ok(());
    }
    match jsonrpc::classify_top(&PyNode(value.clone())) {
        TopLevel::Message(_) => items.append(value)?,
        TopLevel::Invalid(detail) => items.append(invalid_request_item(py, detail, answerable_id(&value))?)?,
        TopLevel::Batch => {
            let list = value.cast::<PyList>().map_err(PyErr::from)?;
            if list.is_empty() {
                items.append(invalid_request_item(py, jsonrpc::EMPTY_BATCH, None)?)?;
                return Ok(());
            }
            for (i, element) in list.iter().enumerate() {
                if let Err(detail) = jsonrpc::classify(&PyNode(element.clone())) {
                    list.set_item(i, invalid_request_item(py, detail, answerable_id(&element))?)?;
                }
            }
            items.append(value)?;
        }
    }
    Ok(())
}

/// The message's id when a server could answer with it (string or integer).
fn answerable_id<'py>(msg: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    PyNode(msg.clone())
        .member("id")
        .filter(|id| matches!(id.kind(), JsonKind::Str | JsonKind::Int))
        .map(|id| id.0)
}

/// Copy a bytes-like object's contents (at most `limit` bytes of them) into `out` (which is empty).
pub(crate) fn copy_buffer_into(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    limit: Option<usize>,
    out: &mut Vec<u8>,
) -> PyResult<()> {
    if copy_contiguous_into(data, limit, out)? {
        return Ok(());
    }
    match PyBuffer::<u8>::get(data) {
        Ok(buffer) => {
            reserve_input(out, buffer.item_count())?;
            out.resize(buffer.item_count(), 0);
            buffer.copy_to_slice(py, out)?;
            if let Some(n) = limit {
                out.truncate(n);
            }
            Ok(())
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "feed() expects bytes, bytearray or memoryview, not {}",
            type_name(data)
        ))),
    }
}

/// The common case of [`copy_buffer_into`] (a memoryview of the transports' read buffer, a bytearray): one
/// copy straight from a contiguous buffer, without `PyBuffer`'s boxed view and a zero-fill of `out` first.
/// False, with `out` untouched and no error set, for anything that does not export a contiguous buffer.
#[allow(unsafe_code)]
fn copy_contiguous_into(data: &Bound<'_, PyAny>, limit: Option<usize>, out: &mut Vec<u8>) -> PyResult<bool> {
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
    // SAFETY: the GIL is held (`data` is bound); PyObject_GetBuffer fills `view` on success (returns 0) and
    // sets an exception on failure, which is cleared here (the caller then takes the general path).
    if unsafe { ffi::PyObject_GetBuffer(data.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_SIMPLE) } != 0 {
        drop(PyErr::take(data.py()));
        return Ok(false);
    }
    // SAFETY: filled by the successful call above.
    let view = unsafe { view.assume_init_mut() };
    let mut copied = Ok(true);
    if let (false, Ok(len)) = (view.buf.is_null(), usize::try_from(view.len)) {
        let len = limit.map_or(len, |n| n.min(len));
        copied = reserve_input(out, len).map(|()| {
            // SAFETY: a PyBUF_SIMPLE view is `len` contiguous bytes at `buf`, valid until released below;
            // nothing runs Python code (which could resize the exporter) while they are copied.
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(view.buf.cast::<u8>(), len) });
            true
        });
    }
    // SAFETY: releases the view obtained above, once.
    unsafe { ffi::PyBuffer_Release(view) };
    copied
}

/// Room for a copy of `len` input bytes, or `MemoryError` (never an abort) when the allocator refuses.
fn reserve_input(out: &mut Vec<u8>, len: usize) -> PyResult<()> {
    out.try_reserve_exact(len)
        .map_err(|_| PyMemoryError::new_err(format!("cannot allocate {len} bytes to copy the input")))
}

/// A budget argument: an integer >= 1.
fn positive(value: usize, name: &str) -> PyResult<usize> {
    if value == 0 {
        return Err(PyValueError::new_err(format!("{name} must be > 0")));
    }
    Ok(value)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string())
}

fn check_message_type(msg: &Bound<'_, PyAny>) -> PyResult<()> {
    if msg.is_instance_of::<PyDict>() || msg.is_instance_of::<PyList>() {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!(
            "encode() expects a dict (message), a list (batch) or bytes (serialized JSON), not {}",
            type_name(msg)
        )))
    }
}

fn check_ndjson_bytes(bytes: &[u8], framing: Framing) -> PyResult<()> {
    if framing == Framing::Ndjson && memchr::memchr(b'\n', bytes).is_some() {
        return Err(PyValueError::new_err(
            "serialized JSON contains a raw newline, which ndjson framing cannot carry",
        ));
    }
    Ok(())
}

/// Serialize a message (or copy pre-serialized bytes) into `out` for an envelope body.
fn write_message(out: &mut Vec<u8>, msg: &Bound<'_, PyAny>, framing: Framing) -> PyResult<()> {
    if let Ok(bytes) = msg.cast::<PyBytes>() {
        let bytes = bytes.as_bytes();
        check_ndjson_bytes(bytes, framing)?;
        out.extend_from_slice(bytes);
        return Ok(());
    }
    check_message_type(msg)?;
    let at = out.len();
    write_value(out, msg).inspect_err(|_| out.truncate(at))
}

fn keyring_arc(obj: &Bound<'_, PyAny>) -> PyResult<Arc<KeyRing>> {
    match obj.cast::<Keyring>() {
        Ok(keyring) => Ok(keyring.get().inner()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "keyring must be an rpcwire.Keyring, not {}",
            type_name(obj)
        ))),
    }
}

/// Python-side dict keys the validator asks for, interned once.
fn py_key<'py>(py: Python<'py>, key: &str) -> Bound<'py, PyString> {
    match key {
        "jsonrpc" => pyo3::intern!(py, "jsonrpc").clone(),
        "id" => pyo3::intern!(py, "id").clone(),
        "method" => pyo3::intern!(py, "method").clone(),
        "params" => pyo3::intern!(py, "params").clone(),
        "result" => pyo3::intern!(py, "result").clone(),
        "error" => pyo3::intern!(py, "error").clone(),
        "code" => pyo3::intern!(py, "code").clone(),
        "message" => pyo3::intern!(py, "message").clone(),
        other => PyString::new(py, other),
    }
}

/// A Python object seen by the JSON-RPC rules (a newtype: the rules' trait and `Bound` live in other crates).
struct PyNode<'py>(Bound<'py, PyAny>);

impl JsonNode for PyNode<'_> {
    fn kind(&self) -> JsonKind {
        let value = &self.0;
        if value.is_instance_of::<PyDict>() {
            JsonKind::Object
        } else if value.is_instance_of::<PyString>() {
            JsonKind::Str
        } else if value.is_none() {
            JsonKind::Null
        } else if value.is_instance_of::<PyBool>() {
            JsonKind::Bool
        } else if value.is_instance_of::<PyInt>() {
            JsonKind::Int
        } else if value.is_instance_of::<PyList>() {
            JsonKind::Array
        } else if value.is_instance_of::<PyFloat>() {
            JsonKind::Float
        } else {
            JsonKind::Other
        }
    }

    fn member(&self, key: &str) -> Option<Self> {
        let dict = self.0.cast::<PyDict>().ok()?;
        dict.get_item(py_key(self.0.py(), key)).ok().flatten().map(PyNode)
    }

    fn is_str(&self, s: &str) -> bool {
        self.0
            .cast::<PyString>()
            .ok()
            .is_some_and(|v| v.to_str().is_ok_and(|v| v == s))
    }
}

/// `rpcwire.kind(msg)`: "request", "notification", "response" or "error".
#[pyfunction]
#[pyo3(signature = (msg, /))]
pub fn kind(msg: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    jsonrpc::classify(&PyNode(msg.clone()))
        .map(jsonrpc::MessageKind::name)
        .map_err(|detail| PyValueError::new_err(format!("not a JSON-RPC 2.0 message: {detail}")))
}
