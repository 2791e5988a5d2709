// The lora-emotion dashboard: fleet, device timeline, fleet mix per hour, live deliveries.
// Plain JavaScript served as is (no build step); charts by uPlot (static/vendor).
"use strict";

(function () {
  const COLORS = {
    angry: "#d62728", disgust: "#8c564b", fear: "#9467bd", happy: "#f2b705",
    sad: "#1f77b4", surprise: "#17becf", neutral: "#9e9e9e", contempt: "#e377c2",
    none: "#dddddd",
  };
  const EXTRA = ["#2ca02c", "#ff7f0e", "#7f7f7f", "#bcbd22", "#aec7e8", "#ffbb78"];
  const HOUR = 3600;
  const state = {
    devices: new Map(), // urn -> device JSON (+ element)
    mix: null, // {hours, labels}
    mixPlot: null, timelinePlot: null, summaryPlot: null,
    device: null, // urn on the device view
    timeline: null,
    seen: new Set(), // delivery ids shown, so a replayed event is not counted twice
    source: null,
    newest: 0,
  };

  function color(label) {
    if (COLORS[label]) return COLORS[label];
    let h = 0;
    for (const c of label) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return EXTRA[h % EXTRA.length];
  }

  async function api(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) {
      location.assign("/login?next=" + encodeURIComponent("/" + location.hash));
      throw new Error("logged out");
    }
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return (s / 3600).toFixed(1) + " h ago";
    return (s / 86400).toFixed(1) + " d ago";
  }

  function time(iso) {
    return iso ? new Date(iso).toLocaleString() : "—";
  }

  function shortUrn(urn) {
    return urn.replace(/^urn:dev:DEVEUI:/, "");
  }

  // --- fleet -----------------------------------------------------------------------------

  function sparkline(device) {
    const counts = device.hourly_readings || [];
    const confidence = device.hourly_confidence || [];
    const max = Math.max(1, ...counts);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 96 24");
    svg.setAttribute("class", "spark");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "readings per hour over the last 24 hours");
    counts.forEach((n, i) => {
      if (!n) return;
      const h = Math.max(2, (n / max) * 22);
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", String(i * 4));
      bar.setAttribute("y", String(24 - h));
      bar.setAttribute("width", "3");
      bar.setAttribute("height", String(h));
      const c = confidence[i];
      bar.setAttribute("fill", c == null ? "#bbb" : `hsl(210, 60%, ${Math.round(80 - c * 50)}%)`);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${n} readings` + (c == null ? "" : `, mean confidence ${Math.round(c * 100)} %`);
      bar.append(title);
      svg.append(bar);
    });
    return svg;
  }

  function statusText(device) {
    const s = device.status || {};
    const parts = [];
    if (s.firmwareVersion) parts.push("fw " + s.firmwareVersion);
    if (s.battery != null) parts.push("battery " + s.battery + " %");
    if (s.labelSetId != null) parts.push("label set " + s.labelSetId + (s.labelSetFingerprint ? " (" + s.labelSetFingerprint + ")" : ""));
    if (s.droppedReadings) parts.push(s.droppedReadings + " dropped");
    if (!parts.length) return "—";
    return parts.join(", ") + (device.status_time ? " · " + ago(device.status_time) : "");
  }

  function renderRow(device) {
    const row = device.row || el("tr");
    row.replaceChildren(
      el("td", {}, el("a", { href: "#/device/" + encodeURIComponent(device.urn), class: "device", text: shortUrn(device.urn) })),
      el("td", {}, device.emotion ? el("span", { class: "badge", style: "background:" + color(device.emotion), text: device.emotion }) : "—"),
      el("td", { class: "num", text: device.confidence == null ? "—" : Math.round(device.confidence * 100) + " %" }),
      el("td", { class: "when", title: time(device.emotion_time), "data-iso": device.emotion_time || "", text: ago(device.emotion_time) }),
      el("td", {}, sparkline(device)),
      el("td", { class: "status", text: statusText(device) }),
      el("td", {}, device.silent
        ? el("span", { class: "silent", title: "no uplink for longer than " + (device.expected_interval_s ? Math.round(3 * device.expected_interval_s / 60) + " min (3 × its usual interval)" : "a day"), text: "silent · " + ago(device.last_seen) })
        : el("span", { class: "ok", "data-iso": device.last_seen || "", text: ago(device.last_seen) })),
    );
    row.dataset.urn = device.urn;
    device.row = row;
    return row;
  }

  async function loadFleet() {
    const data = await api("/dashboard/api/fleet");
    state.newest = Math.max(state.newest, data.newest_id);
    const body = document.querySelector("#fleet tbody");
    body.replaceChildren();
    state.devices.clear();
    for (const device of data.devices) {
      state.devices.set(device.urn, device);
      body.append(renderRow(device));
    }
    document.getElementById("fleet-count").textContent = "(" + data.devices.length + ")";
  }

  function legend(target, labels) {
    const box = document.getElementById(target);
    box.replaceChildren(...labels.map((l) => el("span", { class: "key" }, el("i", { style: "background:" + color(l) }), l)));
  }

  function width(id) {
    return Math.max(320, document.getElementById(id).clientWidth || 800);
  }

  // Stacked bars or areas from uPlot's plain series: each label is drawn from zero to the
  // running total, largest first, so the later (smaller) ones paint over it.
  function stacked(labels, rows, bars) {
    const totals = [];
    const cumulative = labels.map(() => []);
    for (let i = 0; i < rows.length; i++) {
      let sum = 0;
      labels.forEach((l, j) => { sum += rows[i][j] || 0; cumulative[j][i] = sum; });
      totals.push(sum);
    }
    const order = labels.map((_, j) => j).reverse();
    const paths = bars ? uPlot.paths.bars({ size: [0.9, 40] }) : undefined;
    const series = order.map((j) => ({
      label: labels[j], stroke: color(labels[j]), fill: color(labels[j]), width: bars ? 0 : 1,
      paths, points: { show: false },
    }));
    return { series, data: order.map((j) => cumulative[j]), totals };
  }

  function drawMix() {
    if (!state.mix) return;
    const { hours, labels } = state.mix;
    const names = Object.keys(labels);
    legend("mix-legend", names);
    const rows = hours.map((_, i) => names.map((n) => labels[n][i]));
    const s = stacked(names, rows, true);
    const opts = {
      width: width("mix-chart"), height: 220, legend: { show: false },
      cursor: { points: { show: false } },
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(1, hi)] } },
      axes: [{}, { label: "readings" }],
      series: [{}, ...s.series],
    };
    const box = document.getElementById("mix-chart");
    if (state.mixPlot) state.mixPlot.destroy();
    box.replaceChildren();
    state.mixPlot = new uPlot(opts, [hours, ...s.data], box);
  }

  async function loadMix() {
    const range = document.getElementById("mix-range").value;
    state.mix = await api("/dashboard/api/mix?range=" + range);
    drawMix();
  }

  function countInMix(event) {
    if (!state.mix || !event.emotion) return;
    const when = event.event_time || event.received_at;
    const hour = Math.floor(when / HOUR) * HOUR;
    const i = state.mix.hours.indexOf(hour);
    if (i < 0) return;
    const row = state.mix.labels[event.emotion] || (state.mix.labels[event.emotion] = state.mix.hours.map(() => 0));
    row[i] += 1;
    scheduleMixDraw();
  }

  let mixTimer = null;
  function scheduleMixDraw() {
    if (mixTimer) return;
    mixTimer = setTimeout(() => { mixTimer = null; drawMix(); }, 500);
  }

  // --- live ------------------------------------------------------------------------------

  function onDelivery(event) {
    if (state.seen.has(event.id)) return;
    state.seen.add(event.id);
    if (state.seen.size > 50000) state.seen = new Set([...state.seen].slice(-10000));
    state.newest = Math.max(state.newest, event.id);
    const received = new Date(event.received_at * 1000).toISOString();
    let device = state.devices.get(event.device);
    if (!device) {
      device = { urn: event.device, hourly_readings: Array(24).fill(0), hourly_confidence: Array(24).fill(null), status: {} };
      state.devices.set(event.device, device);
      document.querySelector("#fleet tbody").append(renderRow(device));
      document.getElementById("fleet-count").textContent = "(" + state.devices.size + ")";
    }
    device.last_seen = received;
    device.silent = false;
    if (event.emotion) {
      device.emotion = event.emotion;
      device.confidence = event.confidence;
      device.emotion_time = new Date((event.event_time || event.received_at) * 1000).toISOString();
      const hourly = device.hourly_readings;
      if (hourly && hourly.length) hourly[hourly.length - 1] += 1;
    }
    renderRow(device);
    device.row.classList.remove("flash");
    void device.row.offsetWidth; // restart the animation
    device.row.classList.add("flash");
    const list = document.getElementById("live-list");
    const item = el("li", { "data-id": String(event.id) },
      el("a", { href: "#/device/" + encodeURIComponent(event.device), text: shortUrn(event.device) }), " ",
      event.emotion ? el("span", { class: "badge", style: "background:" + color(event.emotion), text: event.emotion }) : el("span", { class: "muted", text: event.kind + " port " + event.fport }),
      event.confidence != null ? " " + Math.round(event.confidence * 100) + " %" : "",
      el("small", { class: "muted", text: " #" + event.id + " · " + new Date(event.received_at * 1000).toLocaleTimeString() }));
    list.prepend(item);
    while (list.children.length > 25) list.lastChild.remove();
    countInMix(event);
    if (state.device === event.device) {
      prependRaw(event);
      scheduleTimeline();
    }
  }

  function connect() {
    if (state.source) state.source.close();
    const live = document.getElementById("live");
    const source = new EventSource("/events?after=" + state.newest);
    state.source = source;
    source.addEventListener("open", () => { live.textContent = "● live"; live.className = "live on"; });
    source.addEventListener("delivery", (message) => onDelivery(JSON.parse(message.data)));
    source.addEventListener("resync", () => { refresh(); });
    source.addEventListener("error", () => {
      live.textContent = "reconnecting…";
      live.className = "live off";
      if (source.readyState === EventSource.CLOSED) {
        // Refused (a session that expired): find out why, then start again.
        api("/dashboard/api/session").then(() => setTimeout(connect, 2000), () => {});
      }
    });
  }

  setInterval(() => {
    for (const node of document.querySelectorAll("[data-iso]")) {
      if (node.dataset.iso) node.textContent = (node.classList.contains("silent") ? "silent · " : "") + ago(node.dataset.iso);
    }
  }, 10000);

  // --- device ----------------------------------------------------------------------------

  function drawBand(t) {
    const canvas = document.getElementById("band");
    const w = width("timeline-chart");
    canvas.width = w;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, canvas.height);
    const n = t.times.length;
    t.dominant.forEach((label, i) => {
      ctx.fillStyle = label ? color(label) : "#f2f2f2";
      ctx.fillRect(Math.floor((i * w) / n), 0, Math.ceil(w / n), canvas.height);
    });
  }

  function drawTimeline() {
    const t = state.timeline;
    if (!t) return; // not loaded yet (a resize can come first)
    drawBand(t);
    const names = Object.keys(t.labels);
    legend("timeline-legend", names);
    const rows = t.times.map((_, i) => {
      const total = names.reduce((s, n) => s + t.labels[n][i], 0);
      return names.map((n) => (total ? t.labels[n][i] / total : null));
    });
    const s = stacked(names, rows, false);
    const box = document.getElementById("timeline-chart");
    if (state.timelinePlot) state.timelinePlot.destroy();
    box.replaceChildren();
    state.timelinePlot = new uPlot({
      width: width("timeline-chart"), height: 240, legend: { show: false },
      scales: { x: { time: true }, y: { range: [0, 1] }, c: { range: [0, 1] } },
      axes: [{}, { label: "share of readings", values: (u, v) => v.map((x) => Math.round(x * 100) + " %") },
        { scale: "c", side: 1, label: "confidence", grid: { show: false }, values: (u, v) => v.map((x) => Math.round(x * 100) + " %") }],
      series: [{}, ...s.series.map((x) => ({ ...x, fill: x.fill + "99" })),
        { label: "confidence", scale: "c", stroke: "#222", width: 2, spanGaps: false }],
    }, [t.times, ...s.data.map((col) => col.map((v, i) => (s.totals[i] ? v : null))), t.confidence], box);

    const sums = Object.keys(t.summaries);
    const sbox = document.getElementById("summary-chart");
    if (state.summaryPlot) state.summaryPlot.destroy();
    state.summaryPlot = null;
    sbox.replaceChildren();
    document.getElementById("summary-none").hidden = sums.length > 0;
    if (sums.length) {
      const srows = t.times.map((_, i) => sums.map((n) => t.summaries[n][i]));
      const ss = stacked(sums, srows, true);
      state.summaryPlot = new uPlot({
        width: width("summary-chart"), height: 180, legend: { show: false },
        scales: { x: { time: true } }, axes: [{}, { label: "readings" }],
        series: [{}, ...ss.series],
      }, [t.times, ...ss.data], sbox);
    }
  }

  async function loadTimeline() {
    const range = document.getElementById("device-range").value;
    state.timeline = await api("/dashboard/api/devices/" + encodeURIComponent(state.device) + "/timeline?range=" + range);
    drawTimeline();
  }

  let timelineTimer = null;
  function scheduleTimeline() {
    if (timelineTimer) return;
    timelineTimer = setTimeout(() => { timelineTimer = null; if (state.device) loadTimeline().catch(report); }, 2000);
  }

  function rawRow(d) {
    const row = el("tr", { class: "clickable", "data-id": String(d.id), tabindex: "0" },
      el("td", { text: String(d.id) }),
      el("td", { text: new Date(typeof d.received_at === "number" ? d.received_at * 1000 : d.received_at).toLocaleString() }),
      el("td", { text: d.fport == null ? "—" : String(d.fport) }),
      el("td", { text: d.kind }),
      el("td", { text: d.decode_status }),
      el("td", {}, el("code", { text: d.payload || "" })));
    const open = () => showDelivery(d.id);
    row.addEventListener("click", open);
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    return row;
  }

  function prependRaw(event) {
    const body = document.querySelector("#raw tbody");
    if (body.querySelector(`tr[data-id="${event.id}"]`)) return;
    body.prepend(rawRow(event));
    while (body.children.length > 50) body.lastChild.remove();
  }

  async function showDelivery(id) {
    const target = document.getElementById("decoded");
    target.textContent = "Decoding #" + id + "…";
    const d = await api("/dashboard/api/deliveries/" + id);
    const lines = [`#${d.id} ${d.kind} port ${d.fport} payload ${d.payload || "—"}`, `received ${time(d.received_at)}`, ""];
    if (d.decoded) lines.push("decoded now:", JSON.stringify(d.decoded, null, 2), "");
    if (d.decode_error) lines.push("decode error: " + d.decode_error, "");
    lines.push("stored readings:");
    for (const r of d.readings) {
      const v = r.string_value ?? r.value ?? r.bool_value ?? r.sum;
      lines.push(`  ${r.name} = ${v}${r.unit ? " " + r.unit : ""}  (${time(r.time)})`);
    }
    target.textContent = lines.join("\n");
    for (const row of document.querySelectorAll("#raw tr.selected")) row.classList.remove("selected");
    const row = document.querySelector(`#raw tr[data-id="${id}"]`);
    if (row) row.classList.add("selected");
  }

  async function loadRaw() {
    const page = await api("/deliveries?limit=50&device=" + encodeURIComponent(state.device));
    document.querySelector("#raw tbody").replaceChildren(...page.deliveries.map(rawRow));
  }

  async function showDevice(urn) {
    if (state.device !== urn) state.timeline = null;
    state.device = urn;
    document.getElementById("fleet-view").hidden = true;
    document.getElementById("device-view").hidden = false;
    document.getElementById("device-title").textContent = shortUrn(urn);
    document.getElementById("decoded").textContent = "Select a delivery.";
    const d = state.devices.get(urn);
    document.getElementById("device-summary").textContent = d
      ? `${urn} · first seen ${time(d.first_seen)} · last uplink ${ago(d.last_seen)} · ${statusText(d)}`
      : urn;
    await Promise.all([loadTimeline(), loadRaw()]);
  }

  function showFleet() {
    state.device = null;
    document.getElementById("device-view").hidden = true;
    document.getElementById("fleet-view").hidden = false;
    if (state.mix) drawMix();
  }

  // --- alert rules (when the service has them) ------------------------------------------

  async function loadAlertRules() {
    // Read-only, from the alerts API; a service without that module has no such route (asking
    // blindly would log a 404).
    const openapi = await api("/openapi.json");
    if (!openapi.paths || !openapi.paths["/alerts/rules"]) return;
    const data = await api("/alerts/rules");
    const rules = data.rules || [];
    const box = document.getElementById("alert-rules");
    const head = ["Rule", "Kind", "Condition", "Severity", "Devices", "Cooldown", "Channels"];
    const table = el("table", { class: "rules" }, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h })))));
    const body = el("tbody");
    for (const r of rules) {
      const devices = r.devices ? r.devices.map(shortUrn).join(", ") : (r.tag ? "tag " + r.tag : "all");
      const condition = Object.entries(r.condition || {}).filter(([, v]) => v != null)
        .map(([k, v]) => k + " " + (Array.isArray(v) ? v.join("/") : v)).join(", ");
      body.append(el("tr", {},
        el("td", { text: r.name }), el("td", { text: r.kind }), el("td", { class: "status", text: condition }),
        el("td", { text: r.severity }), el("td", { text: devices }),
        el("td", { text: r.cooldown_s + " s" + (r.recovery ? ", recovery notice" : "") }),
        el("td", { text: (r.channels || []).join(", ") || "—" })));
    }
    table.append(body);
    box.replaceChildren(rules.length ? table : el("p", { class: "muted", text: "No alert rules are configured." }));
    const recent = await api("/alerts?limit=10");
    const list = el("ol", { class: "live-list" });
    for (const a of recent.alerts || []) {
      list.append(el("li", {}, el("span", { class: a.status === "firing" ? "silent" : "ok", text: a.status }), " ",
        el("a", { href: "#/device/" + encodeURIComponent(a.device), text: shortUrn(a.device) }), " ",
        a.summary, el("small", { class: "muted", text: " · " + a.severity + " · " + ago(a.created_at) })));
    }
    if (list.children.length) box.append(el("h3", { text: "Recent alerts" }), list);
    document.getElementById("alerts-box").hidden = false;
  }

  // --- start -----------------------------------------------------------------------------

  function report(error) {
    if (String(error.message) !== "logged out") console.warn(error);
  }

  async function route() {
    const match = location.hash.match(/^#\/device\/(.+)$/);
    if (match) await showDevice(decodeURIComponent(match[1]));
    else showFleet();
  }

  async function refresh() {
    await Promise.all([loadFleet(), loadMix()]);
    if (state.device) await loadTimeline();
  }

  async function start() {
    const session = await api("/dashboard/api/session");
    document.getElementById("csrf").value = session.csrf;
    await Promise.all([loadFleet(), loadMix()]);
    connect();
    await route();
    loadAlertRules().catch(report);
    document.body.dataset.ready = "true";
  }

  window.addEventListener("hashchange", () => { route().catch(report); });
  document.getElementById("mix-range").addEventListener("change", () => { loadMix().catch(report); });
  document.getElementById("device-range").addEventListener("change", () => {
    document.body.dataset.ready = "false";
    loadTimeline().then(() => { document.body.dataset.ready = "true"; }, report);
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (state.device) drawTimeline(); else if (state.mix) drawMix(); }, 200);
  });
  start().catch(report);
})();
