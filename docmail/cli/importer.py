"""Bulk import of parties and documents from a JSON or CSV file.

Every row goes through the same pydantic models and services as the HTTP API.
A bad row is reported (row, field, message) and the others are still imported;
existing party codes and document numbers are reported as existing, not changed.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError as PydanticValidationError

from docmail.errors import Conflict, DocmailError, ValidationError
from docmail.services.documents import create_document
from docmail.services.inputs import DocumentIn, PartyIn
from docmail.services.parties import create_party
from docmail.services.runtime import Actor, Runtime

Kind = Literal["party", "document"]

PARTY_COLUMNS = ("code", "name", "tax_id", "email", "language", "contacts")
DOCUMENT_COLUMNS = (
    "type",
    "number",
    "party_code",
    "issue_date",
    "due_date",
    "total",
    "currency",
    "status",
    "fiscal_id",
)

CSV_HELP = f"""\b
JSON: {{"parties": [...], "documents": [...]}} with the same fields as the API
(POST /api/v1/parties and POST /api/v1/documents); parties are imported first.
\b
CSV (the header row decides what the file holds):
  parties:   {",".join(PARTY_COLUMNS)}
  documents: {",".join(DOCUMENT_COLUMNS)}
\b
Empty cells are left out. In a parties file, "contacts" lists contacts separated
by ";", each as: Name <email> [role1 role2]   (name and roles optional), e.g.
  Ana Ruiz <ana@acme.mx> [finance einvoice]; cfdi@acme.mx [einvoice]
Dates are YYYY-MM-DD; totals use a dot for decimals (1234.50).
"""


@dataclass(frozen=True)
class Row:
    """One record to import; ``label`` says where it came from (for error messages)."""

    kind: Kind
    label: str
    data: dict[str, Any]
    problem: RowError | None = None  # set when the row could not even be read


@dataclass(frozen=True)
class RowError:
    row: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field else ""
        return f"{self.row}: {self.message}{where}"


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


# ---------------------------------------------------------------- reading files


def read_rows(path: Path) -> list[Row]:
    """Read a JSON or CSV file (by extension) into rows, parties before documents."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_rows(path)
    if suffix == ".csv":
        return _csv_rows(path)
    raise ValidationError(
        f"{path.name}: unknown file type {suffix or '(none)'!r}; use a .json or .csv file",
        field="file",
    )


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"), parse_float=Decimal)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}", field="file") from exc
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            field="file",
        ) from exc


def _json_rows(path: Path) -> list[Row]:
    payload = _load_json(path)
    if not isinstance(payload, dict) or not set(payload) <= {"parties", "documents"}:
        raise ValidationError(
            f'{path.name} must be an object {{"parties": [...], "documents": [...]}}',
            field="file",
        )
    rows: list[Row] = []
    for key, kind in (("parties", "party"), ("documents", "document")):
        items = payload.get(key, [])
        if not isinstance(items, list):
            raise ValidationError(f"{key} must be a list", field=key)
        for index, item in enumerate(items):
            rows.append(_json_row(kind, f"{key}[{index}]", item))  # type: ignore[arg-type]
    return rows


def _json_row(kind: Kind, label: str, item: Any) -> Row:
    if isinstance(item, dict):
        return Row(kind, label, item)
    return Row(kind, label, {}, RowError(label, None, "must be a JSON object"))


def _csv_kind(path: Path, header: list[str]) -> Kind:
    columns = set(header)
    if {"type", "number", "party_code"} <= columns:
        kind: Kind = "document"
        allowed: tuple[str, ...] = DOCUMENT_COLUMNS
    elif {"code", "name"} <= columns:
        kind, allowed = "party", PARTY_COLUMNS
    else:
        raise ValidationError(
            f"{path.name}: the header must hold party columns ({','.join(PARTY_COLUMNS)}) "
            f"or document columns ({','.join(DOCUMENT_COLUMNS)})",
            field="header",
        )
    unknown = [c for c in header if c not in allowed]
    if unknown:
        raise ValidationError(
            f"{path.name}: unknown column(s) {', '.join(unknown)}; expected {','.join(allowed)}",
            field="header",
        )
    return kind


def _csv_rows(path: Path) -> list[Row]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            kind = _csv_kind(path, header)
            return [
                _csv_row(kind, f"line {reader.line_num}", header, cells)
                for cells in reader
                if any(c.strip() for c in cells)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(f"cannot read {path}: {exc}", field="file") from exc


def _csv_row(kind: Kind, label: str, header: list[str], cells: list[str]) -> Row:
    if len(cells) > len(header):
        return Row(kind, label, {}, RowError(label, None, "more cells than header columns"))
    cleaned = ((name, value.strip()) for name, value in zip(header, cells, strict=False))
    data: dict[str, Any] = {name: value for name, value in cleaned if value != ""}
    if kind == "party" and "contacts" in data:
        try:
            data["contacts"] = parse_contacts(data["contacts"])
        except ValueError as exc:
            return Row(kind, label, data, RowError(label, "contacts", str(exc)))
    return Row(kind, label, data)


_CONTACT = re.compile(
    r"^(?:(?P<name>[^<\[]*?)\s*<(?P<angle>[^>]*)>|(?P<bare>[^\s<>\[\]]+))"
    r"\s*(?:\[(?P<roles>[^\]]*)\])?$"
)


def parse_contacts(text: str) -> list[dict[str, Any]]:
    """Parse ``Name <email> [role1 role2]; email2 [role]`` into contact dicts."""
    contacts: list[dict[str, Any]] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        match = _CONTACT.match(part)
        if match is None:
            raise ValueError(f"contact {part!r} must look like: Name <email> [role1 role2]")
        contact: dict[str, Any] = {"email": (match["angle"] or match["bare"] or "").strip()}
        if match["name"]:
            contact["name"] = match["name"].strip().strip('"')
        if match["roles"]:
            contact["roles"] = match["roles"].replace(",", " ").split()
        contacts.append(contact)
    return contacts


# ---------------------------------------------------------------- importing


def _field_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def pydantic_errors(label: str, exc: PydanticValidationError) -> list[RowError]:
    errors = []
    for err in exc.errors(include_url=False):
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append(RowError(label, _field_path(err.get("loc", ())) or None, message))
    return errors


def _import_party(runtime: Runtime, actor: Actor, row: Row, report: ImportReport) -> None:
    data = PartyIn.model_validate(row.data)
    try:
        create_party(runtime, actor, data)
    except Conflict as exc:
        if exc.field != "code":
            raise
        report.existing.append(f"party {data.code}")
        return
    report.created.append(f"party {data.code}")


def _import_document(runtime: Runtime, actor: Actor, row: Row, report: ImportReport) -> None:
    data = DocumentIn.model_validate(row.data)
    result = create_document(runtime, actor, data)
    target = report.created if result.created else report.existing
    target.append(f"{data.type} {data.number}")


def import_row(runtime: Runtime, actor: Actor, row: Row, report: ImportReport) -> None:
    """Import one row; any problem is added to the report instead of raised."""
    if row.problem is not None:
        report.errors.append(row.problem)
        return
    try:
        if row.kind == "party":
            _import_party(runtime, actor, row, report)
        else:
            _import_document(runtime, actor, row, report)
    except PydanticValidationError as exc:
        report.errors.extend(pydantic_errors(row.label, exc))
    except DocmailError as exc:
        report.errors.append(RowError(row.label, exc.field, exc.message))


def import_rows(
    runtime: Runtime,
    actor: Actor,
    rows: list[Row],
    advance: Callable[[], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    for row in rows:
        import_row(runtime, actor, row, report)
        if advance is not None:
            advance()
    return report
