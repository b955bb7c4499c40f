//! `rpcwire._core.ProtocolCore`: the per-read and per-write paths of rpcwire's asyncio protocol.
//!
//! `rpcwire._protocol.RpcProtocol` subclasses this class; asyncio calls `get_buffer`, `buffer_updated` and
//! `data_received` here directly, and `Transport.send` calls `send_nowait`. Everything a read or a write does
//! on the common path (feed the codec, queue or hand out the items, wake a receiver, encode the sends and
//! write them, keep the counts) runs here, without a Python frame per step: on a 150-byte round trip that
//! glue was a tenth of the latency. The rare paths (a fatal stream error, a handler that raised, flow
//! control, closing) stay in Python, which this class calls by method name. The state is this class's alone:
//! Python reads it through read-only attributes and changes it only through the named transitions below
//! (`_end_input`, `_end_output`, `_start_handler`, ...), each of which keeps its own invariant.
//!
//! No borrow of `self` is held across a call into Python: a handler, a transport's `write` or a future's
//! callbacks may call back into this object.
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice};
use pyo3::{intern, PyTraverseError, PyVisit};

use crate::py_codec::{copy_buffer_into, Codec};

/// Write-buffer high-water mark: above it `send` waits.
const WRITE_HIGH_WATER: usize = 2 * 1024 * 1024;
/// Write-buffer low-water mark: below it waiting senders resume.
const WRITE_LOW_WATER: usize = 512 * 1024;
/// Most messages held for coalescing before an inline flush.
const FLUSH_MAX_MESSAGES: usize = 1024;
/// Fewest, for very large messages.
const FLUSH_MIN_MESSAGES: usize = 8;
/// The bound before any message size is known.
const FLUSH_FIRST_MESSAGES: usize = 64;
/// The coalescing bound adapts so that one inline flush encodes about this many bytes.
const FLUSH_TARGET_BYTES: usize = 256 * 1024;
/// Unread items that make the protocol stop reading.
const QUEUE_MAX_ITEMS: usize = 4096;
/// Unread bytes (as received) that make the protocol stop reading.
const QUEUE_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Reads longer than this, for a reader (no handler), are decoded a slice at a time as the reader takes the
/// items: a 256 KiB read of small messages decoded at once is ~1700 dicts alive together until the last is
/// taken, which sets off `CPython`'s cyclic GC over them again and again (a tenth of a server's CPU).
const LAZY_MIN: usize = 32 * 1024;
/// How much of such a read is decoded at a time (~80 small messages: fewer live containers than the GC's
/// first threshold).
const LAZY_SLICE: usize = 16 * 1024;
/// The most of a read kept for lazy decoding between reads (a bigger buffer is freed once decoded).
const LAZY_KEEP: usize = 256 * 1024;

