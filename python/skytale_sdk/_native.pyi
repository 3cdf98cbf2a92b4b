"""Type stubs for the native extension ``skytale_sdk._native``, checked against the built module by stubtest
(scripts/lint.sh)."""

import os
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Literal, TypeVar, final, overload

__all__ = [
    "SkytaleClient",
    "Channel",
    "MessageIterator",
    "Message",
    "SyncRequest",
    "SkytaleError",
    "MlsError",
    "TransportError",
    "ChannelError",
    "AuthError",
    "QuotaExceededError",
    "DataDirError",
    "_interpreter_exiting",
    "__version__",
]

__version__: str

class SkytaleError(RuntimeError):
    """Base class of every Skytale error."""

    code: str

class MlsError(SkytaleError): ...
class TransportError(SkytaleError): ...
class ChannelError(SkytaleError): ...
class AuthError(SkytaleError): ...
class QuotaExceededError(SkytaleError): ...
class DataDirError(SkytaleError): ...

@final
class Message:
    """A received message with its metadata (from ``Channel.messages(with_meta=True)``)."""

    @property
    def payload(self) -> bytes: ...
    @property
    def sender(self) -> bytes:
        """The sender's identity bytes."""
    @property
    def seq(self) -> int:
        """The channel sequence number the relay assigned; the same for every member."""
    @property
    def epoch(self) -> int:
        """The MLS epoch the message was sent in."""
    @property
    def timestamp(self) -> float | None:
        """When the relay stored the message, in seconds since the Unix epoch (the relay's clock, the same for
        every member); ``None`` from a relay that does not send it."""
    def __bytes__(self) -> bytes: ...

_Item = TypeVar("_Item", bytes, Message)

@final
class MessageIterator(Iterator[_Item]):
    """Blocks (GIL released) until the next message; ends when the channel or client is closed.

    Generic only for type checkers: it yields ``bytes``, or ``Message`` when created with ``with_meta=True``.
    """

    def __iter__(self) -> MessageIterator[_Item]: ...
    def __next__(self) -> _Item: ...
    def next_batch(self, max: int = 256) -> list[_Item]:
        """Waits like ``next()`` for the next message, then returns it with up to ``max - 1`` more that are already
        waiting (taken from the inbox in one store transaction), in order. ``[]`` once the iterator has ended;
        raises what ``next()`` raises (an error comes on its own, after the messages before it)."""

@final
class SyncRequest:
    """A ``Channel.sync()`` whose relay head query is already on its way (``Channel.start_sync()``)."""

    def wait(self, timeout: float | None = None) -> bool:
        """As ``Channel.sync(timeout)``, for the head asked when the request was started. Once per request."""

