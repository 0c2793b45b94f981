import {
  _, announce, api, boot, el, formatTime, formatValue, metricName, severityName, showError, stateName,
} from "../app.js";

await boot();
const id = document.body.dataset.alert;
document.getElementById("alert-id").textContent = `#${id}`;

function fact(term, value, raw = false) {
  return [el("dt", {}, term), el("dd", raw ? { translate: "no" } : {}, value ?? "—")];
}

async function load() {
  try {
    const alert = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
    document.getElementById("alert-facts").replaceChildren(...[
      fact(_("Patient"), el("a", { href: `/web/patients/${encodeURIComponent(alert.patient)}` }, alert.patient), true),
      fact(_("Severity"), severityName(alert.severity)),
      fact(_("State"), stateName(alert.state)),
      fact(_("Measurement"), metricName(alert.metric)),
      fact(_("Threshold"), formatValue(alert.metric, alert.threshold, "")),
      fact(_("Worst value"), formatValue(alert.metric, alert.worst_value, "")),
      fact(_("Began"), formatTime(alert.episode_start)),
      fact(_("Last seen"), formatTime(alert.last)),
      fact(_("Rule message"), alert.message, true),
      fact(_("Acknowledged by"), alert.acknowledged_by
        ? el("span", {}, el("span", { translate: "no" }, alert.acknowledged_by), `, ${formatTime(alert.acknowledged_at)}`) : null),
    ].flat());
    const actions = document.getElementById("alert-actions");
    actions.replaceChildren();
    if (alert.state === "firing" || alert.state === "pending") {
      actions.append(el("button", { type: "button", onclick: async () => {
        try { await api(`/api/v1/alerts/${id}/ack`, { method: "POST" }); announce(_("Acknowledged.")); await load(); }
        catch (error) { showError(error); }
      } }, _("Acknowledge")));
    }
    document.querySelector("#transitions tbody").replaceChildren(...alert.transitions.map((t) => el("tr", {},
      el("td", {}, formatTime(t.at)), el("td", {}, t.from_state ? stateName(t.from_state) : "—"),
      el("td", {}, stateName(t.to_state)), el("td", { translate: "no" }, t.actor),
      el("td", { translate: "no" }, t.reason))));
    document.querySelector("#notifications tbody").replaceChildren(...alert.notifications.map((n) => el("tr", {},
      el("td", {}, formatTime(n.created_at)), el("td", { translate: "no" }, n.channel),
      el("td", { translate: "no" }, n.address), el("td", { translate: "no" }, n.purpose),
      el("td", { translate: "no" }, n.status))));
  } catch (error) {
    showError(error);
  }
}
await load();
document.body.dataset.ready = "true";