/// The state of one connection and its hot paths (see the module docs; `RpcProtocol` documents the rules).
#[pyclass(module = "rpcwire._core", subclass)]
#[allow(clippy::struct_excessive_bools)] // each flag is its own attribute to the Python half
pub struct ProtocolCore {
    #[pyo3(get, name = "_codec")]
    codec: Py<PyAny>,
    /// `codec` when it is an `rpcwire.Codec`: called without going through Python.
    fast: Option<Py<Codec>>,
    #[pyo3(get, name = "_loop")]
    event_loop: Py<PyAny>,
    /// The read side's asyncio transport.
    #[pyo3(get, name = "_rt")]
    rt: Option<Py<PyAny>>,
    /// The write side's asyncio transport.
    #[pyo3(get, name = "_wt")]
    wt: Option<Py<PyAny>>,
    /// Decoded items waiting for `receive` (a `collections.deque`).
    #[pyo3(get, name = "_queue")]
    queue: Py<PyAny>,
    /// Futures of receivers waiting for an item (or for the end).
    #[pyo3(get, name = "_waiters")]
    waiters: Py<PyList>,
    /// Futures of senders waiting for the write buffer to drain.
    #[pyo3(get, name = "_write_waiters")]
    write_waiters: Py<PyList>,
    /// Messages sent and not yet encoded: they leave together in the next flush.
    #[pyo3(get, name = "_out")]
    out: Py<PyList>,
    /// `Transport.handle`'s function, while it runs.
    #[pyo3(get, name = "_handler")]
    handler: Option<Py<PyAny>>,
    /// What the handler raised (or an answer's encoding error), for `handle` to raise.
    #[pyo3(get, name = "_handler_error")]
    handler_error: Option<Py<PyAny>>,
    /// A message could not be encoded: the next `send` raises this.
    #[pyo3(get, name = "_send_error")]
    send_error: Option<Py<PyAny>>,
    /// While a send flushes inline: how many messages at the end of `out` that send call handed over (an
    /// oversize one among them is that call's error; any other is answered for, see `_encode_each`).
    #[pyo3(get, name = "_inline_sends")]
    inline_sends: usize,
    /// The buffer `get_buffer` handed out (the thread's shared read buffer).
    rbuf: Option<Py<PyAny>>,
    /// A read not decoded yet (after its first `pending_at` bytes): see [`LAZY_MIN`].
    pending: Vec<u8>,
    pending_at: usize,
    /// Bytes of the items waiting in `queue`, as received.
    #[pyo3(get, name = "_queued_bytes")]
    queued_bytes: usize,
    /// Bytes fed since the last items were queued (a frame in progress).
    #[pyo3(get, name = "_partial_bytes")]
    partial_bytes: usize,
    #[pyo3(get, name = "_reading_paused")]
    reading_paused: bool,
    /// Reading paused because the handler's answers wait to be written.
    #[pyo3(get, name = "_paused_for_writes")]
    paused_for_writes: bool,
    /// No more items will arrive.
    #[pyo3(get, name = "_eof")]
    eof: bool,
    /// The write side is gone (or closing): send raises.
    #[pyo3(get, name = "_closed")]
    closed: bool,
    #[pyo3(get, name = "_flush_scheduled")]
    flush_scheduled: bool,
    /// A send went out eagerly since the last read or scheduled flush: the next one coalesces instead.
    #[pyo3(get, name = "_wrote_eagerly")]
    wrote_eagerly: bool,
    /// Messages held for coalescing before an inline flush (adapts to the message size seen).
    #[pyo3(get, name = "_flush_cap")]
    flush_cap: usize,
    #[pyo3(get, name = "_write_paused")]
    write_paused: bool,
    /// The codec's session handshake is not done: sends wait in `out`, reads go through `_handshake_received`.
    #[pyo3(get, name = "_held")]
    held: bool,
    #[pyo3(get)]
    messages_in: i64,
    #[pyo3(get)]
    messages_out: i64,
    #[pyo3(get)]
    bytes_in: i64,
    #[pyo3(get)]
    bytes_out: i64,
}

/// What a flush or a feed needs from `self`, taken under a short borrow.
struct CodecRefs {
    fast: Option<Py<Codec>>,
    codec: Py<PyAny>,
}

#[pymethods]
impl ProtocolCore {
    #[classattr]
    const WRITE_HIGH_WATER: usize = WRITE_HIGH_WATER;
    #[classattr]
    const WRITE_LOW_WATER: usize = WRITE_LOW_WATER;
    #[classattr]
    const FLUSH_MAX_MESSAGES: usize = FLUSH_MAX_MESSAGES;
    #[classattr]
    const FLUSH_MIN_MESSAGES: usize = FLUSH_MIN_MESSAGES;
    #[classattr]
    const FLUSH_FIRST_MESSAGES: usize = FLUSH_FIRST_MESSAGES;
    #[classattr]
    const FLUSH_TARGET_BYTES: usize = FLUSH_TARGET_BYTES;
    #[classattr]
    const QUEUE_MAX_ITEMS: usize = QUEUE_MAX_ITEMS;
    #[classattr]
    const QUEUE_MAX_BYTES: usize = QUEUE_MAX_BYTES;

