// Upload page and import page: post the file, follow progress live, come back to it later.
//
// Live progress comes from the notification channel: the socket reconnects by itself with
// the last (epoch, sequence number) it saw, so the server replays exactly what was missed;
// batches are counted once by their number. The import's own URL (/contacts/import/<id>/)
// is pushed into the history once the upload is accepted, so a reload comes back here: the
// page reads the import's status from the API and replays the channel's history.
//
// Whenever the live stream cannot be trusted to be complete (a gap in the history, the
// history lost with Redis, the channel refused), the page says so and polls the status API
// instead, whose totals and row errors are always exact.
(function () {
  "use strict";
  const root = document.getElementById("importer");
  const channel = root.dataset.channel;
  const maxBytes = Number(root.dataset.maxBytes);
  const importsUrl = root.dataset.importsUrl.replace(/\/$/, "");
  const $ = (id) => document.getElementById(id);
  const ERRORS_PAGE_SIZE = 100;
  const POLL_MS = 1000;
  const CHANNEL_REFUSED = 4403;

  let socket = null;
  let ready = null;  // resolves true once the current socket is open, false if it closed
  let reconnectTimer = null;
  let lastSeq = 0;
  let epoch = "";
  let retryDelay = 500;
  let jobId = null;
  let finished = false;
  let polling = false;
  let pending = [];  // messages that arrived before the POST answered with the job id
  let state = null;
  let errorsPage = 1;

  function freshState() {
    // "live" sums the batch messages seen; "server" is the last status read from the API.
    // Both only grow during an import, so the larger of the two is the best known count.
    return {
      total: null, batches: new Set(), liveErrors: 0,
      live: { processed: 0, imported: 0, updated: 0, failed: 0 },
      server: { processed: 0, imported: 0, updated: 0, failed: 0 },
    };
  }

  function status(text) { $("status").textContent = text; }
  function problem(text) {
    $("problem").textContent = text;
    $("problem").hidden = !text;
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const position = `last_seq=${lastSeq}` + (epoch ? `&epoch=${encodeURIComponent(epoch)}` : "");
    return `${scheme}://${location.host}/ws/notifications/${encodeURIComponent(channel)}/?${position}`;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (socket && socket.readyState <= WebSocket.OPEN) {
      socket.onclose = null;  // replaced: the old socket must not schedule a reconnect
      socket.close();
    }
    ready = new Promise((resolve) => {
      socket = new WebSocket(socketUrl());
      socket.onopen = () => {
        retryDelay = 500;
        if (jobId !== null && !finished) status("Reconnected; resuming…");
        resolve(true);
      };
      socket.onmessage = (event) => receive(JSON.parse(event.data));
      socket.onclose = (event) => {
        resolve(false);
        if (event.code === CHANNEL_REFUSED) {
          // An expired channel cannot be followed live any more; the API still can.
          if (jobId !== null && !finished) startPolling();
          return;
        }
        if (jobId !== null && !finished) status("Connection lost, reconnecting…");
        reconnectTimer = setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 5000);
      };
    });
    return ready;
  }

  function receive(frame) {
    if (frame.gap) {
      if (frame.gap.history_lost) {
        lastSeq = 0;
        epoch = frame.gap.epoch || "";
      }
      interrupted();
      return;
    }
    if (frame.seq <= lastSeq && frame.epoch === epoch) return;
    lastSeq = frame.seq;
    epoch = frame.epoch;
    if (jobId === null) { pending.push(frame.message); return; }
    handle(frame.message);
  }

  function interrupted() {
    if (jobId === null || finished) return;
    problem("Live progress was interrupted; the figures below are read from the server instead and end exact.");
    startPolling();
  }

  function handle(message) {
    if (message.job_id !== jobId) return;
    if (message.type === "planned") planned(message);
    else if (message.type === "batch") batch(message);
    else if (message.type === "completed") completed(message);
    else if (message.type === "failed") failed(message.reason, message.processed_rows);
  }

  function showIgnored(columns) {
    if (!columns || !columns.length) return;
    $("ignored").textContent = "Ignored columns: " + columns.join(", ");
    $("ignored").hidden = false;
  }

  function planned(message) {
    state.total = message.total_rows;
    status(`Importing ${message.total_rows.toLocaleString()} rows in ${message.total_batches} batches…`);
    showIgnored(message.ignored_columns);
    render();
  }

  function batch(message) {
    if (finished || state.batches.has(message.batch_no)) return;
    state.batches.add(message.batch_no);
    state.live.processed += message.rows;
    state.live.imported += message.imported;
    state.live.updated += message.updated;
    state.live.failed += message.failed;
    showLiveErrors(message.errors);
    render();
  }

  function markRecent(text) {
    // The recent-imports table was rendered with the page; keep this import's row current.
    const row = document.querySelector(`#recent-imports tr[data-job-id="${jobId}"]`);
    if (row) row.cells[2].textContent = text;
  }

  function completed(totals) {
    if (finished) return;
    finished = true;
    markRecent("completed");
    state.total = totals.total_rows;
    const exact = { processed: totals.total_rows, imported: totals.imported,
      updated: totals.updated, failed: totals.failed };
    state.live = exact;
    state.server = exact;
    showIgnored(totals.ignored_columns);
    render();
    const summary = `Done: ${totals.imported.toLocaleString()} imported, ${totals.updated.toLocaleString()} updated, ${totals.failed.toLocaleString()} failed of ${totals.total_rows.toLocaleString()} rows.`;
    $("summary").textContent = summary;
    $("summary").hidden = false;
    status("Import complete.");
    enableStart(true);
    loadErrors(1);
  }

  function failed(reason, processed) {
    if (finished) return;
    finished = true;
    markRecent("failed");
    if (processed) {
      problem(`The import failed: ${reason}. ${processed.toLocaleString()} rows were processed before it stopped.`);
    } else {
      problem("The file could not be imported: " + reason + ". Nothing was imported.");
      $("progress-card").hidden = true;
    }
    status("Import failed.");
    enableStart(true);
    if (processed) loadErrors(1);
  }

  // -- the status API -----------------------------------------------------------------------

  async function fetchStatus(page) {
    const response = await fetch(
      `${importsUrl}/${jobId}?errors_page=${page}&errors_page_size=${ERRORS_PAGE_SIZE}`,
      { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  function applyStatus(job) {
    if (job.id !== jobId) return;
    $("file-name").textContent = job.file;
    if (job.total_rows !== null) state.total = job.total_rows;
    state.server = { processed: job.processed_rows, imported: job.imported,
      updated: job.updated, failed: job.failed };
    showIgnored(job.ignored_columns);
    if (job.status === "completed") {
      completed({ total_rows: job.total_rows, imported: job.imported, updated: job.updated,
        failed: job.failed, ignored_columns: job.ignored_columns });
    } else if (job.status === "failed") {
      failed(job.failure, job.processed_rows);
    } else if (state.total !== null) {
      status(`Importing ${state.total.toLocaleString()} rows…`);
    }
    render();
  }

  async function refresh() {
    try {
      applyStatus(await fetchStatus(1));
    } catch (error) {
      status("Could not read the import's status (" + error.message + "); retrying…");
    }
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    const tick = async () => {
      await refresh();
      if (!finished) setTimeout(tick, POLL_MS);
    };
    tick();
  }

  // -- row errors ---------------------------------------------------------------------------

  function errorItem(error) {
    const item = document.createElement("li");
    item.textContent = `Line ${error.line}: ${error.reason}`;
    item.dataset.line = error.line;
    return item;
  }

  function showLiveErrors(errors) {
    // While importing, the first page fills as errors arrive; the pages come from the API.
    if (!errors.length) return;
    $("row-errors-section").hidden = false;
    for (const error of errors) {
      if (state.liveErrors >= ERRORS_PAGE_SIZE) break;
      $("row-errors").appendChild(errorItem(error));
      state.liveErrors += 1;
    }
  }

  async function loadErrors(page) {
    let job;
    try {
      job = await fetchStatus(page);
    } catch (error) {
      problem("Could not load the rows not imported (" + error.message + ").");
      return;
    }
    const errors = job.row_errors;
    errorsPage = page;
    $("row-errors-section").hidden = errors.count === 0;
    $("row-errors-count").textContent = errors.count.toLocaleString();
    $("row-errors").replaceChildren(...errors.items.map(errorItem));
    // No link once the upload was deleted (the row errors above still say what failed).
    $("failed-rows").href = job.failed_rows_url || "#";
    $("failed-rows").hidden = errors.count === 0 || !job.failed_rows_url;
    const pages = Math.max(1, Math.ceil(errors.count / errors.page_size));
    $("row-errors-pager").hidden = pages <= 1;
    $("row-errors-page").textContent = `Page ${page} of ${pages}`;
    $("row-errors-previous").disabled = page <= 1;
    $("row-errors-next").disabled = page >= pages;
  }

  function render() {
    const shown = {};
    for (const key of ["processed", "imported", "updated", "failed"]) {
      shown[key] = Math.max(state.live[key], state.server[key]);
    }
    const total = state.total || 0;
    const percent = total ? Math.min(100, Math.floor((shown.processed * 100) / total)) : 0;
    $("progress").firstElementChild.style.width = percent + "%";
    $("progress").setAttribute("aria-valuenow", String(percent));
    $("percent").textContent = percent + " %";
    $("total").textContent = state.total === null ? "?" : state.total.toLocaleString();
    $("processed").textContent = shown.processed.toLocaleString();
    $("imported").textContent = shown.imported.toLocaleString();
    $("updated").textContent = shown.updated.toLocaleString();
    $("failed").textContent = shown.failed.toLocaleString();
    if (shown.failed) {
      $("row-errors-section").hidden = false;
      $("row-errors-count").textContent = shown.failed.toLocaleString();
    }
  }

  function enableStart(enabled) {
    if ($("start")) $("start").disabled = !enabled;
  }

  function reset() {
    finished = false;
    polling = false;
    pending = [];
    state = freshState();
    $("row-errors").replaceChildren();
    $("row-errors-section").hidden = true;
    $("row-errors-pager").hidden = true;
    $("failed-rows").hidden = true;
    $("summary").hidden = true;
    $("ignored").hidden = true;
    $("file-name").textContent = "";
    render();
  }

  // -- starting an import, coming back to one -------------------------------------------------

  async function start(event) {
    event.preventDefault();
    const file = $("file").files[0];
    if (!file) return;
    problem("");
    if (file.size > maxBytes) {
      problem(`The file is ${file.size.toLocaleString()} bytes; the limit is ${maxBytes.toLocaleString()} bytes.`);
      return;
    }
    jobId = null;
    reset();
    enableStart(false);
    // Subscribe first, so not one message of this import can be missed.
    if (socket.readyState !== WebSocket.OPEN) {
      status("Connecting…");
      if (!(await (socket.readyState === WebSocket.CONNECTING ? ready : connect()))) {
        problem("Could not open the progress channel; reload the page and try again.");
        enableStart(true);
        return;
      }
    }
    status("Uploading…");
    const body = new FormData();
    body.append("file", file);
    body.append("channel", channel);
    let response;
    try {
      response = await fetch(root.dataset.uploadUrl, {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRFToken": root.dataset.csrf },
      });
    } catch (error) {
      problem("The upload failed: " + error.message);
      enableStart(true);
      return;
    }
    const answer = await response.json().catch(() => ({}));
    if (response.status !== 202) {
      problem(answer.detail || `The upload was refused (HTTP ${response.status}).`);
      status("");
      enableStart(true);
      return;
    }
    jobId = answer.job_id;
    // A reload (or the back button) now comes back to this import, on this channel.
    history.pushState({ jobId }, "", `/contacts/import/${jobId}/`);
    $("file-name").textContent = file.name;
    $("progress-card").hidden = false;
    status("Queued; waiting for the file to be read…");
    const early = pending;
    pending = [];
    early.forEach(handle);
  }

  function reattach(id) {
    jobId = id;
    reset();
    $("progress-card").hidden = false;
    // The status first (exact so far), then the channel's whole history from the start:
    // every batch it still holds is counted once, and live messages follow.
    refresh().then(() => { if (!finished) connect(); });
  }

  if ($("upload-form")) $("upload-form").addEventListener("submit", start);
  $("row-errors-previous").addEventListener("click", () => loadErrors(errorsPage - 1));
  $("row-errors-next").addEventListener("click", () => loadErrors(errorsPage + 1));
  window.addEventListener("popstate", () => location.reload());
  if (root.dataset.jobId) reattach(root.dataset.jobId);
  else connect();
})();
