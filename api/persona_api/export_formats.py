"""The files an export streams: JSON Lines, CSV and Parquet, written batch by batch.

Each format is an ``Encoder``: a header, then bytes per batch of personas, then a
footer, so a response streams an export of any size with one batch in memory.

- **JSON Lines**: one persona per line, exactly the API's JSON of it (loads with
  ``datasets.load_dataset("json", data_files=...)`` or ``pandas.read_json(lines=True)``).
- **CSV**: one row per persona; nested objects become dotted columns
  (``location.city``, ``personality.openness``, ``usage.prompt_tokens``,
  ``plan_cell.age_band``), lists and maps a JSON text cell (``interests``,
  ``plan_cell.traits``), an absent value an empty cell. ``COLUMNS`` is the header, in
  the order of the persona's fields; it is derived from the model, so a new field
  becomes a new column.
- **Parquet**: the persona's own nested shape (structs, lists, a map for traits), one
  row group per batch; times are UTC timestamps in microseconds.
"""

import csv
import io
import json
import types
import typing
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, Protocol, Union, get_args, get_origin

from pydantic import BaseModel

from persona_contracts import Persona

if TYPE_CHECKING:
    import pyarrow as pa


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"

    @property
    def media_type(self) -> str:
        return {
            ExportFormat.JSONL: "application/x-ndjson",
            ExportFormat.CSV: "text/csv; charset=utf-8",
            ExportFormat.PARQUET: "application/vnd.apache.parquet",
        }[self]


class Encoder(Protocol):
    def header(self) -> bytes: ...

    def batch(self, personas: Sequence[Persona]) -> bytes: ...

    def footer(self) -> bytes: ...


def encoder(fmt: ExportFormat) -> Encoder:
    """A fresh encoder for one export; Parquet raises ``ImportError`` without pyarrow."""
    if fmt is ExportFormat.PARQUET:
        return ParquetRowGroups()
    return CsvRows() if fmt is ExportFormat.CSV else JsonLines()


class JsonLines:
    def header(self) -> bytes:
        return b""

    def batch(self, personas: Sequence[Persona]) -> bytes:
        return b"".join(persona.model_dump_json().encode() + b"\n" for persona in personas)

    def footer(self) -> bytes:
        return b""


def _unwrap(annotation: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``."""
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _unwrap(annotation)
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _columns(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        kind = _unwrap(field.annotation)
        if _is_model(kind):
            yield from _columns(kind, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


COLUMNS = tuple(_columns(Persona))
"""The CSV header: every field of a persona, nested ones as dotted names."""


def _cell(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value if isinstance(value, int | float | str) else str(value)


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict) and f"{prefix}{name}" not in COLUMNS:
            flat |= _flat(value, f"{prefix}{name}.")
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def csv_row(persona: Persona) -> list[str | int | float]:
    """The persona's CSV cells, in ``COLUMNS`` order (an absent nested object: empty cells)."""
    flat = _flat(persona.model_dump(mode="json"))
    return [_cell(flat.get(column)) for column in COLUMNS]


class CsvRows:
    def header(self) -> bytes:
        return self._rows([list(COLUMNS)])

    def batch(self, personas: Sequence[Persona]) -> bytes:
        return self._rows([csv_row(persona) for persona in personas])

    def footer(self) -> bytes:
        return b""

    @staticmethod
    def _rows(rows: list[list[str | int | float]]) -> bytes:
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        return text.getvalue().encode()


def arrow_type(annotation: Any) -> "pa.DataType":
    """The Parquet column type of a persona field's annotation."""
    import pyarrow as pa

    kind = _unwrap(annotation)
    origin = get_origin(kind)
    if origin is list:
        return pa.list_(arrow_type(get_args(kind)[0]))
    if origin is dict:
        key, value = get_args(kind)
        return pa.map_(arrow_type(key), arrow_type(value))
    if _is_model(kind):
        return pa.struct(
            [pa.field(name, arrow_type(f.annotation)) for name, f in kind.model_fields.items()]
        )
    if origin is typing.Literal or (
        isinstance(kind, type) and issubclass(kind, Enum | str | uuid.UUID)
    ):
        return pa.string()
    scalars: dict[Any, pa.DataType] = {
        bool: pa.bool_(),
        int: pa.int64(),
        float: pa.float64(),
        datetime: pa.timestamp("us", tz="UTC"),
    }
    return scalars[kind]


def arrow_schema() -> "pa.Schema":
    import pyarrow as pa

    return pa.schema(
        [pa.field(n, arrow_type(f.annotation)) for n, f in Persona.model_fields.items()]
    )


class _Chunks(io.RawIOBase):
    """A write-only file that hands out what was written since the last ``drain``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


class ParquetRowGroups:
    def __init__(self) -> None:
        import pyarrow.parquet as pq

        self._schema = arrow_schema()
        self._sink = _Chunks()
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression="zstd")

    def header(self) -> bytes:
        return self._sink.drain()

    def batch(self, personas: Sequence[Persona]) -> bytes:
        import pyarrow as pa

        rows = [_arrow_row(persona) for persona in personas]
        self._writer.write_table(pa.Table.from_pylist(rows, schema=self._schema))
        return self._sink.drain()

    def footer(self) -> bytes:
        self._writer.close()
        return self._sink.drain()


def _arrow_row(persona: Persona) -> dict[str, Any]:
    return {name: _arrow_value(value) for name, value in persona.model_dump().items()}


def _arrow_value(value: Any) -> Any:
    """A value as pyarrow takes it: ids as text, the rest as they are (nested too)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: _arrow_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_arrow_value(item) for item in value]
    return value