    /// One connection's state around `codec`, on `loop` (the running loop when None).
    #[new]
    #[pyo3(signature = (codec, r#loop=None))]
    fn new(py: Python<'_>, codec: Bound<'_, PyAny>, r#loop: Option<Bound<'_, PyAny>>) -> PyResult<Self> {
        let event_loop = match r#loop {
            Some(l) if !l.is_none() => l,
            _ => py
                .import(intern!(py, "asyncio"))?
                .call_method0(intern!(py, "get_running_loop"))?,
        };
        let queue = py
            .import(intern!(py, "collections"))?
            .getattr(intern!(py, "deque"))?
            .call0()?;
        let fast = codec.cast::<Codec>().ok().map(|c| c.clone().unbind());
        let held = match &fast {
            Some(c) => !c.bind(py).borrow().established(),
            // A codec written in Python has a handshake to wait for only if it says so.
            None => match codec.getattr_opt(intern!(py, "established"))? {
                Some(established) => !established.is_truthy()?,
                None => false,
            },
        };
        Ok(Self {
            fast,
            codec: codec.unbind(),
            event_loop: event_loop.unbind(),
            rt: None,
            wt: None,
            queue: queue.unbind(),
            waiters: PyList::empty(py).unbind(),
            write_waiters: PyList::empty(py).unbind(),
            out: PyList::empty(py).unbind(),
            handler: None,
            handler_error: None,
            send_error: None,
            inline_sends: 0,
            rbuf: None,
            pending: Vec::new(),
            pending_at: 0,
            queued_bytes: 0,
            partial_bytes: 0,
            reading_paused: false,
            paused_for_writes: false,
            eof: false,
            closed: false,
            flush_scheduled: false,
            wrote_eagerly: false,
            flush_cap: FLUSH_FIRST_MESSAGES,
            write_paused: false,
            held,
            messages_in: 0,
            messages_out: 0,
            bytes_in: 0,
            bytes_out: 0,
        })
    }

    /// asyncio's `BufferedProtocol.get_buffer`: this thread's read buffer, shared by every connection it
    /// serves (the codec copies what it keeps before the next read), fetched once.
    #[pyo3(signature = (sizehint, /))]
    fn get_buffer(slf: &Bound<'_, Self>, sizehint: isize) -> PyResult<Py<PyAny>> {
        let _ = sizehint; // asyncio passes -1; the buffer's size is what it is
        let py = slf.py();
        if let Some(buf) = &slf.borrow().rbuf {
            return Ok(buf.clone_ref(py));
        }
        let buf = py
            .import(intern!(py, "rpcwire._protocol"))?
            .call_method0(intern!(py, "_read_buffer"))?
            .unbind();
        slf.borrow_mut().rbuf = Some(buf.clone_ref(py));
        Ok(buf)
    }

    /// asyncio's `BufferedProtocol.buffer_updated`: the first `nbytes` of the read buffer arrived.
    #[pyo3(signature = (nbytes, /))]
    fn buffer_updated(slf: &Bound<'_, Self>, nbytes: usize) -> PyResult<()> {
        let py = slf.py();
        let buf = slf.borrow().rbuf.as_ref().map(|b| b.clone_ref(py));
        let Some(buf) = buf else {
            return Err(PyRuntimeError::new_err("buffer_updated() before get_buffer()"));
        };
        Self::received(slf, buf.bind(py), Some(nbytes), nbytes)
    }

    /// Feed a chunk (pipe transports and the memory transport call this directly).
    #[pyo3(signature = (data, /))]
    fn data_received(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let len = data.len()?;
        Self::received(slf, data, None, len)
    }

    /// asyncio's `pause_writing`: `send` waits until `resume_writing`.
    fn pause_writing(&mut self) {
        self.write_paused = true;
    }

    // The state transitions of the rare paths. `RpcProtocol` (Python) decides when; this class owns the state,
    // so every change of it is one of these named steps, and Python only reads the attributes.

    /// The read side's asyncio transport is connected.
    fn _attach_reader(&mut self, transport: Py<PyAny>) {
        self.rt = Some(transport);
    }

    /// The write side's asyncio transport is connected.
    fn _attach_writer(&mut self, transport: Py<PyAny>) {
        self.wt = Some(transport);
    }

    /// No more items will arrive: receivers wake to find out.
    fn _end_input(slf: &Bound<'_, Self>) -> PyResult<()> {
        let waiters = {
            let mut this = slf.borrow_mut();
            this.eof = true;
            this.waiters.clone_ref(slf.py())
        };
        wake(waiters.bind(slf.py()))
    }

    /// Nothing more will be written: senders wake to find out (and raise `ConnectionClosed`).
    fn _end_output(slf: &Bound<'_, Self>) -> PyResult<()> {
        let waiters = {
            let mut this = slf.borrow_mut();
            this.closed = true;
            this.write_waiters.clone_ref(slf.py())
        };
        wake(waiters.bind(slf.py()))
    }

    /// Forget the messages sent but not yet encoded; returns how many there were.
    fn _drop_unsent(&mut self, py: Python<'_>) -> usize {
        let dropped = self.out.bind(py).len();
        if dropped > 0 {
            self.out = PyList::empty(py).unbind();
        }
        dropped
    }

    /// Handler mode on (`Transport.handle`); what a reader left undecoded is queued first, so the handler
    /// gets it (with the queue) before what arrives next.
    #[pyo3(signature = (handler, /))]
    fn _start_handler(slf: &Bound<'_, Self>, handler: Py<PyAny>) -> PyResult<()> {
        Self::decode_pending(slf, true)?;
        let mut this = slf.borrow_mut();
        this.handler = Some(handler);
        this.handler_error = None;
        Ok(())
    }

    /// Decode and queue the rest of a read decoded lazily (before the end of input is fed).
    fn _decode_pending(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::decode_pending(slf, true).map(|_| ())
    }

    /// Handler mode off; `error` (what the handler raised, or None) is for `handle` to raise.
    #[pyo3(signature = (error, /))]
    fn _stop_handler(&mut self, error: Option<Py<PyAny>>) {
        self.handler = None;
        self.handler_error = error;
    }

    /// The handler's error, once.
    fn _take_handler_error(&mut self) -> Option<Py<PyAny>> {
        self.handler_error.take()
    }

    /// A message could not be encoded: the next `send` raises `error` (the first such error is kept).
    fn _fail_send(&mut self, error: Py<PyAny>) {
        if self.send_error.is_none() {
            self.send_error = Some(error);
        }
    }

    /// The error the next `send` raises, once.
    fn _take_send_error(&mut self) -> Option<Py<PyAny>> {
        self.send_error.take()
    }

    /// The read transport was paused or resumed.
    fn _set_reading_paused(&mut self, paused: bool) {
        self.reading_paused = paused;
    }

    /// The handler's answers fill the write buffer: items wait (and reading stops) until `resume_writing`.
    fn _hold_for_writes(&mut self) {
        self.paused_for_writes = true;
    }

    /// asyncio's `resume_writing` came: sends go on. Returns whether items were held for it (now released).
    fn _writes_resumed(&mut self) -> bool {
        self.write_paused = false;
        std::mem::take(&mut self.paused_for_writes)
    }

    /// How many messages at the end of `_out` the send call now flushing handed over.
    fn _set_inline_sends(&mut self, count: usize) {
        self.inline_sends = count;
    }

    /// The queue was emptied outside `_take` (its items went to the handler).
    fn _queue_emptied(&mut self) {
        self.queued_bytes = 0;
    }

    /// The session handshake is done: sends no longer wait for it.
    fn _established(&mut self) {
        self.held = false;
    }

    /// Count what left other than through `flush` (a handshake frame, a message answered for or refused).
    fn _count_sent(&mut self, messages: i64, bytes: i64) {
        self.messages_out = self.messages_out.saturating_add(messages);
        self.bytes_out = self.bytes_out.saturating_add(bytes);
    }

    /// Bytes fed while no item came out of them yet (the handshake's chunk).
    fn _count_partial(&mut self, bytes: usize) {
        self.partial_bytes = self.partial_bytes.saturating_add(bytes);
    }

    /// Count `items` in and queue them, or hand them to the handler (`Transport.handle`).
    #[pyo3(signature = (items, /))]
    fn _push(slf: &Bound<'_, Self>, items: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let count = items.len()?;
        let handling = {
            let mut this = slf.borrow_mut();
            this.messages_in = this.messages_in.saturating_add(wide(count));
            if this.handler.is_some() {
                this.partial_bytes = 0;
            }
            this.handler.is_some()
        };
        if handling {
            slf.call_method1(intern!(py, "dispatch"), (items,))?;
            return Ok(());
        }
        Self::_enqueue(slf, items)
    }

    /// Queue `items` for `receive`, wake the receivers, and stop reading when the queue is full.
    #[pyo3(signature = (items, /))]
    fn _enqueue(slf: &Bound<'_, Self>, items: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let (queue, waiters) = {
            let mut this = slf.borrow_mut();
            this.queued_bytes += this.partial_bytes;
            this.partial_bytes = 0;
            (this.queue.clone_ref(py), this.waiters.clone_ref(py))
        };
        let queue = queue.bind(py);
        queue.call_method1(intern!(py, "extend"), (items,))?;
        wake(waiters.bind(py))?;
        let full = {
            let this = slf.borrow();
            !this.reading_paused && (this.queued_bytes >= QUEUE_MAX_BYTES || queue.len()? >= QUEUE_MAX_ITEMS)
        };
        if full {
            slf.call_method0(intern!(py, "_pause_reading"))?;
        }
        Ok(())
    }

    /// The next queued item, or None when the queue is empty (an item is never None). Reading resumes when
    /// the reader has drained a paused queue to a quarter of its bound.
    fn _take(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyAny>>> {
        let py = slf.py();
        let queue = slf.borrow().queue.clone_ref(py).into_bound(py);
        let mut queued = queue.len()?;
        if queued == 0 {
            if !slf.borrow().has_pending() {
                return Ok(None);
            }
            Self::decode_some(slf)?;
            queued = queue.len()?;
            if queued == 0 {
                // The rest of the read held no whole message: the queue is empty now, so reading resumes if
                // it was paused (as after the last item is taken).
                Self::_after_pop(slf)?;
                return Ok(None);
            }
        }
        let item = queue.call_method0(intern!(py, "popleft"))?;
        if queued == 1 || slf.borrow().reading_paused {
            Self::_after_pop(slf)?;
        }
        Ok(Some(item.unbind()))
    }

    /// Called by a reader after it took an item and either the queue is empty or reading is paused.
    fn _after_pop(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let queue = slf.borrow().queue.clone_ref(py);
        let queued = queue.bind(py).len()?;
        let resume = {
            let mut this = slf.borrow_mut();
            if queued == 0 && !this.has_pending() {
                this.queued_bytes = 0;
            }
            this.reading_paused && queued <= QUEUE_MAX_ITEMS / 4 && this.queued_bytes < QUEUE_MAX_BYTES && !this.eof
        };
        if resume {
            slf.call_method0(intern!(py, "_resume_reading"))?;
        }
        Ok(())
    }

    /// A future the next item (or the end) completes, for `Transport.receive` once `_take` found the queue
    /// empty: await it, then always `_woken` it. None when no item can come (the end, or `closing`: the
    /// caller's own state says the general path must run).
    #[pyo3(signature = (closing, /))]
    fn _new_waiter(slf: &Bound<'_, Self>, closing: bool) -> PyResult<Option<Py<PyAny>>> {
        let py = slf.py();
        let (event_loop, waiters) = {
            let this = slf.borrow();
            if this.eof || closing {
                return Ok(None);
            }
            (this.event_loop.clone_ref(py), this.waiters.clone_ref(py))
        };
        let fut = event_loop.bind(py).call_method0(intern!(py, "create_future"))?;
        waiters.bind(py).append(&fut)?;
        Ok(Some(fut.unbind()))
    }

    /// After the wait on a `_new_waiter` future, however it ended: `_drop_waiter` it, then `_take`.
    #[pyo3(signature = (fut, /))]
    fn _woken(slf: &Bound<'_, Self>, fut: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        Self::_drop_waiter(slf, fut)?;
        Self::_take(slf)
    }

    /// After a wait on `_new_waiter`: `drop_waiter(fut, self._waiters)`.
    #[pyo3(signature = (fut, /))]
    fn _drop_waiter(slf: &Bound<'_, Self>, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let waiters = slf.borrow().waiters.clone_ref(py);
        forget_waiter(fut, waiters.bind(py))
    }

    /// `Transport.send` without waiting: queue `msg` for this iteration's write (or write it now, see
    /// `_first_send`). False, with nothing queued, when the send must take the general path: the write
    /// buffer is full, the connection is closed (or has no write side yet) or at its end (`redials`: a
    /// reconnecting client), or an earlier message could not be encoded.
    #[pyo3(signature = (msg, redials, /))]
    fn send_nowait(slf: &Bound<'_, Self>, msg: &Bound<'_, PyAny>, redials: bool) -> PyResult<bool> {
        let py = slf.py();
        let (out, scheduled, cap) = {
            let this = slf.borrow();
            if this.write_paused
                || this.closed
                || this.wt.is_none()
                || this.send_error.is_some()
                || (this.eof && redials)
            {
                return Ok(false);
            }
            (this.out.clone_ref(py), this.flush_scheduled, this.flush_cap)
        };
        let out = out.bind(py);
        out.append(msg)?;
        if scheduled && out.len() < cap {
            return Ok(true);
        }
        slf.borrow_mut().inline_sends = 1;
        let flushed = if scheduled {
            Self::flush(slf)
        } else {
            Self::_first_send(slf)
        };
        let mut this = slf.borrow_mut();
        this.inline_sends = 0;
        flushed?;
        // This message could not be encoded: the general path raises its error from this call.
        Ok(this.send_error.is_none())
    }

    /// A send found no flush scheduled: write now, or schedule the coalesced write.
    ///
    /// The first send after a read (or after the last scheduled flush) leaves at once, so a lone request or
    /// reply pays no extra loop iteration, and nothing is scheduled behind it. The sends that follow coalesce
    /// until a flush scheduled for the next iteration. (When the transport still buffers earlier data, that
    /// first write only joins its buffer: no system call, and no need to ask for its size first.)
    fn _first_send(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        if !slf.borrow().wrote_eagerly {
            slf.borrow_mut().wrote_eagerly = true;
            return Self::flush(slf);
        }
        let event_loop = {
            let mut this = slf.borrow_mut();
            this.flush_scheduled = true;
            this.event_loop.clone_ref(py)
        };
        let callback = slf.getattr(intern!(py, "_scheduled_flush"))?;
        event_loop
            .bind(py)
            .call_method1(intern!(py, "call_soon"), (callback,))?;
        Ok(())
    }

    fn _scheduled_flush(slf: &Bound<'_, Self>) -> PyResult<()> {
        {
            let mut this = slf.borrow_mut();
            this.flush_scheduled = false;
            this.wrote_eagerly = false;
        }
        Self::flush(slf)
    }

    /// Encode every queued message in one `encode_many` and write the result in one write.
    ///
    /// Nothing is written once `_closed` is set: by `close`, `abort`, a fatal stream error or the write side's
    /// `connection_lost`, which are every way the write transport closes but asyncio's own close after an
    /// OS error, whose transport drops writes until its `connection_lost` comes.
    fn flush(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let (out, wt, refs) = {
            let mut this = slf.borrow_mut();
            if this.held || this.out.bind(py).is_empty() {
                return Ok(());
            }
            let out = std::mem::replace(&mut this.out, PyList::empty(py).unbind());
            let wt = if this.closed {
                None
            } else {
                this.wt.as_ref().map(|w| w.clone_ref(py))
            };
            (out, wt, this.codec_refs(py))
        };
        let out = out.bind(py);
        let count = out.len();
        let Some(wt) = wt else {
            slf.call_method1(intern!(py, "_dropped"), (count,))?;
            return Ok(());
        };
        let encoded = match &refs.fast {
            Some(codec) => codec
                .bind(py)
                .try_borrow_mut()
                .map_err(PyErr::from)
                .and_then(|mut c| c.encode_many(py, out.as_any()))
                .map(Bound::into_any),
            None => refs.codec.bind(py).call_method1(intern!(py, "encode_many"), (out,)),
        };
        let data = match encoded {
            Ok(data) => {
                {
                    let mut this = slf.borrow_mut();
                    this.messages_out = this.messages_out.saturating_add(wide(count));
                }
                data
            }
            Err(error) if error.is_instance_of::<PyException>(py) => {
                slf.call_method1(intern!(py, "_encode_each"), (out,))?
            }
            Err(error) => return Err(error),
        };
        let size = data.len()?;
        if size == 0 {
            return Ok(());
        }
        wt.bind(py).call_method1(intern!(py, "write"), (data,))?;
        let mut this = slf.borrow_mut();
        this.bytes_out = this.bytes_out.saturating_add(wide(size));
        // Aim at FLUSH_TARGET_BYTES per write; grow only after full batches, at most 2x a time, so a run of
        // tiny messages (or one lone one) cannot license thousands of big ones in a single encode_many.
        let cap = this.flush_cap;
        let target = FLUSH_TARGET_BYTES.saturating_mul(count);
        if count.saturating_mul(2) > cap || target < cap.saturating_mul(size) {
            let grown = cap.max(count.saturating_mul(2));
            this.flush_cap = grown.min(target / size).clamp(FLUSH_MIN_MESSAGES, FLUSH_MAX_MESSAGES);
        }
        Ok(())
    }

    /// Write the answers of the items just handled; stop handling if one could not be serialized, and
    /// hold what comes next if they filled the write buffer.
    fn _after_dispatch(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        if !slf.borrow().out.bind(py).is_empty() {
            Self::flush(slf)?;
        }
        let (answer_failed, paused) = {
            let this = slf.borrow();
            let handling = this.handler.is_some();
            (handling && this.send_error.is_some(), handling && this.write_paused)
        };
        if answer_failed {
            // An answer could not be serialized (the others were sent): handle() raises it, as send would.
            let waiters = {
                let mut this = slf.borrow_mut();
                this.handler = None;
                this.handler_error = this.send_error.take();
                this.waiters.clone_ref(py)
            };
            wake(waiters.bind(py))?;
        } else if paused {
            slf.call_method0(intern!(py, "_pause_for_writes"))?;
        }
        Ok(())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.codec)?;
        visit.call(&self.fast)?;
        visit.call(&self.event_loop)?;
        visit.call(&self.rt)?;
        visit.call(&self.wt)?;
        visit.call(&self.queue)?;
        visit.call(&self.waiters)?;
        visit.call(&self.write_waiters)?;
        visit.call(&self.out)?;
        visit.call(&self.handler)?;
        visit.call(&self.handler_error)?;
        visit.call(&self.send_error)?;
        visit.call(&self.rbuf)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        // What can hold this object again (transports, the handler, waiting futures and their tasks, the
        // items and messages) goes; the codec and the loop cannot.
        self.rt = None;
        self.wt = None;
        self.handler = None;
        self.handler_error = None;
        self.send_error = None;
        self.rbuf = None;
        Python::attach(|py| {
            for list in [&self.waiters, &self.write_waiters, &self.out] {
                let list = list.bind(py);
                let _ = list.del_slice(0, list.len());
            }
            if self.queue.bind(py).call_method0(intern!(py, "clear")).is_err() {
                PyErr::take(py);
            }
        });
    }
}

