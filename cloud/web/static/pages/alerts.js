import {
  _, announce, api, boot, clearError, el, fmt, formatTime, formatValue, liveStream, metricName, severityName,
  showError, stateName,
} from "../app.js";

await boot();
const body = document.querySelector("#alerts tbody");
const stateSelect = document.getElementById("state");
const names = new Map((await api("/api/v1/patients").catch(() => [])).map((p) => [p.id, p.display_name]));

function silenceForm(alert) {
  const id = `silence-${alert.id}`;
  return el("form", { class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    const until = event.target.querySelector("input").value;
    if (!until) return;
    await act(() => api("/api/v1/silences", { method: "POST", body: {
      patient: alert.patient, rule: alert.rule, ends_at: new Date(until).toISOString(),
      reason: fmt(_("Silenced from the inbox (alert {id})"), { id: alert.id }) } }), _("Silenced."));
  } },
  el("label", { for: id }, _("Silence until")), el("input", { id, type: "datetime-local", required: true }),
  el("button", { type: "submit" }, _("Silence")));
}

function resolveForm(alert) {
  const id = `reason-${alert.id}`;
  return el("form", { class: "inline", onsubmit: async (event) => {
    event.preventDefault();
    const reason = event.target.querySelector("select").value;
    await act(() => api(`/api/v1/alerts/${alert.id}/resolve`, { method: "POST", body: { reason } }), _("Resolved."));
  } },
  el("label", { for: id }, _("Reason")),
  el("select", { id },
    el("option", { value: "actioned" }, _("Actioned")),
    el("option", { value: "false_alarm" }, _("False alarm")),
    el("option", { value: "device_problem" }, _("Device problem"))),
  el("button", { type: "submit" }, _("Resolve")));
}

async function act(call, done) {
  try {
    clearError();
    await call();
    announce(done);
    await load();
  } catch (error) {
    showError(error);
  }
}

async function load() {
  try {
    const alerts = await api(`/api/v1/alerts?state=${encodeURIComponent(stateSelect.value)}&limit=500`);
    body.replaceChildren(...alerts.map((alert) => el("tr", { "data-alert": alert.id, class: `sev-${alert.severity}` },
      el("td", {}, el("span", { class: `badge ${alert.severity}` }, severityName(alert.severity))),
      el("td", {}, el("a", { href: `/web/patients/${encodeURIComponent(alert.patient)}`, translate: "no" },
        names.get(alert.patient) ?? alert.patient)),
      el("td", {}, metricName(alert.metric)),
      el("td", {}, formatValue(alert.metric, alert.worst_value, "")),
      el("td", {}, formatTime(alert.episode_start)),
      el("td", {}, stateName(alert.state)),
      el("td", { class: "actions" },
        el("a", { href: `/web/alerts/${alert.id}` }, _("Details")),
        alert.state === "firing" || alert.state === "pending"
          ? el("button", { type: "button", class: "ack", onclick: () => act(
            () => api(`/api/v1/alerts/${alert.id}/ack`, { method: "POST" }), _("Acknowledged.")) }, _("Acknowledge"))
          : null,
        resolveForm(alert), silenceForm(alert)))));
    document.getElementById("empty").hidden = alerts.length > 0;
  } catch (error) {
    showError(error);
  }
  try {
    const silences = await api("/api/v1/silences?active=true");
    document.getElementById("silences").replaceChildren(...silences.map((s) => el("li", {},
      fmt(_("{patient}: silenced until {until}"), { patient: names.get(s.patient) ?? s.patient, until: formatTime(s.ends_at) }),
      " ", el("button", { type: "button", onclick: () => act(
        () => api(`/api/v1/silences/${s.id}`, { method: "DELETE" }), _("Silence ended.")) }, _("End silence")))));
  } catch { /* family members have no silences */ }
}

stateSelect.addEventListener("change", load);
await load();
document.body.dataset.ready = "true";
liveStream((type) => {
  if (type === "transition") {
    announce(_("The alert list has changed."));
    load();
  }
});
