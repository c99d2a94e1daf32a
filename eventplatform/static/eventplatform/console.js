// The operations console: renders each snapshot the websocket pushes, and sends the DLQ
// actions. Text goes in through textContent only, so record contents cannot inject markup.
(function () {
  "use strict";
  const root = document.getElementById("console");
  const WINDOW_SECONDS = 15 * 60;
  const SVG = "http://www.w3.org/2000/svg";
  const rendered = {}; // section -> JSON last drawn, so an unchanged section is left alone
  let socket = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "onclick") node.addEventListener("click", value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function row(cells, attrs) {
    return el("tr", attrs, ...cells.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", { text: c ?? "—" }))));
  }

  function ago(iso) {
    if (!iso) return "—";
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return `${iso.replace("T", " ").slice(0, 19)} (${seconds} s ago)`;
  }

  function changed(section, value) {
    const json = JSON.stringify(value ?? null);
    if (rendered[section] === json) return false;
    rendered[section] = json;
    return true;
  }

  function chart(kind, label, times, values) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 300 60");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const max = Math.max(1, ...values);
    const now = Date.now() / 1000;
    const points = times.map((t, i) => {
      const x = ((t - (now - WINDOW_SECONDS)) / WINDOW_SECONDS) * 300;
      const y = 58 - (values[i] / max) * 56;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.append(line);
    svg.setAttribute("aria-label", `${label}, last 15 minutes, peak ${max}`);
    return el("figure", { class: `console-chart-${kind}` }, svg,
      el("figcaption", { text: `${label} — last 15 min, peak ${Math.round(max)}` }));
  }

  function renderHealth(s) {
    if (changed("readiness", s.readiness)) {
      const r = s.readiness || {};
      const parts = [`Readiness: ${r.status || "unknown"}`];
      for (const [name, why] of Object.entries(r.failing || {})) parts.push(`failing ${name}: ${why}`);
      for (const [name, why] of Object.entries(r.degraded || {})) parts.push(`degraded ${name}: ${why}`);
      const p = document.getElementById("console-readiness");
      p.textContent = parts.join(" · ");
      p.className = r.status === "ready" ? "" : "console-bad";
    }
    if (changed("processes", s.processes)) {
      const rows = Object.entries(s.processes || {}).map(([name, p]) =>
        row([name, p.state, String(p.restarts ?? 0), p.problem || ""], { "data-process": name }));
      if (!rows.length) rows.push(row(["no supervisor runs on this var/ (processes run on their own)", "", "", ""]));
      document.getElementById("console-processes").replaceChildren(...rows);
    }
    if (changed("replica", s.replica)) {
      const r = s.replica || {};
      const text = r.lag_seconds === null || r.lag_seconds === undefined
        ? `Projections replica: unreachable (${r.problem || "no answer"})`
        : `Projections replica: replay lag ${r.lag_seconds} s (bound ${r.bound_seconds} s)`;
      const p = document.getElementById("console-replica");
      p.textContent = text;
      p.className = r.lag_seconds === null || r.lag_seconds > r.bound_seconds ? "console-bad" : "";
    }
  }

  function renderGroups(groups) {
    const list = document.getElementById("console-group-list");
    const blocks = (groups || []).map((g) => {
      const partitions = g.partitions.map((p) =>
        row([`${p.topic}[${p.partition}]`, String(p.end), p.committed ?? "—", p.stored ?? "—", p.position ?? "—", String(p.lag)]));
      return el("div", { class: "console-group", "data-group": g.name },
        el("h3", { text: `${g.name} (${g.state})` }),
        g.description ? el("p", { class: "console-description", text: `${g.description} · group ${g.group}` }) : null,
        el("p", { class: "console-figures" },
          el("span", {}, "lag ", el("strong", { class: "console-lag", "data-lag": g.lag, text: String(g.lag) })),
          el("span", { text: `records/s ${g.records_per_s}` }),
          el("span", { text: `last record ${ago(g.last_record_at)}` }),
          el("span", { text: `members ${g.members.length}: ${g.members.map((m) => m.client || m.id).join(", ") || "none"}` })),
        el("div", { class: "console-charts" },
          chart("lag", "lag", g.chart.t, g.chart.lag),
          chart("rate", "records/s", g.chart.t, g.chart.rate)),
        el("table", {},
          el("thead", {}, row(["partition", "end", "committed", "stored", "position", "lag"])),
          el("tbody", {}, ...partitions)));
    });
    if (!blocks.length) blocks.push(el("p", { text: "No consumer group has joined yet." }));
    list.replaceChildren(...blocks);
  }

  async function act(dlq, action, body) {
    const url = root.dataset.actionUrl.replace("TOPIC", encodeURIComponent(dlq)).replace("ACTION", action);
    const message = document.getElementById("console-message");
    message.textContent = `${action}…`;
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      message.textContent = response.ok
        ? `${answer.count} record(s) of ${dlq} ${action === "replay" ? "replayed" : "discarded"}`
        : `Not done: ${answer.detail}`;
    } catch (error) {
      message.textContent = `Not done: ${error}`;
    }
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "refresh" }));
  }

  function renderDlqs(dlqs) {
    const list = document.getElementById("console-dlq-list");
    const blocks = (dlqs || []).map((d) => {
      const rows = d.records.map((r) =>
        row([
          r.ref,
          r.key,
          el("span", { class: "console-error", text: r.error }),
          `${r.source} by ${r.consumer}`,
          ago(r.headers["dlq.failed_at"] || r.timestamp),
          el("pre", { class: "console-value", text: r.value ?? "(null)" }),
          el("span", {},
            el("button", { type: "button", class: "button", text: "Replay", onclick: () => act(d.name, "replay", { refs: [r.ref] }) }),
            " ",
            el("button", { type: "button", class: "button", text: "Discard", onclick: () => act(d.name, "discard", { refs: [r.ref] }) })),
        ], { "data-ref": r.ref }));
      const none = !d.pending;
      return el("div", { class: "console-dlq", "data-dlq": d.name },
        el("h3", { text: `${d.name}: ${d.pending} pending, ${d.handled} handled` }),
        el("p", {},
          el("button", { type: "button", class: "button", disabled: none, text: "Replay all", onclick: () => act(d.name, "replay", { all: true }) }),
          " ",
          el("button", { type: "button", class: "button", disabled: none, text: "Discard all", onclick: () => act(d.name, "discard", { all: true }) })),
        d.records.length
          ? el("table", {},
            el("thead", {}, row(["record", "key", "error", "failed in", "when", "value", ""])),
            el("tbody", {}, ...rows))
          : null);
    });
    list.replaceChildren(...blocks);
  }

  function renderTables(s) {
    if (changed("outbox", s.outbox) && s.outbox) {
      const o = s.outbox;
      const age = o.oldest_unsent_seconds === null ? "none waiting" : `oldest unsent ${Math.round(o.oldest_unsent_seconds)} s`;
      document.getElementById("console-outbox-summary").textContent =
        `backlog ${o.backlog} · ${age} · set aside ${o.set_aside}`;
      document.getElementById("console-outbox-rows").replaceChildren(
        ...o.set_aside_rows.map((r) => row([String(r.id), r.topic, r.key, ago(r.set_aside_at), r.error])));
    }
    if (changed("stuck", s.stuck_imports)) {
      const rows = (s.stuck_imports || []).map((j) => row([j.id, j.file, j.owner, j.batches, `${j.silent_seconds} s`]));
      if (!rows.length) rows.push(row(["none", "", "", "", ""]));
      document.getElementById("console-stuck-imports").replaceChildren(...rows);
    }
    if (changed("kv", s.kv)) {
      document.getElementById("console-kv-rows").replaceChildren(
        ...(s.kv || []).map((k) => row([k.namespace, k.ready ? "ready" : "not ready", k.entries ?? "—", ago(k.last_change_at), k.problem])));
    }
    if (changed("topics", s.topics)) {
      document.getElementById("console-topic-rows").replaceChildren(
        ...(s.topics || []).map((t) => row([
          t.name,
          t.exists ? String(t.partitions) : "missing",
          t.end_offsets.join(", "),
          t.config["cleanup.policy"] || "—",
          t.config["retention.ms"] || "—",
          t.config["min.insync.replicas"] || "—",
        ], { "data-topic": t.name })));
    }
    if (changed("errors", s.errors)) {
      const entries = Object.entries(s.errors || {});
      document.getElementById("console-errors").hidden = !entries.length;
      document.getElementById("console-error-list").replaceChildren(
        ...entries.map(([name, why]) => el("li", { text: `${name}: ${why}` })));
    }
  }

  function render(s) {
    document.getElementById("console-taken-at").textContent = `snapshot ${s.sequence} at ${s.taken_at.slice(11, 19)} UTC`;
    renderHealth(s);
    if ("groups" in s) renderGroups(s.groups); // charts move with time: always redrawn
    if ("dlqs" in s && changed("dlqs", s.dlqs)) renderDlqs(s.dlqs);
    renderTables(s);
  }

  function connect() {
    const status = document.getElementById("console-status");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${root.dataset.socket}`);
    socket.onopen = () => { status.dataset.state = "live"; status.textContent = "live"; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "snapshot") render(message.snapshot);
    };
    socket.onclose = (event) => {
      status.dataset.state = "disconnected";
      status.textContent = event.code === 4403 ? "refused: staff only" : "disconnected, reconnecting…";
      if (event.code !== 4403) setTimeout(connect, 1000);
    };
  }

  connect();
})();
