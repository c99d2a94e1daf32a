"""The ``contacts.import-jobs`` record: one batch of raw rows of one import job."""

import uuid
from dataclasses import dataclass

from eventplatform.kafka.envelope import Event, PoisonRecord

from .topics import IMPORT_JOBS

TOPIC = IMPORT_JOBS.name
EVENT_TYPE = "contacts.import-batch"


@dataclass(frozen=True)
class ImportBatch:
    """Rows as read from the file, not yet validated: ``[line, email, name, phone, company]``;
    ``errors`` are rows the reader could not split (``[line, reason]``)."""

    job_id: uuid.UUID
    batch_no: int
    rows: list[list]
    errors: list[list]

    @property
    def key(self) -> str:
        return f"{self.job_id}:{self.batch_no}"

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.errors)

    def to_event(self) -> Event:
        return Event(
            type=EVENT_TYPE,
            data={
                "job_id": str(self.job_id),
                "batch_no": self.batch_no,
                "rows": self.rows,
                "errors": self.errors,
            },
        )

    @classmethod
    def from_event(cls, event: Event) -> "ImportBatch":
        """Check the shape of the data; raise :class:`PoisonRecord` saying what is wrong."""
        if event.type != EVENT_TYPE:
            raise PoisonRecord(f"expected a {EVENT_TYPE!r} event, got {event.type!r}")
        data = event.data
        try:
            job_id = uuid.UUID(str(data["job_id"]))
        except (KeyError, ValueError):
            raise PoisonRecord("import batch needs a job_id that is a UUID") from None
        batch_no = data.get("batch_no")
        if not isinstance(batch_no, int) or isinstance(batch_no, bool) or batch_no < 0:
            raise PoisonRecord("import batch needs a batch_no that is an integer ≥ 0")
        rows, errors = data.get("rows"), data.get("errors")
        if not isinstance(rows, list) or not all(
            isinstance(r, list)
            and len(r) == 5
            and isinstance(r[0], int)
            and all(isinstance(v, str) for v in r[1:])
            for r in rows
        ):
            raise PoisonRecord("import batch rows must be [line, email, name, phone, company]")
        if not isinstance(errors, list) or not all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], int) and isinstance(e[1], str)
            for e in errors
        ):
            raise PoisonRecord("import batch errors must be [line, reason]")
        return cls(job_id=job_id, batch_no=batch_no, rows=rows, errors=errors)
