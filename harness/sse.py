"""One incremental Server-Sent Events decoder and a matching encoder.

The decoder follows the WHATWG HTML "event stream interpretation" rules:

- lines end in CRLF, LF or a lone CR, and a CR at the end of one chunk may be the first half of a CRLF
  that completes in the next;
- one leading U+FEFF byte order mark is ignored;
- a line starting with ``:`` is a comment; a line without a colon is a field name with an empty value;
  one space after the colon is dropped;
- ``data`` lines accumulate (joined by LF), ``event`` sets the type, ``id`` sets the last event id unless it
  holds NUL, ``retry`` is kept only when it is all ASCII digits; other fields are ignored;
- a blank line dispatches the event; an event with no data is not dispatched;
- an event that the stream ends in the middle of is discarded (``flush`` reports it as ``truncated``);
- UTF-8 is decoded incrementally, so a character split across chunks decodes once; invalid bytes become
  U+FFFD rather than an exception.

The same class serves every reader of a stream in this project: the reference gateway's upstream client,
the scenario runner's recorder and the mitmproxy addons. ``feed`` takes bytes as they arrive and returns
the events completed by them; ``flush`` ends the stream.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "decode_all", "encode_comment", "encode_event"]

_BOM = "\ufeff"
_UTF8_DECODER = codecs.getincrementaldecoder("utf-8")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event. ``event`` is ``"message"`` when the stream named none."""

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None

    def is_done_marker(self) -> bool:
        """True for the ``data: [DONE]`` terminator that Workers AI and OpenAI-style streams send."""
        return self.data == "[DONE]"


class SSEDecoder:
    """Incremental decoder: ``feed(chunk) -> events``, then ``flush() -> events`` at the end of the stream."""

    def __init__(self) -> None:
        self._utf8 = _UTF8_DECODER(errors="replace")
        self._text = ""  # decoded text not yet split into complete lines
        self._started = False  # whether the BOM check has run
        self._pending_cr = False  # the last chunk ended in CR: a following LF belongs to it
        self._data: list[str] = []
        self._event_type = ""
        self._last_event_id = ""
        self._retry: int | None = None
        self._field_seen = False  # a field line has been read since the last dispatch
        self.comments = 0
        """How many comment lines (for example keep-alives) have been read."""
        self.truncated = False
        """Set by ``flush`` when the stream ended inside an event or a line."""

    @property
    def last_event_id(self) -> str:
        return self._last_event_id

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        text = self._utf8.decode(chunk)
        return self._consume(text, final=False)

    def flush(self) -> list[ServerSentEvent]:
        """End the stream: decode what is buffered; an unterminated event is discarded, as the spec says."""
        text = self._utf8.decode(b"", final=True)
        events = self._consume(text, final=True)
        if self._text or self._field_seen:
            self.truncated = True
        self._text = ""
        self._reset_event()
        return events

    def _consume(self, text: str, *, final: bool) -> list[ServerSentEvent]:
        if not self._started:
            if not text:
                return []
            self._started = True
            if text.startswith(_BOM):
                text = text[1:]
        if self._pending_cr:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        buffer = self._text + text
        events: list[ServerSentEvent] = []
        if "\r" not in buffer:
            # Every line ends in LF (what Workers AI and the fake send): split in C, and read the common
            # ``data:`` field without the general line handling.
            lines = buffer.split("\n")
            self._text = lines.pop()
            for line in lines:
                if line.startswith("data:"):
                    self._data.append(line[6:] if line.startswith(" ", 5) else line[5:])
                    self._field_seen = True
                    continue
                event = self._line(line)
                if event is not None:
                    events.append(event)
            return events
        start = 0
        length = len(buffer)
        while start < length:
            cr = buffer.find("\r", start)
            lf = buffer.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                end, next_start = lf, lf + 1
            elif cr + 1 < length:
                end = cr
                next_start = cr + 2 if buffer[cr + 1] == "\n" else cr + 1
            else:
                # A CR at the very end: the line is complete, but an LF may still follow in the next chunk.
                end, next_start = cr, cr + 1
                self._pending_cr = not final
            event = self._line(buffer[start:end])
            if event is not None:
                events.append(event)
            start = next_start
        self._text = buffer[start:]
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._field_seen = True
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\x00" not in value:
                self._last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._reset_event()
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event_type or "message",
            id=self._last_event_id,
            retry=self._retry,
        )
        self._reset_event()
        return event

    def _reset_event(self) -> None:
        self._data = []
        self._event_type = ""
        self._retry = None
        self._field_seen = False


def decode_all(body: bytes) -> list[ServerSentEvent]:
    """Decode a complete stream held in memory."""
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.flush()


def encode_event(
    data: str, *, event: str | None = None, id: str | None = None, retry: int | None = None
) -> bytes:
    """Encode one event with LF line ends; multi-line data becomes several ``data:`` lines."""
    lines: list[str] = []
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError(f"an SSE event name cannot contain a line break: {event!r}")
        lines.append(f"event: {event}")
    if id is not None:
        if any(ch in id for ch in "\r\n\x00"):
            raise ValueError(f"an SSE id cannot contain CR, LF or NUL: {id!r}")
        lines.append(f"id: {id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    for part in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        lines.append(f"data: {part}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """A comment line, as used for keep-alives (``: keep-alive``)."""
    if "\n" in text or "\r" in text:
        raise ValueError("an SSE comment cannot contain a line break")
    return f":{' ' + text if text else ''}\n\n".encode()
