import {
  _, ApiError, announce, api, boot, clearError, conditionName, el, fmt, formatTime, formatValue, isClinician,
  liveStream, loadUPlot, metricName, prefs, severityName, showError,
} from "../app.js";
import { summaryBlocks } from "../summary-view.js";

const user = await boot();
const patient = document.body.dataset.patient;
const base = `/api/v1/patients/${encodeURIComponent(patient)}`;
const DEFAULT_METRICS = ["spo2", "heart_rate", "respiratory_rate", "bp_systolic", "blood_glucose", "body_weight"];
const RANGES = { "24h": 24, "7d": 24 * 7, "30d": 24 * 30 };
let range = { start: new Date(Date.now() - 24 * 3.6e6), end: new Date() };
let metrics = DEFAULT_METRICS;
let events = [];

function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}

async function chart(metric, uPlot) {
  const query = new URLSearchParams({ metric, start: range.start.toISOString(), end: range.end.toISOString(), points: "300" });
  const series = await api(`${base}/series?${query}`);
  const figure = el("figure", { class: "chart-card", "data-metric": metric });
  const title = el("figcaption", {}, `${metricName(metric)}`);
  figure.append(title);
  if (!series.points.length) {
    figure.append(el("p", { class: "muted" }, _("No data in this range.")));
    return figure;
  }
  const conv = (v) => (v === null || v === undefined ? null : Number(formatValue(metric, v, series.unit).split(" ")[0]));
  const unit = formatValue(metric, series.points[0].mean, series.unit).split(" ").slice(1).join(" ");
  const xs = series.points.map((p) => new Date(p.t).getTime() / 1000);
  const data = [xs, series.points.map((p) => conv(p.min)), series.points.map((p) => conv(p.mean)), series.points.map((p) => conv(p.max))];
  const lines = [{ label: _("Time") }, { label: _("Lowest"), stroke: "rgba(0,0,0,0)" }, { label: _("Mean"), stroke: "#1f4e8c", width: 2 },
    { label: _("Highest"), stroke: "rgba(0,0,0,0)" }];
  for (const threshold of series.thresholds ?? []) {
    for (const end of ["low", "high"]) {
      if (threshold[end] === null || threshold[end] === undefined) continue;
      data.push(xs.map(() => conv(threshold[end])));
      lines.push({ label: `${_("Threshold")} ${end === "low" ? _("low") : _("high")}`, stroke: "#b35c00", dash: [6, 4], width: 1 });
    }
  }
  const last = series.points[series.points.length - 1];
  figure.setAttribute("aria-label", fmt(_("{metric}: latest mean {value}; {n} alerts in this range"), {
    metric: metricName(metric), value: formatValue(metric, last.mean, series.unit), n: (series.alerts ?? []).length }));
  title.append(unit ? ` (${unit})` : "");
  const target = el("div", { class: "chart" });
  figure.append(target);
  const alerts = series.alerts ?? [];
  events.push(...alerts.map((a) => ({ ...a, metric })));
  if (!uPlot) {
    figure.append(el("p", { class: "muted" }, _("Charts are unavailable.")));
    return figure;
  }
  const tz = prefs().tz;
  new uPlot({
    width: Math.max(300, Math.min(1000, document.getElementById("charts").clientWidth - 16)), height: 220,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz),
    // The x axis spans the chosen range, not just the data (one reading must not stretch it to years).
    scales: { x: { time: true, range: () => [range.start.getTime() / 1000, range.end.getTime() / 1000] } },
    series: lines, bands: [{ series: [3, 1], fill: "rgba(31,78,140,0.18)" }], legend: { show: true },
    hooks: { draw: [(u) => {
      const { ctx } = u;
      ctx.save();
      ctx.strokeStyle = "#c0182b";
      ctx.lineWidth = 2 * devicePixelRatio;
      for (const alert of alerts) {
        const x = u.valToPos(new Date(alert.t).getTime() / 1000, "x", true);
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
      }
      ctx.restore();
    }] },
  }, data, target);
  if (alerts.length) {
    figure.append(el("ul", { class: "plain alert-marks" }, alerts.map((a) => el("li", {},
      el("a", { href: `/web/alerts/${a.id}` }, `${severityName(a.severity)} · ${formatTime(a.t)}`)))));
  }
  return figure;
}

