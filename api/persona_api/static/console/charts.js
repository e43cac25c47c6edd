// The population as charts (Chart.js, installed from npm by its lockfile and served by the
// API), each with its numbers in a table: for screen readers, for copying, and as the
// whole figure where the chart library is not installed.

import { formatCost, formatNumber, h } from "./dom.js";

const COLORS = ["#3b6fd8", "#d8563b", "#3ba776", "#a35ad8", "#d8a33b", "#3bb5d8", "#7a7a7a"];
const GENDER_COLORS = { female: "#d8563b", male: "#3b6fd8", "non-binary": "#3ba776" };
const TOP_COUNTRIES = 15;

const library = () => (typeof window.Chart === "function" ? window.Chart : null);
let themed = false;

// Chart.js's defaults follow the page's colours (light or dark) and reduced motion.
function theme(Chart) {
  if (themed) return;
  themed = true;
  const style = getComputedStyle(document.documentElement);
  Chart.defaults.color = style.getPropertyValue("--muted").trim() || "#555";
  Chart.defaults.borderColor = style.getPropertyValue("--line").trim() || "#ddd";
  Chart.defaults.font.family = style.getPropertyValue("font-family");
  Chart.defaults.animation = matchMedia("(prefers-reduced-motion: reduce)").matches ? false : { duration: 300 };
}

function table(labels, series, format) {
  return h(
    "table",
    null,
    h("thead", null, h("tr", null, h("th", { scope: "col" }, ""), series.map((s) => h("th", { scope: "col" }, s.label)))),
    h(
      "tbody",
      null,
      labels.map((label, i) =>
        h("tr", null, h("th", { scope: "row" }, label), series.map((s) => h("td", null, (s.format ?? format)(Math.abs(s.data[i] ?? 0))))),
      ),
    ),
  );
}

// Charts of a view that is being replaced: Chart.js keeps every chart in a registry
// until it is destroyed.
export function destroyCharts(root) {
  const Chart = library();
  for (const canvas of root.querySelectorAll("canvas")) Chart?.getChart(canvas)?.destroy();
}

// A figure: caption, canvas, and the numbers. `series` are Chart.js datasets; the chart
// is drawn once the figure is in the document (Chart.js sizes it from its container).
function chart(id, title, { type = "bar", labels, series, options = {}, format = formatNumber, rowHeight }) {
  const figure = h("figure", { class: "chart", id: `chart-${id}` }, h("figcaption", null, title));
  if (!labels.length) {
    figure.append(h("p", { class: "empty" }, "Nothing counted yet."));
    return figure;
  }
  const Chart = library();
  if (Chart) {
    const canvas = h("canvas", { role: "img", "aria-label": `${title}. The numbers are in the table that follows.` });
    const box = h("div", { class: "chart-box" }, canvas);
    if (rowHeight) box.style.height = `${Math.max(160, labels.length * rowHeight + 60)}px`;
    figure.append(box);
    requestAnimationFrame(() => {
      if (!canvas.isConnected) return; // the view was left before its first frame
      theme(Chart);
      new Chart(canvas, {
        type,
        data: { labels, datasets: series.map((s, i) => ({ backgroundColor: COLORS[i % COLORS.length], borderColor: COLORS[i % COLORS.length], ...s })) },
        options: { responsive: true, maintainAspectRatio: false, ...options },
      });
    });
  } else {
    figure.append(h("p", { class: "hint" }, "Charts need the chart library (`make install` installs it); the numbers:"));
  }
  figure.append(h("details", { open: !Chart || undefined }, h("summary", null, "Numbers"), table(labels, series, format)));
  return figure;
}

const horizontal = (extra = {}) => ({ indexAxis: "y", plugins: { legend: { display: false } }, ...extra });

export function countries(stats) {
  const ranked = Object.entries(stats.by_country);
  const shown = ranked.slice(0, TOP_COUNTRIES);
  const others = ranked.slice(TOP_COUNTRIES).reduce((sum, [, n]) => sum + n, 0);
  if (others) shown.push([`${ranked.length - TOP_COUNTRIES} other countries`, others]);
  return chart("countries", "Countries", {
    labels: shown.map(([country]) => country),
    series: [{ label: "Personas", data: shown.map(([, n]) => n) }],
    options: horizontal(),
    rowHeight: 24,
  });
}

