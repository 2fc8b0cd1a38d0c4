// What the charts share: the series colours and axes drawn in the page's
// theme colours (light or dark).

export const PALETTE = ["#b4442c", "#1f5fbf", "#1f7a3a", "#9a5b00", "#7b3fa0", "#00838f"];

/** The value of the CSS custom property `name` on the page. */
export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** A uPlot axis in the theme's colours, with `extra` settings. */
export function themedAxis(extra = {}) {
  return { stroke: cssVar("--muted"), grid: { stroke: cssVar("--line"), width: 1 }, ticks: { stroke: cssVar("--line") }, ...extra };
}

/** The width a chart may take inside `figure` (its padding left out). */
export function chartWidth(figure, least = 240) {
  return Math.max(least, figure.clientWidth - 16);
}