impl ProtocolCore {
    fn has_pending(&self) -> bool {
        self.pending_at < self.pending.len()
    }

    /// Decode slices of the pending read until one yields an item (or ends the stream), or nothing is left.
    fn decode_some(slf: &Bound<'_, Self>) -> PyResult<()> {
        while slf.borrow().has_pending() {
            if Self::decode_pending(slf, false)? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Decode the next slice of the pending read (`all`: the rest of it) and queue its items; whether anything
    /// came of it. A fatal error ends the stream as in `received` (and drops what is left). Only a Rust codec
    /// leaves a read pending.
    fn decode_pending(slf: &Bound<'_, Self>, all: bool) -> PyResult<bool> {
        let py = slf.py();
        let (pending, at, codec) = {
            let mut this = slf.borrow_mut();
            let Some(codec) = this.fast.as_ref().map(|c| c.clone_ref(py)) else {
                return Ok(false);
            };
            if !this.has_pending() {
                return Ok(false);
            }
            (std::mem::take(&mut this.pending), this.pending_at, codec)
        };
        let end = if all {
            pending.len()
        } else {
            (at + LAZY_SLICE).min(pending.len())
        };
        let fed = codec.bind(py).try_borrow_mut().map_err(PyErr::from).and_then(|mut c| {
            let items = c.feed_list_slice(py, &pending[at..end])?;
            slf.borrow_mut().partial_bytes += c.take_inflated();
            Ok(items)
        });
        {
            let mut this = slf.borrow_mut();
            let mut pending = pending;
            if end == pending.len() || fed.is_err() {
                pending.clear();
                if pending.capacity() > LAZY_KEEP {
                    pending = Vec::new();
                }
                this.pending_at = 0;
            } else {
                this.pending_at = end;
            }
            this.pending = pending;
        }
        Self::queue_fed(slf, fed, 0)
    }

    fn codec_refs(&self, py: Python<'_>) -> CodecRefs {
        CodecRefs {
            fast: self.fast.as_ref().map(|c| c.clone_ref(py)),
            codec: self.codec.clone_ref(py),
        }
    }

    /// A chunk arrived: `data`, or its first `limit` bytes (the read buffer); `len` bytes in all.
    fn received(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>, limit: Option<usize>, len: usize) -> PyResult<()> {
        let py = slf.py();
        let (handler, refs) = {
            let mut this = slf.borrow_mut();
            if this.eof {
                return Ok(());
            }
            this.wrote_eagerly = false;
            this.bytes_in = this.bytes_in.saturating_add(wide(len));
            if this.held {
                drop(this);
                slf.call_method1(intern!(py, "_handshake_received"), (chunk(data, limit)?,))?;
                return Ok(());
            }
            let handler = if this.paused_for_writes {
                None
            } else {
                this.handler.as_ref().map(|h| h.clone_ref(py))
            };
            (handler, this.codec_refs(py))
        };
        if let Some(handler) = handler {
            return Self::feed_each(slf, &refs, data, limit, handler.into_bound(py));
        }
        if refs.fast.is_some() && slf.borrow().handler.is_none() {
            // Earlier bytes first, then this read: lazily when it is long.
            Self::decode_pending(slf, true)?;
            if len > LAZY_MIN && !slf.borrow().eof {
                // Empty: the rest of the last read was decoded just above.
                let mut pending = std::mem::take(&mut slf.borrow_mut().pending);
                let copied = copy_buffer_into(py, data, limit, &mut pending);
                if copied.is_err() {
                    pending.clear();
                }
                {
                    let mut this = slf.borrow_mut();
                    this.pending = pending;
                    this.pending_at = 0;
                }
                if let Err(error) = copied {
                    // As when the codec copies a read itself: a MemoryError ends the stream.
                    return Self::queue_fed(slf, Err(error), 0).map(drop);
                }
                slf.borrow_mut().partial_bytes += len;
                return Self::decode_some(slf);
            }
        }
        let fed = match &refs.fast {
            Some(codec) => codec.bind(py).try_borrow_mut().map_err(PyErr::from).and_then(|mut c| {
                let items = c.feed_list(py, data, limit)?;
                // Decompressed bytes count against the queue as if they had arrived.
                slf.borrow_mut().partial_bytes += c.take_inflated();
                Ok(items)
            }),
            None => refs
                .codec
                .bind(py)
                .call_method1(intern!(py, "feed"), (chunk(data, limit)?,))
                .and_then(|items| items.cast_into::<PyList>().map_err(PyErr::from)),
        };
        Self::queue_fed(slf, fed, len).map(drop)
    }

    /// Queue what a feed returned, `len` more bytes counting as received, or end the stream at its fatal
    /// error; whether anything came of it.
    fn queue_fed(slf: &Bound<'_, Self>, fed: PyResult<Bound<'_, PyList>>, len: usize) -> PyResult<bool> {
        let py = slf.py();
        let items = match fed {
            Ok(items) => items,
            // A fatal codec error (or a codec bug): the stream ends here.
            Err(error) if error.is_instance_of::<PyException>(py) => {
                slf.call_method1(intern!(py, "_fatal"), (error.value(py),))?;
                return Ok(true);
            }
            Err(error) => return Err(error),
        };
        slf.borrow_mut().partial_bytes += len;
        if items.is_empty() {
            return Ok(false);
        }
        Self::_push(slf, items.as_any())?;
        Ok(true)
    }

    /// Handler mode: decode a chunk, each item straight to the handler (`RpcProtocol.dispatch` has the rules).
    fn feed_each<'py>(
        slf: &Bound<'py, Self>,
        refs: &CodecRefs,
        data: &Bound<'py, PyAny>,
        limit: Option<usize>,
        function: Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let (out, cap) = {
            let this = slf.borrow();
            (this.out.clone_ref(py).into_bound(py), this.flush_cap)
        };
        let fed: PyResult<(usize, Option<Bound<'py, PyAny>>, Bound<'py, PyList>)> = match &refs.fast {
            Some(codec) => codec
                .bind(py)
                .try_borrow_mut()
                .map_err(PyErr::from)
                .and_then(|mut c| c.feed_handing(py, data, limit, function, out, cap))
                .map(|(handled, error, rest)| (handled, error.map(|e| e.into_bound(py).into_any()), rest)),
            None => refs
                .codec
                .bind(py)
                .call_method1(intern!(py, "feed_each"), (chunk(data, limit)?, function, out, cap))
                .and_then(|result| result.extract()),
        };
        match fed {
            // A fatal codec error: the items before it were handled, their answers go out.
            Err(error) if error.is_instance_of::<PyException>(py) => {
                let value = error.value(py);
                let handled: i64 = value
                    .getattr(intern!(py, "handled"))
                    .and_then(|h| h.extract())
                    .unwrap_or(0);
                {
                    let mut this = slf.borrow_mut();
                    this.messages_in = this.messages_in.saturating_add(handled);
                    this.partial_bytes = 0;
                }
                Self::flush(slf)?;
                slf.call_method1(intern!(py, "_fatal"), (value,))?;
                Ok(())
            }
            Err(error) => Err(error),
            Ok((handled, error, rest)) => {
                {
                    let mut this = slf.borrow_mut();
                    this.messages_in = this.messages_in.saturating_add(wide(handled + rest.len()));
                    this.partial_bytes = 0;
                }
                if let Some(error) = error {
                    slf.call_method1(intern!(py, "_handler_failed"), (error, rest))?;
                } else if !rest.is_empty() {
                    // The answers reached the flush cap: write them, then go on as dispatch does.
                    slf.call_method1(intern!(py, "_answers_full"), (rest,))?;
                    return Ok(());
                }
                Self::_after_dispatch(slf)
            }
        }
    }
}

/// `data`, or its first `limit` bytes as a slice of it (for a codec written in Python).
fn chunk<'py>(data: &Bound<'py, PyAny>, limit: Option<usize>) -> PyResult<Bound<'py, PyAny>> {
    match limit {
        Some(n) => data.get_item(PySlice::new(data.py(), 0, n.try_into()?, 1)),
        None => Ok(data.clone()),
    }
}