@final
class Channel:
    """An encrypted channel; every method may be called from any thread."""

    @property
    def name(self) -> str: ...
    @property
    def epoch(self) -> int: ...
    def ensure_active(self) -> None:
        """Raises the channel's ``ChannelError`` if it can no longer be used: removed, left, or gone from the relay
        (whose data was reset)."""
    def add_member(self, key_package: bytes) -> bytes:
        """Adds the key package's owner; returns the Welcome it joins with."""
    def add_members(self, key_packages: list[bytes]) -> bytes:
        """Adds every key package's owner in one commit; returns the one Welcome they all join with."""
    def remove_member(self, identity: bytes) -> None: ...
    def leave(self) -> None: ...
    def members(self) -> list[bytes]: ...
    def rotate_key(self) -> None:
        """Commits a fresh leaf key for this member (new epoch, forward secrecy)."""
    def send(self, payload: bytes) -> None:
        """Returns once the relay has durably accepted the message. Concurrent calls overlap their round trips.
        A payload too large for the relay once encrypted raises ``ChannelError`` before anything is sent, naming
        the largest payload that fits."""
    def send_many(self, payloads: Sequence[bytes]) -> None:
        """Sends every payload in order (one state write, publishes pipelined on the stream); returns once the
        relay durably stored all of them. A payload too large for the relay once encrypted raises ``ChannelError``
        before anything is sent; a later failure raises with a message saying how many of the batch were stored
        (the first ones, in order)."""
    @overload
    def messages(self, with_meta: Literal[False] = False, timeout: float | None = None) -> MessageIterator[bytes]: ...
    @overload
    def messages(self, with_meta: Literal[True], timeout: float | None = None) -> MessageIterator[Message]: ...
    def sync(self, timeout: float | None = None) -> bool:
        """Waits until every message the relay held for this channel when called is in the inbox ``messages()``
        reads (this member's own messages are applied without entering it). ``False`` if ``timeout`` seconds
        passed first or the channel or client was closed meanwhile."""
    def start_sync(self) -> SyncRequest:
        """Sends ``sync()``'s head query now and returns at once; ``wait()`` on the result finishes it. The head
        covers what the relay held when this was called."""
    @property
    def delivered_seq(self) -> int:
        """Seq of the newest message delivered to the inbox, already read or still waiting (0: none). After
        ``sync()`` returned ``True``, a reader has everything the relay held at that call once it has read the
        message with this seq."""
    def close(self) -> None:
        """Ends this channel's iterators in this process."""

@final
class SkytaleClient:
    """Connects to a relay; creates, joins and reopens channels stored in ``data_dir``.

    ``endpoint`` is the relay's URL (``http://`` for loopback, ``https://`` with TLS), or several separated by
    commas: the client links to the first that answers and moves to the next whenever its link fails, is lost or
    the relay drains, resuming every channel where it stopped. A malformed list raises ``TransportError`` naming
    the bad entry, before anything connects."""

    def __new__(
        cls,
        endpoint: str,
        data_dir: str | os.PathLike[str],
        identity: bytes | str,
        api_key: str | None = None,
        api_url: str | None = None,
    ) -> SkytaleClient: ...
    @property
    def identity(self) -> bytes: ...
    @property
    def connected(self) -> bool:
        """Whether the client has a stream to the relay right now. While it has none (the relay is down or
        unreachable) it reconnects on its own: receiving finds nothing new and sends wait."""
    def on_connection_change(self, callback: Callable[[bool], object] | None) -> None:
        """Calls ``callback(connected)`` each time the stream to the relay comes up or goes down, in order, from a
        thread of the SDK's own; replaces the previous callback, and ``None`` removes it. Nothing is reported once
        ``close()`` began. An exception the callback raises goes to ``sys.unraisablehook``."""
    @property
    def max_payload(self) -> int:
        """The relay's limit on one encrypted message, in bytes (default 1 MiB). The largest payload ``send``
        accepts is smaller by the encryption's overhead, up to a quarter; a refused send names it."""
    def create_channel(self, name: str) -> Channel: ...
    def invite(self, channel: str, max_uses: int = 1, ttl: int = 3600) -> str:
        """An invite token (``skt_inv_...``) for ``channel``, redeemable ``max_uses`` times within ``ttl`` seconds;
        this client admits the joiners that redeem it. Needs ``api_key`` and ``api_url``."""
    def join_with_token(self, channel: str, token: str, timeout: float = 60.0) -> Channel:
        """Joins ``channel`` with an invite token, waiting up to ``timeout`` seconds to be admitted."""
    def generate_key_package(self) -> bytes: ...
    def join_channel(self, name: str, welcome: bytes) -> Channel: ...
    def channels(self) -> list[str]: ...
    def open_channel(self, name: str) -> Channel: ...
    def close(self) -> None:
        """Stops the client's stream and threads; running iterators end."""
    def __enter__(self) -> SkytaleClient: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None: ...

def _interpreter_exiting() -> None:
    """The native module's own ``atexit`` hook (registered on import): closes the gate that parks threads whose
    native call returns during interpreter finalization (docs/python.md, "Interpreter exit")."""
