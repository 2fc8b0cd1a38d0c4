// Drift of a model's served versions: each feature's PSI over the recent
// closed windows against the threshold, charted; the reference and the
// last window's histogram of a chosen feature; the last window's figures
// per feature; data contract violations; online quality from feedback;
// recent alerts. Refreshed every two seconds.

import { call, seg } from "./api.js";
import { every, h, append, replace, table, when } from "./dom.js";
import { PALETTE, chartWidth, themedAxis } from "./chart.js";

const REFRESH_MS = 2000;
/** PSI above which a shift is usually called significant. */
const PSI_THRESHOLD = 0.2;

function num(x, digits = 3) {
  return x === null || x === undefined ? "—" : Number(x).toFixed(digits);
}

/** `x` in at most three significant digits, for bin labels. */
function short(x) {
  return Number(x.toPrecision(3)).toString();
}

/** Each feature's PSI per closed window, one line per feature, with the threshold. */
function psiChart(version, holder) {
  const windows = version.history;
  const names = version.features.filter((name) => windows.some((w) => w.feature_psi?.[name] !== undefined));
  const el = h("figure", { class: "chart", id: `drift-chart-${version.version}` },
    h("figcaption", {}, `PSI of each feature per window (threshold ${PSI_THRESHOLD})`));
  append(holder, el);
  const series = [{},
    ...names.map((name, i) => ({ label: name, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: true, size: 5 } })),
    { label: "threshold", stroke: "#9a5b00", dash: [6, 4], width: 1, points: { show: false } }];
  const data = [windows.map((w) => w.index),
    ...names.map((name) => windows.map((w) => w.feature_psi?.[name] ?? null)),
    windows.map(() => PSI_THRESHOLD)];
  const chart = new window.uPlot({
    width: chartWidth(el, 280), height: 220, series, legend: { live: false },
    scales: { x: { time: false } },
    axes: [themedAxis({ label: "window", incrs: [1, 2, 5, 10, 20, 50], values: (_, splits) => splits.map(String) }), themedAxis()],
  }, data, el);
  const largest = windows.map((w) => w.max_psi).filter((psi) => psi !== null && psi !== undefined);
  el.dataset.points = String(largest.length);
  el.dataset.above = String(largest.filter((psi) => psi > PSI_THRESHOLD).length);
  el.dataset.features = String(names.length);
  return chart;
}

/** Labels of a distribution's bins: value ranges, or categories. */
function binLabels(distribution) {
  if (distribution.categories) return distribution.categories;
  const edges = distribution.edges;
  return edges.slice(0, -1).map((low, i) => `${short(low)}–${short(edges[i + 1])}`);
}

/** The reference's and the last window's shares of each bin of `feature`, as side-by-side bars. */
function histogramChart(version, feature, holder) {
  const distribution = feature.distribution;
  const el = h("figure", {
    class: "chart", id: `drift-histogram-${version.version}`,
    dataset: { feature: feature.name },
  }, h("figcaption", {}, `${feature.name}: reference against window ${version.latest.index} (share of values)`));
  append(holder, el);
  if (!distribution) {
    append(el, h("p", { class: "muted" }, "No values of this feature in the window."));
    return null;
  }
  const labels = binLabels(distribution);
  const bars = (align) => window.uPlot.paths.bars({ size: [0.4, 60], align });
  const chart = new window.uPlot({
    width: chartWidth(el, 280), height: 220,
    scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: [0, 1] } },
    series: [{},
      { label: "reference", fill: "#1f5fbf99", stroke: "#1f5fbf", paths: bars(-1), points: { show: false } },
      { label: `window ${version.latest.index}`, fill: "#b4442c99", stroke: "#b4442c", paths: bars(1), points: { show: false } }],
    axes: [
      themedAxis({ splits: () => labels.map((_, i) => i), values: (_, splits) => splits.map((i) => labels[i] ?? ""), rotate: labels.length > 6 ? -30 : 0, size: labels.length > 6 ? 60 : 40 }),
      themedAxis(),
    ],
    legend: { live: false },
  }, [labels.map((_, i) => i), distribution.reference, distribution.window], el);
  el.dataset.reference = JSON.stringify(distribution.reference);
  el.dataset.window = JSON.stringify(distribution.window);
  return chart;
}

