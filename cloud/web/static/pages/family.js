import { _, api, boot, el, fmt, fmtNodes, raw, formatTime, formatValue, formatWeekday, hoursAgo, liveStream, metricName, showError } from "../app.js";

const user = await boot();
const box = document.getElementById("family");
const mine = user.patients.filter((p) => p.relation === "family");

function silentText(device) {
  const since = device.silent_since ?? device.last_seen;
  if (!since) return fmtNodes(_("The {device} has not sent anything yet."), { device: raw(device.device) });
  const hours = hoursAgo(since);
  if (hours < 24) return fmtNodes(_("The {device} has not sent anything since {time}."), { device: raw(device.device), time: formatTime(since, false) });
  return fmtNodes(_("The {device} has not sent anything since {day}."), { device: raw(device.device), day: formatWeekday(since) });
}

function readingText(reading) {
  const value = formatValue(reading.metric, reading.value, reading.unit);
  const words = { normal: _("as expected"), low: _("lower than the doctor's range"), high: _("higher than the doctor's range") };
  return fmt(_("{metric}: {value} at {time}, {status}."), {
    metric: metricName(reading.metric), value, time: formatTime(reading.time, false), status: words[reading.status] ?? reading.status,
  });
}

async function show(patient) {
  const today = await api(`/api/v1/patients/${encodeURIComponent(patient)}/today`);
  const gateway = today.gateway;
  const gatewayText = !gateway ? _("No home gateway is set up yet.")
    : gateway.state === "online" ? _("The home gateway is working.")
      : gateway.state === "offline" ? _("The home gateway is switched off or not connected to the internet.")
        : _("We have not heard from the home gateway recently.");
  return el("section", { class: "card", "aria-labelledby": `p-${patient}` },
    el("h2", { id: `p-${patient}`, translate: "no" }, today.display_name || patient),
    el("h3", {}, _("Today's readings")),
    today.readings.length ? el("ul", { class: "plain readings" }, today.readings.map((r) => el("li", { class: `status-${r.status}` }, readingText(r))))
      : el("p", {}, _("No readings yet today.")),
    el("h3", {}, _("Equipment")),
    el("ul", { class: "plain" }, el("li", { class: gateway?.state === "online" ? "ok" : "warn" }, gatewayText),
      today.devices.map((d) => el("li", { class: d.silent_since ? "warn" : "ok" },
        d.silent_since ? silentText(d) : fmtNodes(_("The {device} is working; last reading {time}."), { device: raw(d.device), time: formatTime(d.last_seen) })))),
    el("h3", {}, _("Measurements due today")),
    today.due.length ? el("ul", { class: "plain" }, today.due.map((d) => el("li", { class: d.done ? "ok" : "due" },
      fmt(d.done ? _("{metric} between {window}: done.") : _("{metric} between {window}: still to do."), { metric: metricName(d.metric), window: d.window }))))
      : el("p", {}, _("Nothing is due today.")));
}

async function load() {
  try {
    if (!mine.length) {
      box.replaceChildren(el("p", {}, _("You are not linked to a patient yet.")));
      return;
    }
    box.replaceChildren(...await Promise.all(mine.map((p) => show(p.patient))));
  } catch (error) {
    showError(error);
  }
}
await load();
document.body.dataset.ready = "true";
liveStream(() => load());
