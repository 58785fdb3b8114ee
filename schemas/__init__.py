"""What a footfall event is (kinds, fields, validation, pseudonyms, decoding) and what a published record is."""

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
from footfall.schemas.records import RECORD_KINDS, RecordKind, record_schema, register_record_kind

__all__ = [
    "KINDS",
    "RECORD_KINDS",
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
    "RecordKind",
    "Reject",
    "VisitEvent",
    "decode_message",
    "parse_event",
    "parse_ts_ms",
    "record_schema",
    "register_record_kind",
]
