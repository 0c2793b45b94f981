import { _, boot, prefsOf, savePrefs } from "../app.js";

const user = await boot();
const current = prefsOf(user.username);
document.getElementById("language").value = current.lang;
document.getElementById("timezone").value = current.tz;
document.getElementById("glucose").value = current.glucose;
const zones = document.getElementById("zones");
for (const zone of (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : ["UTC"])) {
  zones.append(new Option(zone, zone));
}
document.body.dataset.ready = "true";
document.getElementById("prefs").addEventListener("submit", (event) => {
  event.preventDefault();
  const lang = document.getElementById("language").value;
  let tz = document.getElementById("timezone").value.trim() || "UTC";
  try { new Intl.DateTimeFormat("en", { timeZone: tz }); } catch { tz = "UTC"; }
  savePrefs(user.username, { lang, tz, glucose: document.getElementById("glucose").value });
  if (lang !== document.documentElement.lang) location.reload();
  else document.getElementById("saved").textContent = _("Saved.");
});
