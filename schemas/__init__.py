"""What a footfall event is: kinds, fields, validation, pseudonyms and message decoding."""

from footfall.schemas.events import (
    KINDS,
    SCHEMA_VERSION,
    DoorEvent,
    Event,
    Heartbeat,
    Limits,
    PosEvent,
    QueueEvent,
    VisitEvent,
    parse_event,
    parse_ts_ms,
)
from footfall.schemas.fields import Field, InvalidEvent
from footfall.schemas.messages import Decoded, Reject, decode_message
from footfall.schemas.privacy import Pseudonymizer

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "Decoded",
    "DoorEvent",
    "Event",
    "Field",
    "Heartbeat",
    "InvalidEvent",
    "Limits",
    "PosEvent",
    "Pseudonymizer",
    "QueueEvent",
    "Reject",
    "VisitEvent",
    "decode_message",
    "parse_event",
    "parse_ts_ms",
]
