// Live traffic: requests/s, p50 and p99 latency, errors/s, batch size and
// queue depth of every served version, from the server's event stream
// (/api/v1/live, an event a second), charted with uPlot over the last two
// minutes, with the latest figures as a table beside the charts.

import { authorization } from "./api.js";
import { h, replace, table, failure } from "./dom.js";
import { PALETTE, chartWidth, themedAxis } from "./chart.js";

const KEEP = 120;
const CHARTS = [
  { id: "rps", title: "Requests / s", series: [["requests_per_s", ""]] },
  { id: "latency", title: "Latency (ms)", series: [["p50_ms", " p50"], ["p99_ms", " p99"]] },
  { id: "errors", title: "Errors / s", series: [["errors_per_s", ""]] },
  { id: "batch", title: "Mean batch size", series: [["batch_size", ""]] },
  { id: "queue", title: "Queue depth", series: [["queue_depth", ""]] },
];

/** Reads server-sent events from `response`, calling `onData` with each event's JSON. */
async function readEvents(response, onData) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data) onData(JSON.parse(data));
    }
  }
}

/** The series of every version seen, aligned on the ticks' times. */
class History {
  constructor() {
    this.times = [];
    this.byKey = new Map(); // "model v1" -> { field -> values[] }
  }

  add(tick) {
    this.times.push(tick.at / 1000);
    const seen = new Set();
    for (const v of tick.versions) {
      const key = `${v.model} v${v.version}`;
      seen.add(key);
      if (!this.byKey.has(key)) {
        const fields = {};
        for (const chart of CHARTS) {
          for (const [field] of chart.series) fields[field] = new Array(this.times.length - 1).fill(null);
        }
        this.byKey.set(key, fields);
      }
      const fields = this.byKey.get(key);
      for (const field of Object.keys(fields)) fields[field].push(v[field] ?? null);
    }
    for (const [key, fields] of this.byKey) {
      if (!seen.has(key)) for (const values of Object.values(fields)) values.push(null);
    }
    if (this.times.length > KEEP) {
      this.times.shift();
      for (const fields of this.byKey.values()) for (const values of Object.values(fields)) values.shift();
    }
  }
}

/** A chart of `spec` for the versions `keys`, added to `grid` at its column's width. */
function makeChart(spec, keys, grid) {
  const axis = themedAxis();
  const series = [{}];
  keys.forEach((key, i) => {
    spec.series.forEach(([, suffix], j) => series.push({
      label: `${key}${suffix}`,
      stroke: PALETTE[i % PALETTE.length],
      width: 2,
      dash: j ? [6, 4] : undefined,
      spanGaps: false,
    }));
  });
  const el = h("figure", { class: "chart", id: `chart-${spec.id}` }, h("figcaption", {}, spec.title));
  grid.append(el);
  const chart = new window.uPlot({ width: chartWidth(el), height: 180, series, axes: [axis, axis], legend: { live: false } }, [[]], el);
  return { el, chart };
}

/**
 * Follows /api/v1/live while `alive()`: `onTick` gets each event's figures;
 * a failure shows in `status`.
 */
export async function followLive(onTick, alive, status) {
  const stop = new AbortController();
  const watch = setInterval(() => {
    if (!alive()) {
      stop.abort();
      clearInterval(watch);
    }
  }, 500);
  try {
    const auth = authorization();
    const response = await fetch("/api/v1/live", {
      headers: auth ? { authorization: auth, accept: "text/event-stream" } : { accept: "text/event-stream" },
      signal: stop.signal,
    });
    if (!response.ok) throw new Error(`${response.status}: ${(await response.json()).error}`);
    readEvents(response, onTick).catch((error) => {
      if (!stop.signal.aborted) replace(status, failure(error));
    });
  } catch (error) {
    clearInterval(watch);
    if (!stop.signal.aborted) replace(status, failure(error));
  }
}

export async function livePage(main, session, alive) {
  document.title = "Live traffic · ferroserve";
  const status = h("div", { "aria-live": "polite" });
  const grid = h("div", { class: "charts" });
  const latest = h("div", { id: "live-table" });
  replace(main, h("h1", {}, "Live traffic"),
    h("p", { class: "muted" }, "Every served version, second by second (this server), the last two minutes."),
    status, latest, grid);
  const history = new History();
  let charts = [];
  let keysDrawn = "";
  const draw = (tick) => {
    history.add(tick);
    const keys = [...history.byKey.keys()];
    if (keys.join("|") !== keysDrawn) {
      charts.forEach(({ chart }) => chart.destroy());
      replace(grid);
      charts = CHARTS.map((spec) => ({ spec, ...makeChart(spec, keys, grid) }));
      keysDrawn = keys.join("|");
    }
    for (const { spec, chart } of charts) {
      const data = [history.times];
      for (const key of keys) for (const [field] of spec.series) data.push(history.byKey.get(key)[field]);
      chart.setData(data);
    }
    const round = (x, digits = 1) => (x === null || x === undefined ? "—" : Number(x).toFixed(digits));
    replace(latest, table("Last second",
      ["Model", "Version", "Requests / s", "p50 ms", "p99 ms", "Errors / s", "Batch size", "Queue", "Breaker"],
      tick.versions.map((v) => [v.model, v.version,
        h("span", { class: "rps", dataset: { model: v.model, version: v.version } }, round(v.requests_per_s)),
        round(v.p50_ms, 2), round(v.p99_ms, 2), round(v.errors_per_s), round(v.batch_size), round(v.queue_depth, 0),
        v.breaker])));
  };
  followLive(draw, alive, status);
}
