"""Plaintext handed out by the vault, in objects that do not print themselves.

``repr``, ``str``, f-strings, ``logging`` and tracebacks see ``**********``; only ``reveal()``
(and ``fields[name]`` / ``field(name)``) give the value. Pickling and copying to JSON are refused,
so a secret does not end up in a cache or a message queue by accident.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, NoReturn

from .types import Credential

REDACTED = "**********"


class SecretFields(Mapping[str, str]):
    """The fields of an accessed value (``access_key_id``, ``region``, ...), printed redacted."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "SecretFields({" + ", ".join(f"{k!r}: {REDACTED!r}" for k in self._values) + "})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("secret fields cannot be pickled")


class Secret:
    """A credential's plaintext, from ``client.access(...)``. Call ``reveal()`` to read it."""

    __slots__ = ("_value", "_fields", "credential")

    credential: Credential
    """The credential's metadata (id, type, masked preview)."""

    def __init__(self, value: str, fields: Mapping[str, str], credential: Credential) -> None:
        self._value = value
        self._fields = SecretFields(fields)
        self.credential = credential

    def reveal(self) -> str:
        """The type's primary secret (``secret_access_key`` for bedrock, ``password`` for smtp)."""
        return self._value

    @property
    def fields(self) -> SecretFields:
        """Every field of the value, for multi-field types."""
        return self._fields

    def field(self, name: str) -> str:
        """One field of the value; ``KeyError`` naming the field when it has none."""
        return self._fields[name]

    def __repr__(self) -> str:
        c = self.credential
        return f"Secret(credential_id={c.id!r}, type={c.type!r}, value={REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled; store the credential id, not the value")

    def __eq__(self, other: object) -> bool:
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> Any:
        raise TypeError("a Secret cannot be copied or pickled")
