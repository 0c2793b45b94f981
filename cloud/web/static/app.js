// Shared by every page: the message catalogue, the signed-in user's token, API calls, preferences,
// formatting, the live stream and small DOM helpers. No framework: each page is a small module.

const LANG = document.documentElement.lang || "en";
let messages = {};

export async function loadCatalogue() {
  if (LANG === "en") return;
  const response = await fetch(`/web/i18n/${LANG}.json`);
  if (response.ok) messages = await response.json();
}

/** A message in the page's language (the English text is the message id, as in the .po files). */
export function _(text) {
  return messages[text] || text;
}

/** Fill {name} placeholders of a translated message. */
export function fmt(text, values) {
  return text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
}

/** Like fmt, but values may be DOM nodes (e.g. a name marked translate="no"): returns nodes to append. */
export function fmtNodes(text, values) {
  return text.split(/(\{\w+\})/).filter(Boolean).map((part) => {
    const name = part.match(/^\{(\w+)\}$/)?.[1];
    if (!name || !(name in values)) return part;
    return values[name] instanceof Node ? values[name] : String(values[name]);
  });
}

/** A piece of data shown as it is (a user name, a device id): not text to translate. */
export function raw(text) {
  return el("span", { translate: "no" }, text ?? "—");
}

// -- the token: kept in sessionStorage (this tab only, gone when it closes) and sent as a bearer header.
const TOKEN_KEY = "vb.token";
const REFRESH_KEY = "vb.refresh";
const ME_KEY = "vb.me";

export function setTokens(tokens) {
  sessionStorage.setItem(TOKEN_KEY, tokens.access_token);
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
}

export function signedIn() {
  return sessionStorage.getItem(TOKEN_KEY) !== null;
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

let refreshing = null;

async function refreshTokens() {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  if (!refresh) return false;
  refreshing ??= fetch("/api/v1/auth/refresh", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ refresh_token: refresh }),
  }).then(async (response) => {
    if (!response.ok) return false;
    setTokens(await response.json());
    return true;
  }).finally(() => { refreshing = null; });
  return refreshing;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Call the JSON API as the signed-in user; a 401 refreshes the token once, then sends the user to sign in. */
export async function api(path, { method = "GET", body, retry = true } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && retry && await refreshTokens()) return api(path, { method, body, retry: false });
  if (response.status === 401) {
    signOutLocally();
    location.assign("/web/login");
    throw new ApiError(401, _("Please sign in again."));
  }
  if (!response.ok) {
    let message = response.statusText;
    try {
      const error = (await response.json()).error;
      message = error?.message ?? message;
      if (Array.isArray(error?.details)) message += ": " + error.details.map((d) => `${d.loc ?? d.field ?? ""} ${d.msg ?? d.message ?? ""}`).join("; ");
    } catch { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  return response.status === 204 ? null : response.json();
}

function signOutLocally() {
  for (const key of [TOKEN_KEY, REFRESH_KEY, ME_KEY]) sessionStorage.removeItem(key);
}

export async function signOut() {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  signOutLocally();
  if (refresh) {
    await fetch("/api/v1/auth/logout", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ refresh_token: refresh }),
    }).catch(() => {});
  }
  location.assign("/web/login");
}

export async function me() {
  const cached = sessionStorage.getItem(ME_KEY);
  if (cached) return JSON.parse(cached);
  const found = await api("/api/v1/auth/me");
  sessionStorage.setItem(ME_KEY, JSON.stringify(found));
  return found;
}

export function isClinician(user) {
  return user.patients.some((p) => p.relation === "care") || user.role === "doctor" || user.role === "nurse";
}

export function homeOf(user) {
  return isClinician(user) ? "/web/worklist" : user.role === "family" ? "/web/family" : "/api/docs";
}

// -- preferences: per user, in this browser; the language also goes to the server as a cookie.
const LANG_COOKIE = "vb_lang";

export function prefsOf(username) {
  const stored = JSON.parse(localStorage.getItem(`vb.prefs.${username}`) || "{}");
  return {
    lang: stored.lang || LANG,
    tz: stored.tz || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    glucose: stored.glucose || (LANG === "zh-Hans" ? "mmol/L" : "mg/dL"),
  };
}

export function savePrefs(username, prefs) {
  localStorage.setItem(`vb.prefs.${username}`, JSON.stringify(prefs));
  setLanguageCookie(prefs.lang);
}

