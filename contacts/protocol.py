"""The import progress protocol as API users read it (OpenAPI descriptions reuse this text).

The messages themselves are built in :mod:`contacts.progress`; the frames around them in
:mod:`eventplatform.notifications.consumers`.
"""

PROGRESS_PROTOCOL = """
**Following an import live.** Open `WS /ws/notifications/{channel}/` (same session or
token; `channel` from `POST /api/contacts/channels`) *before* posting the file. Every frame
is JSON text:

- `{"seq": N, "epoch": "E", "message": {...}}`: one notification. `seq` counts up by one per
  channel; `epoch` names the history it belongs to. Reconnect with
  `?last_seq=N&epoch=E` to receive exactly the messages after `N` again.
- `{"gap": {"after": N, "next": M}}`: messages after `N` expired before you reconnected; the
  stream resumes at `M`.
- `{"gap": {"after": N, "next": M, "epoch": "F", "history_lost": true}}`: the server lost
  its notification history (e.g. Redis restarted empty): sequence numbers restart in epoch
  `F`. Read the import's true state from `GET /api/contacts/imports/{id}`.

Messages (`message.type`), each with `job_id`:

- `planned`: `file`, `total_rows`, `total_batches`, `ignored_columns` (header columns not
  imported); sent once the whole file was read.
- `batch`: `batch_no`, `rows`, `imported`, `updated`, `failed`, `errors`
  (`[{line, reason}]`); one per batch, in any order; count each `batch_no` once.
- `completed`: `total_rows`, `imported`, `updated`, `failed`, `ignored_columns`; the exact
  final totals, sent once.
- `failed`: `reason`, `processed_rows`; the file could not be imported (nothing was, and
  `processed_rows` is 0), or the import stopped (stalled, or its split failed) after
  `processed_rows` rows were imported, updated or refused. Nothing follows it.

Row errors and the totals stay available at `GET /api/contacts/imports/{id}`; the failed rows
download as a CSV at `GET /api/contacts/imports/{id}/failed-rows`.
"""
