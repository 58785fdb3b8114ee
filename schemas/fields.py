"""Field rules shared by every event kind, and the checks that enforce them.

A `Field` says what one JSON member may hold. The same table drives the
validation in `schemas.events` and the JSON Schema files in `schemas/json/`,
so producers in other languages and this code read one set of rules.

Examples
--------
>>> count_in = Field("count_in", "integer", minimum=0, maximum=100_000)
>>> count_in.check(12)
12
>>> try:
...     count_in.check(-3)
... except InvalidEvent as exc:
...     print(exc)
field 'count_in': value -3 violates rule '>= 0'

"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_STRING_LENGTH", "Field", "InvalidEvent"]

#: Longest string any identifier or label may have; longer ones are rejected, never truncated.
MAX_STRING_LENGTH = 128


class InvalidEvent(ValueError):
    """An event that breaks a schema rule.

    `reason` is a short stable code for counting and dead-letter routing
    (`missing_field`, `wrong_type`, `out_of_range`, ...); the message names the
    field, the value and the rule.
    """

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


def _short(value: Any) -> str:
    """The value as it appears in an error message, cut so a huge string stays readable."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}...(len {len(value) if hasattr(value, '__len__') else '?'})"


@dataclass(frozen=True, slots=True)
class Field:
    """One member of an event object.

    Parameters
    ----------
    name
        JSON member name.
    type
        JSON type: `string`, `integer`, `number` or `boolean`.
    required
        Whether the member must be present (and not null).
    minimum, maximum
        Inclusive bounds for numbers.
    enum
        Allowed values for strings.
    pattern
        Regular expression a string must match in full.
    max_length
        Longest allowed string.
    identifier
        A customer or device identifier: pseudonymised with a keyed hash at ingest.
    description
        Shown in the JSON Schema.

    """

    name: str
    type: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    max_length: int = MAX_STRING_LENGTH
    identifier: bool = False
    description: str = ""

    def check(self, value: Any) -> Any:
        """Return `value` if it obeys this field's rules, else raise `InvalidEvent`.

        The message shows the value, except for identifier fields: a raw customer id
        must not reach a dead-letter header or a log line, even when it is malformed.
        """
        try:
            return self._check(value)
        except InvalidEvent as exc:
            if not self.identifier:
                raise
            shown = _short(value)
            raise InvalidEvent(exc.reason, str(exc).replace(f"value {shown}", "value <withheld identifier>"),
                               self.name) from None

    def _check(self, value: Any) -> Any:
        name = self.name
        if self.type == "string":
            if not isinstance(value, str):
                raise InvalidEvent(
                    "wrong_type", f"field {name!r}: value {_short(value)} violates rule 'is a string'", name
                )
            if not value:
                raise InvalidEvent("out_of_range", f"field {name!r}: value '' violates rule 'not empty'", name)
            if len(value) > self.max_length:
                raise InvalidEvent(
                    "too_large",
                    f"field {name!r}: value {_short(value)} violates rule 'at most {self.max_length} characters'",
                    name,
                )
            if self.enum is not None and value not in self.enum:
                raise InvalidEvent(
                    "out_of_range",
                    f"field {name!r}: value {_short(value)} violates rule 'one of {', '.join(self.enum)}'",
                    name,
                )
            if self.pattern is not None and _compiled(self.pattern).fullmatch(value) is None:
                raise InvalidEvent(
                    "out_of_range",
                    f"field {name!r}: value {_short(value)} violates rule 'matches {self.pattern}'",
                    name,
                )
            return value
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise InvalidEvent(
                    "wrong_type", f"field {name!r}: value {_short(value)} violates rule 'is a boolean'", name
                )
            return value
        # Numbers. bool is a subclass of int in Python but not a number in JSON.
        if self.type == "integer":
            # JSON has one number type: 3.0 is an integer to JSON Schema, so it is to footfall.
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidEvent(
                    "wrong_type", f"field {name!r}: value {_short(value)} violates rule 'is an integer'", name
                )
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidEvent(
                    "wrong_type", f"field {name!r}: value {_short(value)} violates rule 'is a number'", name
                )
            if not math.isfinite(value):
                raise InvalidEvent(
                    "out_of_range", f"field {name!r}: value {value!r} violates rule 'is finite'", name
                )
        if self.minimum is not None and value < self.minimum:
            raise InvalidEvent(
                "out_of_range", f"field {name!r}: value {value!r} violates rule '>= {_num(self.minimum)}'", name
            )
        if self.maximum is not None and value > self.maximum:
            raise InvalidEvent(
                "out_of_range", f"field {name!r}: value {value!r} violates rule '<= {_num(self.maximum)}'", name
            )
        return value

    def acceptor(self) -> Callable[[Any], bool]:
        """A fast test of the common case: true only for a value `check` returns unchanged, as it is.

        A value it refuses is not necessarily invalid (`3.0` for an integer field is made `3`
        by `check`): callers fall back to `check`, which converts it or raises with the rule.
        Built once per field, it spares each valid value the generic checks (an event's ten
        fields took about half of its decoding time).

        >>> accepts = Field("items", "integer", minimum=0, maximum=10).acceptor()
        >>> accepts(3), accepts(3.0), accepts(11), accepts(True)
        (True, False, False, False)
        >>> accepts = Field("vertical", "string", enum=("retail", "bank")).acceptor()
        >>> accepts("bank"), accepts("shop"), accepts(["bank"])
        (True, False, False)

        """
        if self.type == "boolean":
            return lambda value: type(value) is bool
        if self.type == "string":
            longest = self.max_length
            if self.enum is not None and self.pattern is None:
                allowed = frozenset(v for v in self.enum if 0 < len(v) <= longest)
                return lambda value: type(value) is str and value in allowed
            if self.pattern is not None:
                fullmatch = _compiled(self.pattern).fullmatch
                allowed_or_all = frozenset(self.enum) if self.enum is not None else None

                def accepts_pattern(value: Any) -> bool:
                    return (type(value) is str and 0 < len(value) <= longest and fullmatch(value) is not None
                            and (allowed_or_all is None or value in allowed_or_all))

                return accepts_pattern
            return lambda value: type(value) is str and 0 < len(value) <= longest
        # Numbers: NaN fails every comparison and the infinities lie outside the largest finite bounds.
        lowest = -sys.float_info.max if self.minimum is None else self.minimum
        highest = sys.float_info.max if self.maximum is None else self.maximum
        if self.type == "integer":
            return lambda value: type(value) is int and lowest <= value <= highest
        return lambda value: (type(value) is float or type(value) is int) and lowest <= value <= highest

    def json_schema(self) -> dict[str, Any]:
        """This field as a JSON Schema (draft 2020-12) property."""
        prop: dict[str, Any] = {"type": self.type}
        if self.description:
            prop["description"] = self.description
        if self.type == "string":
            prop["minLength"] = 1
            prop["maxLength"] = self.max_length
            if self.enum is not None:
                prop["enum"] = list(self.enum)
            if self.pattern is not None:
                prop["pattern"] = f"^(?:{self.pattern})$"
        if self.minimum is not None:
            prop["minimum"] = _num(self.minimum)
        if self.maximum is not None:
            prop["maximum"] = _num(self.maximum)
        return prop


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(pattern)
    return compiled
