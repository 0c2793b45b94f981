import {
  _, ApiError, CONDITION_KEYS, announce, api, boot, clearError, conditionName, el, fmt, fmtNodes, formatTime, metricName, raw,
  showError,
} from "../app.js";

await boot();
const patient = document.body.dataset.patient;
const base = `/api/v1/patients/${encodeURIComponent(patient)}`;
const METRICS = ["spo2", "heart_rate", "respiratory_rate", "bp_systolic", "bp_diastolic", "body_temperature",
  "blood_glucose", "body_weight"];
let record = null;
let rowCount = 0;

function metricSelect(value, label) {
  const id = `m-${rowCount++}`;
  const select = el("select", { id, class: "metric", "aria-label": label },
    METRICS.map((m) => el("option", { value: m, selected: m === value }, metricName(m))));
  if (value && !METRICS.includes(value)) select.append(el("option", { value, selected: true }, value));
  return select;
}

function removeButton() {
  return el("button", { type: "button", class: "link", onclick: (event) => event.target.closest("tr").remove() }, _("Remove"));
}

function targetRow(metric, target = {}) {
  return el("tr", {}, el("td", {}, metricSelect(metric, _("Measurement"))),
    el("td", {}, el("input", { type: "number", step: "any", class: "low", value: target.low ?? "", "aria-label": _("Low") })),
    el("td", {}, el("input", { type: "number", step: "any", class: "high", value: target.high ?? "", "aria-label": _("High") })),
    el("td", {}, removeButton()));
}

function planRow(item = { metric: "bp_systolic", windows: [] }) {
  return el("tr", {}, el("td", {}, metricSelect(item.metric, _("Measurement"))),
    el("td", {}, el("input", { class: "windows", value: item.windows.map((w) => `${w.start}-${w.end}`).join(", "),
      "aria-label": _("Windows"), placeholder: "07:00-10:00, 19:00-21:00" })),
    el("td", {}, removeButton()));
}

function fill(settings) {
  document.getElementById("conditions").replaceChildren(...CONDITION_KEYS.map((c) => el("label", { class: "check" },
    el("input", { type: "checkbox", value: c, checked: (settings.conditions ?? []).includes(c) }), " ", conditionName(c))));
  document.getElementById("time_zone").value = settings.time_zone ?? "UTC";
  document.getElementById("spo2_scale").value = String(settings.spo2_scale ?? 1);
  document.getElementById("on_oxygen").checked = Boolean(settings.on_oxygen);
  document.querySelector("#targets tbody").replaceChildren(...Object.entries(settings.targets ?? {}).map(([m, t]) => targetRow(m, t)));
  document.querySelector("#care-plan tbody").replaceChildren(...(settings.care_plan ?? []).map(planRow));
  document.getElementById("rules").value = JSON.stringify(settings.rules ?? {}, null, 2);
}

function collect() {
  const number = (input) => (input.value === "" ? null : Number(input.value));
  const targets = {};
  for (const row of document.querySelectorAll("#targets tbody tr")) {
    targets[row.querySelector(".metric").value] = { low: number(row.querySelector(".low")), high: number(row.querySelector(".high")) };
  }
  const carePlan = [...document.querySelectorAll("#care-plan tbody tr")].map((row) => ({
    metric: row.querySelector(".metric").value,
    windows: row.querySelector(".windows").value.split(",").map((w) => w.trim()).filter(Boolean).map((w) => {
      const [start, end] = w.split("-").map((s) => s.trim());
      return { start, end };
    }),
  }));
  let rules;
  try {
    rules = JSON.parse(document.getElementById("rules").value || "{}");
  } catch {
    throw new Error(_("The rule overrides are not valid JSON."));
  }
  return {
    ...(record?.settings ?? {}),
    conditions: [...document.querySelectorAll("#conditions input:checked")].map((i) => i.value),
    time_zone: document.getElementById("time_zone").value.trim(),
    spo2_scale: Number(document.getElementById("spo2_scale").value),
    on_oxygen: document.getElementById("on_oxygen").checked,
    targets, care_plan: carePlan, rules,
  };
}

function showProblems(error) {
  const list = document.getElementById("form-errors");
  list.replaceChildren(el("li", {}, error instanceof ApiError && error.status === 409
    ? _("Someone else changed these settings meanwhile; reload the page to see their version.") : error.message));
}

async function loadHistory() {
  const history = await api(`${base}/settings/history`);
  document.querySelector("#history tbody").replaceChildren(...history.map((h) => el("tr", {},
    el("td", {}, String(h.version)), el("td", {}, formatTime(h.changed_at)), el("td", { translate: "no" }, h.changed_by ?? "—"),
    el("td", { translate: "no" }, h.reason ?? ""))));
}

async function load() {
  try {
    const patientRecord = await api(base);
    document.getElementById("patient-name").textContent = patientRecord.display_name;
    document.getElementById("back").href = `/web/patients/${encodeURIComponent(patient)}`;
    record = await api(`${base}/settings`);
    document.getElementById("version").replaceChildren(...(record.version
      ? fmtNodes(_("Version {version}, changed by {by} on {at}"), { version: record.version, by: raw(record.changed_by), at: formatTime(record.changed_at) })
      : [_("No settings saved yet: the defaults apply.")]));
    fill(record.settings);
    await loadHistory();
  } catch (error) {
    showError(error);
  }
}

document.getElementById("add-target").addEventListener("click", () => document.querySelector("#targets tbody").append(targetRow("spo2")));
document.getElementById("add-plan").addEventListener("click", () => document.querySelector("#care-plan tbody").append(planRow()));
document.getElementById("preview").addEventListener("click", async () => {
  document.getElementById("form-errors").replaceChildren();
  try {
    const result = await api(`${base}/settings/preview`, { method: "POST", body: { settings: collect(), days: 30 } });
    const rules = [...new Set([...Object.keys(result.current.by_rule), ...Object.keys(result.proposed.by_rule)])];
    document.getElementById("preview-result").replaceChildren(
      el("p", {}, fmt(_("Over the last {days} days the current settings raised {current} alerts; the new settings would have raised {proposed}."),
        { days: result.days, current: result.current.alerts, proposed: result.proposed.alerts })),
      el("table", { class: "data" }, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, _("Rule")),
        el("th", { scope: "col" }, _("Current")), el("th", { scope: "col" }, _("Proposed")))),
      el("tbody", {}, rules.map((r) => el("tr", {}, el("td", { translate: "no" }, r),
        el("td", {}, String(result.current.by_rule[r] ?? 0)), el("td", {}, String(result.proposed.by_rule[r] ?? 0)))))));
  } catch (error) {
    showProblems(error);
  }
});
document.getElementById("settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  document.getElementById("form-errors").replaceChildren();
  clearError();
  const reason = document.getElementById("reason").value.trim();
  if (!reason) {
    showProblems(new Error(_("Give a reason for the change.")));
    document.getElementById("reason").focus();
    return;
  }
  try {
    record = await api(`${base}/settings`, { method: "PUT", body: { settings: collect(), reason, expected_version: record?.version ?? 0 } });
    announce(_("Saved."));
    document.getElementById("reason").value = "";
    await load();
  } catch (error) {
    showProblems(error);
  }
});
await load();
document.body.dataset.ready = "true";