/// A count for the Python-visible counters.
fn wide(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// After a wait on a future of `waiters` (however it ended): cancel it if pending, and forget it if it was not
/// woken (a cancelled wait), so waits that time out cannot pile up in the list.
#[pyfunction(name = "drop_waiter")]
#[pyo3(signature = (fut, waiters, /))]
pub fn forget_waiter(fut: &Bound<'_, PyAny>, waiters: &Bound<'_, PyList>) -> PyResult<()> {
    let py = fut.py();
    if !fut.call_method0(intern!(py, "done"))?.is_truthy()? {
        fut.call_method0(intern!(py, "cancel"))?;
    }
    if !waiters.is_empty() {
        if let Ok(at) = waiters.index(fut) {
            waiters.del_item(at)?;
        }
    }
    Ok(())
}

/// Complete every future in `waiters` that is not done yet, and empty the list.
#[pyfunction]
#[pyo3(signature = (waiters, /))]
pub fn wake(waiters: &Bound<'_, PyList>) -> PyResult<()> {
    let py = waiters.py();
    if waiters.is_empty() {
        return Ok(());
    }
    let mut i = 0;
    while i < waiters.len() {
        let fut = waiters.get_item(i)?;
        if !fut.call_method0(intern!(py, "done"))?.is_truthy()? {
            fut.call_method1(intern!(py, "set_result"), (py.None(),))?;
        }
        i += 1;
    }
    waiters.del_slice(0, waiters.len())
}
