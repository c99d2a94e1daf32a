// Upload page: open the notification channel, post the file, follow progress live.
// The socket reconnects by itself with the last sequence number it saw, so the server
// replays exactly what was missed; batches are counted once by their number.
(function () {
  "use strict";
  const root = document.getElementById("importer");
  const channel = root.dataset.channel;
  const maxBytes = Number(root.dataset.maxBytes);
  const $ = (id) => document.getElementById(id);
  const MAX_SHOWN_ERRORS = 1000;

  let socket = null;
  let ready = null;  // resolves true once the current socket is open, false if it closed
  let reconnectTimer = null;
  let lastSeq = 0;
  let retryDelay = 500;
  let jobId = null;
  let finished = false;
  let pending = [];  // messages that arrived before the POST answered with the job id
  let state = null;

  function freshState() {
    return { total: null, processed: 0, imported: 0, updated: 0, failed: 0, batches: new Set(), shownErrors: 0 };
  }

  function status(text) { $("status").textContent = text; }
  function problem(text) {
    $("problem").textContent = text;
    $("problem").hidden = !text;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (socket && socket.readyState <= WebSocket.OPEN) {
      socket.onclose = null;  // replaced: the old socket must not schedule a reconnect
      socket.close();
    }
    ready = new Promise((resolve) => {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const url = `${scheme}://${location.host}/ws/notifications/${encodeURIComponent(channel)}/?last_seq=${lastSeq}`;
      socket = new WebSocket(url);
      socket.onopen = () => {
        retryDelay = 500;
        if (jobId !== null && !finished) status("Reconnected; resuming…");
        resolve(true);
      };
      socket.onmessage = (event) => receive(JSON.parse(event.data));
      socket.onclose = () => {
        resolve(false);
        if (jobId !== null && !finished) status("Connection lost, reconnecting…");
        reconnectTimer = setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 5000);
      };
    });
    return ready;
  }

  function receive(frame) {
    if (frame.gap) {
      problem("Some progress messages expired before the page could reconnect; the final summary is still exact.");
      return;
    }
    if (frame.seq <= lastSeq) return;
    lastSeq = frame.seq;
    if (jobId === null) { pending.push(frame.message); return; }
    handle(frame.message);
  }

  function handle(message) {
    if (message.job_id !== jobId) return;
    if (message.type === "planned") planned(message);
    else if (message.type === "batch") batch(message);
    else if (message.type === "completed") completed(message);
    else if (message.type === "failed") failed(message);
  }

  function planned(message) {
    state.total = message.total_rows;
    $("total").textContent = message.total_rows.toLocaleString();
    status(`Importing ${message.total_rows.toLocaleString()} rows in ${message.total_batches} batches…`);
    if (message.ignored_columns.length) {
      $("ignored").textContent = "Ignored columns: " + message.ignored_columns.join(", ");
      $("ignored").hidden = false;
    }
    render();
  }

  function batch(message) {
    if (state.batches.has(message.batch_no)) return;
    state.batches.add(message.batch_no);
    state.processed += message.rows;
    state.imported += message.imported;
    state.updated += message.updated;
    state.failed += message.failed;
    showErrors(message.errors);
    render();
  }

  function completed(message) {
    finished = true;
    Object.assign(state, { processed: message.total_rows, total: message.total_rows,
      imported: message.imported, updated: message.updated, failed: message.failed });
    render();
    const summary = `Done: ${message.imported.toLocaleString()} imported, ${message.updated.toLocaleString()} updated, ${message.failed.toLocaleString()} failed of ${message.total_rows.toLocaleString()} rows.`;
    $("summary").textContent = summary;
    $("summary").hidden = false;
    status("Import complete.");
    $("start").disabled = false;
  }

  function failed(message) {
    finished = true;
    problem("The file could not be imported: " + message.reason + ". Nothing was imported.");
    status("Import failed.");
    $("progress-card").hidden = true;
    $("start").disabled = false;
  }

  function showErrors(errors) {
    if (!errors.length) return;
    $("row-errors-title").hidden = false;
    const list = $("row-errors");
    for (const error of errors) {
      if (state.shownErrors >= MAX_SHOWN_ERRORS) break;
      const item = document.createElement("li");
      item.textContent = `Line ${error.line}: ${error.reason}`;
      item.dataset.line = error.line;
      list.appendChild(item);
      state.shownErrors += 1;
    }
  }

  function render() {
    const total = state.total || 0;
    const percent = total ? Math.min(100, Math.floor((state.processed * 100) / total)) : 0;
    $("progress").firstElementChild.style.width = percent + "%";
    $("progress").setAttribute("aria-valuenow", String(percent));
    $("percent").textContent = percent + " %";
    $("processed").textContent = state.processed.toLocaleString();
    $("imported").textContent = state.imported.toLocaleString();
    $("updated").textContent = state.updated.toLocaleString();
    $("failed").textContent = state.failed.toLocaleString();
  }

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
    finished = false;
    pending = [];
    state = freshState();
    $("row-errors").replaceChildren();
    $("row-errors-title").hidden = true;
    $("summary").hidden = true;
    $("ignored").hidden = true;
    $("total").textContent = "?";
    render();
    $("start").disabled = true;
    // Subscribe first, so not one message of this import can be missed.
    if (socket.readyState !== WebSocket.OPEN) {
      status("Connecting…");
      if (!(await (socket.readyState === WebSocket.CONNECTING ? ready : connect()))) {
        problem("Could not open the progress channel; reload the page and try again.");
        $("start").disabled = false;
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
      $("start").disabled = false;
      return;
    }
    const answer = await response.json().catch(() => ({}));
    if (response.status !== 202) {
      problem(answer.detail || `The upload was refused (HTTP ${response.status}).`);
      status("");
      $("start").disabled = false;
      return;
    }
    jobId = answer.job_id;
    $("progress-card").hidden = false;
    status("Queued; waiting for the file to be read…");
    const early = pending;
    pending = [];
    early.forEach(handle);
  }

  $("upload-form").addEventListener("submit", start);
  connect();
})();
