import {
  _, announce, api, boot, conditionName, el, fmt, formatHours, formatTime, formatValue, liveStream, metricName,
  severityName, showError, sparkline,
} from "../app.js";

await boot();
const form = document.getElementById("filters");
const conditionSelect = document.getElementById("condition");
const params = new URLSearchParams(location.search);
document.getElementById("team").value = params.get("team") ?? "";
const KEY_VITALS = ["spo2", "heart_rate", "respiratory_rate", "bp_systolic", "blood_glucose", "body_weight"];

function alertsCell(row) {
  const parts = ["critical", "urgent", "warning", "info"].filter((s) => row.open_alerts?.[s])
    .map((s) => el("span", { class: `badge ${s}` }, `${severityName(s)} ${row.open_alerts[s]}`));
  return parts.length ? parts : [el("span", { class: "muted" }, _("none"))];
}

function news2Cell(row) {
  if (!row.news2) return "—";
  const trend = row.news2.trend > 0 ? "↑" : row.news2.trend < 0 ? "↓" : "→";
  const label = fmt(_("score {total}, {band} risk"), { total: row.news2.total,
    band: { low: _("low"), medium: _("medium"), high: _("high"), low_medium: _("low-medium") }[row.news2.band] ?? row.news2.band });
  return el("span", { title: label, "aria-label": label }, `${row.news2.total} ${trend}${row.news2.partial ? " *" : ""}`);
}

function healthCell(row) {
  const items = [];
  if (row.gateway) {
    const state = { online: _("online"), offline: _("offline"), unknown: _("unknown") }[row.gateway.state] ?? row.gateway.state;
    items.push(el("div", { class: `health ${row.gateway.state}` }, fmt(_("Gateway {state}"), { state }),
      row.gateway.backlog ? ` · ${fmt(_("{n} batches waiting"), { n: row.gateway.backlog })}` : ""));
  } else {
    items.push(el("div", { class: "muted" }, _("No gateway")));
  }
  for (const device of row.devices ?? []) {
    items.push(el("div", { class: "device" }, el("span", { translate: "no" }, device.device), ": ",
      device.link === "connected" ? _("connected") : _("not connected"),
      device.battery !== null && device.battery !== undefined ? ` · ${fmt(_("battery {n}%"), { n: device.battery })}` : ""));
  }
  return items;
}

async function load() {
  const query = new URLSearchParams();
  if (conditionSelect.value) query.set("condition", conditionSelect.value);
  const team = document.getElementById("team").value.trim();
  if (team) query.set("team", team);
  try {
    const rows = await api(`/api/v1/worklist?${query}`);
    const known = new Set([...conditionSelect.options].map((o) => o.value));
    for (const condition of rows.flatMap((r) => r.conditions ?? [])) {
      if (!known.has(condition)) {
        conditionSelect.append(new Option(conditionName(condition), condition));
        known.add(condition);
      }
    }
    const tbody = document.querySelector("#worklist tbody");
    tbody.replaceChildren(...rows.map((row, index) => el("tr", { "data-patient": row.patient, class: row.top_severity ? `sev-${row.top_severity}` : "" },
      el("td", {}, String(index + 1)),
      el("td", {}, el("a", { href: `/web/patients/${encodeURIComponent(row.patient)}`, translate: "no" }, row.display_name || row.patient),
        el("div", { class: "muted" }, (row.conditions ?? []).map(conditionName).join(", "))),
      el("td", {}, alertsCell(row)),
      el("td", {}, news2Cell(row)),
      el("td", { title: formatTime(row.last_data_at) }, formatHours(row.hours_since_data)),
      el("td", {}, row.adherence ? `${Math.round(row.adherence.ratio * 100)}% (${row.adherence.received}/${row.adherence.expected})` : "—"),
      el("td", {}, el("ul", { class: "plain" }, Object.entries(row.latest ?? {}).map(([metric, v]) =>
        el("li", {}, `${metricName(metric)}: ${formatValue(metric, v.value, v.unit)}`)))),
      el("td", {}, KEY_VITALS.filter((m) => row.sparklines?.[m]?.length).slice(0, 3).map((metric) =>
        el("div", { class: "spark-row" }, el("span", { class: "spark-label" }, metricName(metric)),
          sparkline(row.sparklines[metric], fmt(_("{metric}, last 7 days"), { metric: metricName(metric) }))))),
      el("td", {}, healthCell(row)))));
    document.getElementById("empty").hidden = rows.length > 0;
  } catch (error) {
    showError(error);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
await load();
document.body.dataset.ready = "true";
liveStream(() => {
  announce(_("The worklist has been updated."));
  load();
});