export function setLanguageCookie(lang) {
  document.cookie = `${LANG_COOKIE}=${encodeURIComponent(lang)}; path=/; max-age=31536000; SameSite=Strict`;
}

let current = { lang: LANG, tz: "UTC", glucose: "mmol/L" };

/** Start a page: catalogue, signed-in user, navigation by role. Returns the user (or goes to sign in). */
export async function boot() {
  await loadCatalogue();
  if (!signedIn()) {
    location.assign("/web/login");
    return new Promise(() => {});
  }
  const user = await me();
  current = prefsOf(user.username);
  const clinician = isClinician(user);
  for (const link of document.querySelectorAll("[data-role]")) {
    link.hidden = link.dataset.role === "clinician" ? !clinician : user.role !== link.dataset.role;
  }
  const who = document.getElementById("who");
  if (who) who.textContent = user.username;
  document.getElementById("logout")?.addEventListener("click", signOut);
  return user;
}

export function prefs() {
  return current;
}

// -- formatting
export function formatTime(iso, withDate = true) {
  if (!iso) return "—";
  const options = withDate
    ? { dateStyle: "medium", timeStyle: "short", timeZone: current.tz }
    : { timeStyle: "short", timeZone: current.tz };
  return new Intl.DateTimeFormat(LANG, options).format(new Date(iso));
}

export function formatWeekday(iso) {
  return new Intl.DateTimeFormat(LANG, { weekday: "long", timeZone: current.tz }).format(new Date(iso));
}

export function hoursAgo(iso) {
  if (!iso) return null;
  return (Date.now() - new Date(iso).getTime()) / 3.6e6;
}

export function formatHours(hours) {
  if (hours === null || hours === undefined) return _("never");
  if (hours < 1) return fmt(_("{n} min ago"), { n: Math.max(0, Math.round(hours * 60)) });
  if (hours < 48) return fmt(_("{n} h ago"), { n: Math.round(hours) });
  return fmt(_("{n} days ago"), { n: Math.round(hours / 24) });
}

// Functions, not constants: the catalogue is loaded after this module, and the extractor finds each _("...").
const METRIC_NAMES = () => ({
  spo2: _("Oxygen saturation"), heart_rate: _("Heart rate"), pulse_rate: _("Pulse rate"),
  bp_systolic: _("Systolic blood pressure"), bp_diastolic: _("Diastolic blood pressure"),
  bp_mean: _("Mean arterial pressure"), body_temperature: _("Body temperature"),
  respiratory_rate: _("Respiratory rate"), body_weight: _("Body weight"), blood_glucose: _("Blood glucose"),
  rr_interval: _("R-R interval"), perfusion_index: _("Perfusion index"),
  hrv_sdnn: _("Heart rate variability (SDNN)"), hrv_rmssd: _("Heart rate variability (RMSSD)"),
  af_irregularity: _("Irregular rhythm index"), ecg_sqi: _("ECG signal quality"), ppg_sqi: _("PPG signal quality"),
  ecg: _("ECG"), ppg: _("Pulse wave"), gateway: _("Home gateway"),
});

export function metricName(metric) {
  return METRIC_NAMES()[metric] ?? metric;
}

// Catalogue units (vitals/catalogue.py), for values that arrive without one (an alert's threshold).
const CATALOGUE_UNITS = { spo2: "%", heart_rate: "/min", pulse_rate: "/min", bp_systolic: "mm[Hg]",
  bp_diastolic: "mm[Hg]", bp_mean: "mm[Hg]", body_temperature: "Cel", respiratory_rate: "/min", body_weight: "kg",
  blood_glucose: "mmol/L", rr_interval: "ms", perfusion_index: "%", hrv_sdnn: "ms", hrv_rmssd: "ms" };
const UNIT_TEXT = { "mm[Hg]": "mmHg", Cel: "°C", "/min": "/min", "1": "" };
const MGDL_PER_MMOLL = 18.016;

/** A value in the user's unit: glucose converted between mmol/L and mg/dL, others as stored. */
export function displayValue(metric, value, unit) {
  if (value === null || value === undefined) return { value: null, unit: "" };
  unit = unit || CATALOGUE_UNITS[metric] || "";
  if (metric === "blood_glucose" || unit === "mg/dL" || unit === "mmol/L") {
    let mmol = unit === "mg/dL" ? value / MGDL_PER_MMOLL : value;
    if (current.glucose === "mg/dL") return { value: Math.round(mmol * MGDL_PER_MMOLL), unit: "mg/dL" };
    return { value: Math.round(mmol * 10) / 10, unit: "mmol/L" };
  }
  const shown = Math.abs(value) >= 100 ? Math.round(value) : Math.round(value * 10) / 10;
  return { value: shown, unit: UNIT_TEXT[unit] ?? unit ?? "" };
}