async function drawCharts() {
  const uPlot = await loadUPlot();
  const box = document.getElementById("charts");
  events = [];
  const figures = [];
  for (const metric of metrics) {
    try {
      figures.push(await chart(metric, uPlot));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 422)) throw error;
    }
  }
  box.replaceChildren(...figures);
  const select = document.getElementById("ecg-event");
  select.replaceChildren(new Option(_("Choose an event"), ""), ...events.map((e) =>
    new Option(`${severityName(e.severity)} · ${metricName(e.metric)} · ${formatTime(e.t)}`, e.t)));
}

async function drawEcg(around) {
  const box = document.getElementById("ecg");
  if (!around) {
    box.replaceChildren();
    return;
  }
  try {
    const strip = await api(`${base}/waveform?metric=ecg&around=${encodeURIComponent(around)}&seconds=10`);
    const uPlot = await loadUPlot();
    if (!strip.values.length || !uPlot) {
      box.replaceChildren(el("p", { class: "muted" }, _("No ECG recorded around this event.")));
      return;
    }
    const t0 = new Date(strip.start).getTime() / 1000;
    const xs = strip.values.map((_v, i) => t0 + i / strip.rate_hz);
    box.replaceChildren();
    new uPlot({ width: Math.min(1000, box.clientWidth || 800), height: 180, series: [{ label: _("Time") }, { label: `${_("ECG")} (mV)`, stroke: "#222" }],
      legend: { show: false } }, [xs, strip.values], box);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      box.replaceChildren(el("p", { class: "muted" }, _("No ECG recorded around this event.")));
    } else {
      showError(error);
    }
  }
}

async function load() {
  let record;
  try {
    record = await api(base);
  } catch (error) {
    showError(error);
    return;
  }
  document.getElementById("patient-name").textContent = record.display_name;
  document.getElementById("patient-name").setAttribute("translate", "no");
  document.getElementById("patient-meta").replaceChildren(el("span", { translate: "no" }, patient),
    ...record.conditions.map((c) => ` · ${conditionName(c)}`));
  document.getElementById("summary-link").href = `/web/patients/${encodeURIComponent(patient)}/summary`;
  document.getElementById("settings-link").href = `/web/patients/${encodeURIComponent(patient)}/settings`;
  document.getElementById("settings-link").hidden = !user.patients.some((p) => p.patient === patient && p.relation === "care");
  document.getElementById("patient-body").hidden = false;
  try {
    const summary = await api(`${base}/summary?days=7`);
    const numeric = Object.keys(summary.latest ?? {}).filter((m) => m !== "ecg" && m !== "ppg");
    if (numeric.length) metrics = DEFAULT_METRICS.filter((m) => numeric.includes(m)).concat(numeric.filter((m) => !DEFAULT_METRICS.includes(m)));
    document.getElementById("summary").replaceChildren(...summaryBlocks(summary));
    await drawCharts();
  } catch (error) {
    showError(error);
  }
}

for (const button of document.querySelectorAll("[data-range]")) {
  button.addEventListener("click", async () => {
    range = { start: new Date(Date.now() - RANGES[button.dataset.range] * 3.6e6), end: new Date() };
    document.getElementById("range-start").value = localInput(range.start);
    document.getElementById("range-end").value = localInput(range.end);
    for (const other of document.querySelectorAll("[data-range]")) other.setAttribute("aria-pressed", String(other === button));
    clearError();
    try { await drawCharts(); announce(_("Charts updated.")); } catch (error) { showError(error); }
  });
}
document.getElementById("range").addEventListener("submit", async (event) => {
  event.preventDefault();
  const start = new Date(document.getElementById("range-start").value);
  const end = new Date(document.getElementById("range-end").value);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || start >= end) {
    showError(new Error(_("Choose a start before the end.")));
    return;
  }
  range = { start, end };
  clearError();
  try { await drawCharts(); announce(_("Charts updated.")); } catch (error) { showError(error); }
});
document.getElementById("ecg-event").addEventListener("change", (event) => drawEcg(event.target.value));
document.getElementById("range-start").value = localInput(range.start);
document.getElementById("range-end").value = localInput(range.end);
await load();
document.body.dataset.ready = "true";
if (isClinician(user) || user.patients.some((p) => p.patient === patient)) {
  liveStream((type, data) => {
    if (data.patient === patient) {
      range.end = new Date();
      drawCharts().catch(showError);
    }
  });
}
