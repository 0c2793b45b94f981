import { _, api, boot, el, fmt, formatTime, metricName, severityName, showError, stateName } from "../app.js";
import { summaryBlocks } from "../summary-view.js";

await boot();
const patient = document.body.dataset.patient;
const base = `/api/v1/patients/${encodeURIComponent(patient)}`;
document.getElementById("back").href = `/web/patients/${encodeURIComponent(patient)}`;
document.getElementById("print").addEventListener("click", () => window.print());
try {
  const record = await api(base);
  document.getElementById("patient-name").textContent = `${record.display_name} (${patient})`;
  const end = new Date();
  const start = new Date(end.getTime() - 7 * 24 * 3.6e6);
  document.getElementById("period").textContent = fmt(_("From {start} to {end}"), { start: formatTime(start.toISOString()), end: formatTime(end.toISOString()) });
  const summary = await api(`${base}/summary?days=7`);
  document.getElementById("summary").replaceChildren(...summaryBlocks(summary));
  const alerts = await api(`/api/v1/alerts?patient=${encodeURIComponent(patient)}&limit=200`);
  document.querySelector("#week-alerts tbody").replaceChildren(...alerts
    .filter((a) => new Date(a.fired) >= start)
    .map((a) => el("tr", {}, el("td", {}, formatTime(a.fired)), el("td", {}, severityName(a.severity)),
      el("td", {}, metricName(a.metric)), el("td", {}, stateName(a.state)))));
} catch (error) {
  showError(error);
}
document.body.dataset.ready = "true";