export function formatValue(metric, value, unit) {
  const shown = displayValue(metric, value, unit);
  return shown.value === null ? "—" : `${shown.value}${shown.unit ? " " + shown.unit : ""}`;
}

export function severityName(severity) {
  return { critical: _("Critical"), urgent: _("Urgent"), warning: _("Warning"), info: _("Information") }[severity]
    ?? severity;
}

export function stateName(state) {
  return { pending: _("Pending"), firing: _("Firing"), acknowledged: _("Acknowledged"), resolved: _("Resolved") }[state]
    ?? state;
}

const CONDITIONS = () => ({ hypertension: _("Hypertension"), heart_failure: _("Heart failure"), copd: _("COPD"),
  diabetes: _("Diabetes"), atrial_fibrillation: _("Atrial fibrillation") });
export function conditionName(condition) {
  return CONDITIONS()[condition] ?? condition;
}
export const CONDITION_KEYS = ["hypertension", "heart_failure", "copd", "diabetes", "atrial_fibrillation"];

// -- DOM
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function showError(error) {
  const box = document.getElementById("error");
  if (!box) return;
  box.textContent = error instanceof ApiError && error.status === 404 ? _("Not found, or not one of your patients.")
    : error instanceof ApiError && error.status === 403 ? _("You are not allowed to do this.")
      : fmt(_("Something went wrong: {message}"), { message: error.message || String(error) });
  box.hidden = false;
}

export function clearError() {
  const box = document.getElementById("error");
  if (box) box.hidden = true;
}

export function announce(text) {
  const region = document.getElementById("announce");
  if (region) region.textContent = text;
}

/** A 7-day trend as a small SVG line (no axes), with a text alternative. */
export function sparkline(points, label) {
  const width = 120, height = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.classList.add("spark");
  if (!points || points.length < 2) return svg;
  const times = points.map((p) => new Date(p[0]).getTime());
  const values = points.map((p) => p[1]);
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const v0 = Math.min(...values), v1 = Math.max(...values);
  const x = (t) => ((t - t0) / (t1 - t0 || 1)) * (width - 2) + 1;
  const y = (v) => height - 1 - ((v - v0) / (v1 - v0 || 1)) * (height - 2);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.map((p, i) => `${x(times[i]).toFixed(1)},${y(values[i]).toFixed(1)}`).join(" "));
  svg.append(line);
  return svg;
}

// -- live updates: Server-Sent Events read through fetch, which (unlike EventSource) sends the bearer header.
export function liveStream(onEvent) {
  let lastId = null;
  let stopped = false;
  async function connect() {
    while (!stopped) {
      let retry = 2000;
      try {
        const headers = { Accept: "text/event-stream", ...authHeaders() };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await fetch("/api/v1/alerts/stream", { headers });
        if (response.status === 401) {
          if (await refreshTokens()) continue;
          return;
        }
        if (!response.ok || !response.body) throw new Error(String(response.status));
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = { type: "message", data: "" };
            for (const line of block.split("\n")) {
              const colon = line.indexOf(":");
              if (colon === 0) continue;
              const field = colon < 0 ? line : line.slice(0, colon);
              const data = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "id") lastId = data;
              else if (field === "event") event.type = data;
              else if (field === "data") event.data += event.data ? "\n" + data : data;
              else if (field === "retry" && /^\d+$/.test(data)) retry = Number(data);
            }
            if (event.data) {
              try { onEvent(event.type, JSON.parse(event.data)); } catch (error) { console.error(error); }
            }
          }
        }
      } catch (error) {
        console.warn("live stream interrupted", error);
      }
      await new Promise((resolve) => setTimeout(resolve, retry));
    }
  }
  connect();
  return () => { stopped = true; };
}

/** Load uPlot from the npm package the cloud serves (null when the packages are not built). */
export async function loadUPlot() {
  if (document.body.dataset.assets !== "ready") return null;
  const module = await import("/web/vendor/uplot/dist/uPlot.esm.js");
  return module.default;
}
