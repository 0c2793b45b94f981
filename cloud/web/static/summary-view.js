// The 7-day summary blocks, shared by the patient page and its printable weekly summary.
import { _, el, fmt, formatValue, loadUPlot, prefs } from "./app.js";

function card(title, ...body) {
  return el("section", { class: "card" }, el("h3", {}, title), ...body);
}

function bpCard(bp) {
  if (!bp) return card(_("Blood pressure"), el("p", { class: "muted" }, _("No blood pressure readings this week.")));
  const row = (label, part) => el("tr", {}, el("th", { scope: "row" }, label),
    el("td", {}, part ? `${Math.round(part.systolic)}/${Math.round(part.diastolic)} mmHg` : "—"),
    el("td", {}, part ? String(part.n) : "0"));
  return card(_("Blood pressure, 7-day averages"), el("table", { class: "data" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, _("When")), el("th", { scope: "col" }, _("Average")),
      el("th", { scope: "col" }, _("Readings")))),
    el("tbody", {}, row(_("Morning"), bp.am), row(_("Evening"), bp.pm), row(_("All"), bp.all))));
}

function weightCard(weight) {
  if (!weight) return card(_("Weight"), el("p", { class: "muted" }, _("No weight readings this week.")));
  const change = (value) => (value === null || value === undefined ? "—" : `${value > 0 ? "+" : ""}${value.toFixed(1)} kg`);
  return card(_("Weight"), el("dl", { class: "facts" },
    el("dt", {}, _("Latest")), el("dd", {}, `${weight.latest.toFixed(1)} kg`),
    el("dt", {}, _("Change over 1 day")), el("dd", {}, change(weight.change_1d)),
    el("dt", {}, _("Change over 3 days")), el("dd", {}, change(weight.change_3d)),
    el("dt", {}, _("Change over 7 days")), el("dd", {}, change(weight.change_7d))));
}

function glucoseCard(glucose) {
  if (!glucose) return card(_("Blood glucose"), el("p", { class: "muted" }, _("No glucose readings this week.")));
  const names = { very_low: _("Very low"), low: _("Low"), in_range: _("In range"), high: _("High"), very_high: _("Very high") };
  const bar = el("div", { class: "tir", role: "img", "aria-label": _("Time in ranges") },
    Object.entries(glucose.time_in_ranges).map(([key, share]) => el("span", { class: `tir-${key}`, "data-share": share })));
  const list = el("ul", { class: "plain" }, Object.entries(glucose.time_in_ranges).map(([key, share]) =>
    el("li", {}, el("span", { class: `swatch tir-${key}` }), `${names[key] ?? key}: ${Math.round(share * 100)}%`)));
  const agp = el("div", { class: "chart agp", role: "img",
    "aria-label": _("Ambulatory glucose profile: median with 25–75% and 10–90% bands over a day") });
  const section = card(_("Blood glucose: time in ranges and daily profile"), bar, list, agp);
  for (const span of bar.children) span.style.flexGrow = span.dataset.share;
  drawAgp(agp, glucose);
  return section;
}

async function drawAgp(target, glucose) {
  const uPlot = await loadUPlot();
  if (!uPlot || !glucose.agp?.length) return;
  const convert = (v) => Number(formatValue("blood_glucose", v, glucose.unit).split(" ")[0]);
  const xs = glucose.agp.map((p) => p.minute * 60);
  const pick = (k) => glucose.agp.map((p) => convert(p[k]));
  new uPlot({
    width: Math.min(640, target.clientWidth || 600), height: 200, scales: { x: { time: false } },
    axes: [{ values: (u, ticks) => ticks.map((t) => `${String(Math.floor(t / 3600)).padStart(2, "0")}:00`) },
      { label: prefs().glucose }],
    series: [{ label: _("Time") }, { label: "10%", stroke: "#9ab" }, { label: "25%", stroke: "#57a" }, { label: "50%", stroke: "#123", width: 2 },
      { label: "75%", stroke: "#57a" }, { label: "90%", stroke: "#9ab" }],
    bands: [{ series: [5, 1], fill: "rgba(80,120,170,0.15)" }, { series: [4, 2], fill: "rgba(80,120,170,0.3)" }],
    legend: { show: false },
  }, [xs, pick("p10"), pick("p25"), pick("p50"), pick("p75"), pick("p90")], target);
}

/** The summary blocks of ``summary`` (the API's /summary answer). */
export function summaryBlocks(summary) {
  return [bpCard(summary.bp), glucoseCard(summary.glucose), weightCard(summary.weight)];
}

export { fmt };