/** The feature picker and its histogram; `chosen` keeps the pick across refreshes. */
function histogramView(version, holder, chosen) {
  const latest = version.latest;
  const features = latest.features.concat(latest.prediction ? [latest.prediction] : []);
  if (!features.length) return null;
  const largest = features.reduce((a, b) => ((b.psi ?? -1) > (a.psi ?? -1) ? b : a));
  const name = features.some((f) => f.name === chosen.get(version.version)) ? chosen.get(version.version) : largest.name;
  const pickerId = `drift-feature-${version.version}`;
  const area = h("div");
  const picker = h("select", {
    id: pickerId,
    onchange: () => {
      chosen.set(version.version, picker.value);
      slot.chart?.destroy();
      replace(area);
      slot.chart = histogramChart(version, features.find((f) => f.name === picker.value), area);
    },
  }, features.map((f) => h("option", { value: f.name, selected: f.name === name }, f.name)));
  append(holder, h("p", {}, h("label", { for: pickerId }, "Histogram of "), picker), area);
  const slot = { chart: histogramChart(version, features.find((f) => f.name === name), area) };
  return { destroy: () => slot.chart?.destroy() };
}

function versionView(version, holder, chosen) {
  append(holder, h("h2", {}, `Version ${version.version}`),
    h("p", { class: "muted" },
      `${version.windows_closed} windows closed (${version.window_rows} rows or ${version.window_seconds} s each); ` +
      `${version.open_window.rows} rows in the open one; ${version.observed_requests} requests observed.`),
    version.note ? h("p", { class: "warn" }, version.note) : null);
  const charts = [psiChart(version, holder)];
  const latest = version.latest;
  if (latest) {
    charts.push(histogramView(version, holder, chosen));
    append(holder, table(`Window ${latest.index}, closed ${when(latest.closed_at_ms)}`,
      ["Feature", "PSI", "Level", "KS p-value", "JS distance", "Drifted"],
      latest.features.concat(latest.prediction ? [latest.prediction] : []).map((f) => [
        f.name, num(f.psi), f.psi_level ?? "", num(f.ks_p_value), num(f.js_distance),
        f.drifted ? h("strong", { class: "warn" }, "yes") : "no",
      ])));
  }
  const violations = Object.entries(version.contract_violations || {});
  append(holder, violations.length
    ? table("Data contract violations", ["Feature", "Kind", "Count"],
      violations.flatMap(([feature, kinds]) => Object.entries(kinds).map(([kind, n]) => [feature, kind, String(n)])))
    : h("p", { class: "muted" }, "No data contract violations."));
  const q = version.quality;
  append(holder, q
    ? h("p", { id: `quality-${version.version}` },
      `Online quality over ${version.labeled_rows} labeled rows: ` +
      Object.entries(q).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${num(v)}`).join(", "))
    : h("p", { class: "muted" }, "No labeled predictions yet (POST …/feedback)."));
  if (version.recent_alerts?.length) {
    append(holder, h("h3", {}, "Recent alerts"),
      h("ol", { class: "timeline" }, version.recent_alerts.slice().reverse().map((a) =>
        h("li", {}, h("strong", {}, a.rule ?? "alert"), ` ${a.message ?? JSON.stringify(a)}`))));
  }
  return charts.filter(Boolean);
}

export async function driftPage(main, name, session, alive) {
  document.title = `Drift of ${name} · ferroserve`;
  const status = h("div", { "aria-live": "polite" });
  const body = h("div", { id: "drift" });
  replace(main, h("p", {}, h("a", { href: `#/models/${seg(name)}` }, `← ${name}`)),
    h("h1", {}, `Drift of ${name}`), status, body);
  const chosen = new Map(); // version -> the feature whose histogram is shown
  let charts = [];
  const refresh = async () => {
    const report = await call(`/api/v1/models/${seg(name)}/drift`);
    // A refresh would take the picker away from someone using it.
    if (body.contains(document.activeElement) && document.activeElement.tagName === "SELECT") return;
    charts.forEach((chart) => chart.destroy());
    replace(body);
    if (!report.versions.length) append(body, h("p", { class: "muted" }, "No served version is monitored."));
    charts = report.versions.flatMap((version) => versionView(version, body, chosen));
  };
  await refresh();
  every(REFRESH_MS, alive, refresh, status);
}