// Ages by gender as a population pyramid: men to the left (drawn as negative values),
// women and non-binary people to the right, the oldest bucket on top.
export function pyramid(stats) {
  const buckets = Object.keys(stats.by_age_and_gender).sort().reverse();
  const genders = ["male", "female", "non-binary"].filter((g) => buckets.some((b) => stats.by_age_and_gender[b][g]));
  const series = genders.map((gender) => ({
    label: gender,
    data: buckets.map((b) => (gender === "male" ? -1 : 1) * (stats.by_age_and_gender[b][gender] ?? 0)),
    backgroundColor: GENDER_COLORS[gender],
    borderColor: GENDER_COLORS[gender],
  }));
  const absolute = (value) => formatNumber(Math.abs(value));
  return chart("pyramid", "Age pyramid by gender", {
    labels: buckets,
    series,
    rowHeight: 34,
    options: {
      indexAxis: "y",
      scales: { x: { stacked: true, ticks: { callback: absolute } }, y: { stacked: true } },
      plugins: { tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${absolute(item.raw)}` } } },
    },
  });
}

export function occupations(stats) {
  return chart("occupations", "Top occupations", {
    labels: stats.top_occupations.map((o) => o.occupation),
    series: [{ label: "Personas", data: stats.top_occupations.map((o) => o.count) }],
    options: horizontal(),
    rowHeight: 24,
  });
}

export function perDay(stats) {
  const days = Object.entries(stats.personas_per_day);
  const shown = days.some(([, n]) => n > 0) ? days : [];
  return chart("per-day", "Personas per day (UTC, last 30 days)", {
    labels: shown.map(([day]) => day.slice(5)),
    series: [{ label: "Personas", data: shown.map(([, n]) => n) }],
    options: { plugins: { legend: { display: false } } },
  });
}

export function models(stats) {
  const labels = stats.by_model.map((m) => `${m.generator}/${m.model}`);
  return chart("models", "Tokens and cost per model", {
    labels,
    series: [
      { label: "Prompt tokens", data: stats.by_model.map((m) => m.prompt_tokens), yAxisID: "tokens" },
      { label: "Completion tokens", data: stats.by_model.map((m) => m.completion_tokens), yAxisID: "tokens" },
      { label: "Cost (USD)", data: stats.by_model.map((m) => m.cost_usd), yAxisID: "cost", type: "line", format: formatCost },
    ],
    options: {
      scales: {
        tokens: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "tokens" } },
        cost: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "USD" } },
      },
    },
  });
}

// The figures a reader looks at first, as tiles.
export function tiles(stats) {
  const share = stats.total ? ` (${((100 * stats.near_duplicates_caught) / stats.total).toFixed(1)} %)` : "";
  const items = [
    ["Personas", formatNumber(stats.total), "total"],
    ["Near-duplicates caught", `${formatNumber(stats.near_duplicates_caught)}${share}`, "near-duplicates"],
    ["Failed", formatNumber(stats.failed_ordinals), "failed"],
    ["Tokens", formatNumber(stats.total_tokens), "tokens"],
    ["Cost", formatCost(stats.cost_usd), "cost"],
  ];
  return h("dl", { class: "tiles" }, items.map(([label, value, key]) => h("div", { class: "tile", dataset: { tile: key } }, h("dt", null, label), h("dd", null, value))));
}

export function population(stats) {
  return h("div", { class: "charts" }, countries(stats), pyramid(stats), occupations(stats), perDay(stats), models(stats));
}

// One dimension of a plan: the count each option was planned for next to the count stored.
export function planned(dimension) {
  const name = dimension.dimension.replace("_", " ");
  return chart(`plan-${dimension.dimension.replace(/[^a-z0-9]+/gi, "-")}`, `Planned and stored: ${name}`, {
    labels: dimension.options.map((o) => o.label),
    series: [
      { label: "Planned", data: dimension.options.map((o) => o.planned), backgroundColor: "#9db4e8", borderColor: "#9db4e8" },
      { label: "Stored", data: dimension.options.map((o) => o.stored) },
    ],
    options: { indexAxis: "y" },
    rowHeight: 30,
  });
}
