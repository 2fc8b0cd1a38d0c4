// Drift of a model's served versions: the largest feature PSI of each
// closed window against the threshold, charted; the last window's figures
// per feature; data contract violations; online quality from feedback;
// recent alerts. Refreshed every two seconds.

import { call, seg } from "./api.js";
import { every, h, append, replace, table, when } from "./dom.js";

const REFRESH_MS = 2000;
/** PSI above which a shift is usually called significant. */
const PSI_THRESHOLD = 0.2;

function num(x, digits = 3) {
  return x === null || x === undefined ? "—" : Number(x).toFixed(digits);
}

function psiChart(version, holder) {
  const points = version.history.filter((w) => w.max_psi !== null && w.max_psi !== undefined);
  const el = h("figure", { class: "chart", id: `drift-chart-${version.version}` },
    h("figcaption", {}, `Largest feature PSI per window (threshold ${PSI_THRESHOLD})`));
  append(holder, el);
  const times = points.map((w) => w.closed_at_ms / 1000);
  const axis = { stroke: getComputedStyle(document.documentElement).getPropertyValue("--muted").trim() };
  const chart = new window.uPlot({
    width: Math.max(280, el.clientWidth - 16),
    height: 200,
    series: [{}, { label: "max PSI", stroke: "#b4442c", width: 2, points: { show: true, size: 6 } },
      { label: "threshold", stroke: "#9a5b00", dash: [6, 4], width: 1, points: { show: false } }],
    axes: [axis, axis],
    legend: { live: false },
  }, [times, points.map((w) => w.max_psi), points.map(() => PSI_THRESHOLD)], el);
  el.dataset.points = String(points.length);
  el.dataset.above = String(points.filter((w) => w.max_psi > PSI_THRESHOLD).length);
  return chart;
}

function versionView(version, holder) {
  append(holder, h("h2", {}, `Version ${version.version}`),
    h("p", { class: "muted" },
      `${version.windows_closed} windows closed (${version.window_rows} rows or ${version.window_seconds} s each); ` +
      `${version.open_window.rows} rows in the open one; ${version.observed_requests} requests observed.`),
    version.note ? h("p", { class: "warn" }, version.note) : null);
  const chart = psiChart(version, holder);
  const latest = version.latest;
  if (latest) {
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
  return chart;
}

export async function driftPage(main, name, session, alive) {
  document.title = `Drift of ${name} · ferroserve`;
  const status = h("div", { "aria-live": "polite" });
  const body = h("div", { id: "drift" });
  replace(main, h("p", {}, h("a", { href: `#/models/${seg(name)}` }, `← ${name}`)),
    h("h1", {}, `Drift of ${name}`), status, body);
  let charts = [];
  const refresh = async () => {
    const report = await call(`/api/v1/models/${seg(name)}/drift`);
    charts.forEach((chart) => chart.destroy());
    replace(body);
    if (!report.versions.length) append(body, h("p", { class: "muted" }, "No served version is monitored."));
    charts = report.versions.map((version) => versionView(version, body));
  };
  await refresh();
  every(REFRESH_MS, alive, refresh, status);
}
