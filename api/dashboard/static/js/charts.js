/**
 * SVG charts drawn without a library: a bar chart (kWh per hour or day) and a line chart
 * (room trends), plus a sparkline for table rows.
 *
 * Each chart is an <svg role="img"> with a <title> and <desc>, and each bar or point has
 * a <title> tooltip. Views put the same numbers in a table next to the chart for screen
 * readers and for copying.
 */

import { s } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 240;
const MARGIN = { top: 12, right: 28, bottom: 40, left: 64 };
const MAX_X_LABELS = 12;

/** Line styles of the series: colour and dash pattern, so lines differ without colour too. */
const SERIES_STYLES = [
  { color: "#0b5394", dash: "" },
  { color: "#b34700", dash: "6 3" },
  { color: "#1e6b33", dash: "2 3" },
  { color: "#7b2a8c", dash: "8 3 2 3" },
  { color: "#8a6d00", dash: "10 4" },
  { color: "#a4133c", dash: "3 2 3 6" },
];

let chartCount = 0;

/** Return the colour and dash pattern of series number `index`. */
export function seriesStyle(index) {
  return SERIES_STYLES[index % SERIES_STYLES.length];
}

/**
 * Draw a bar chart from zero.
 *
 * bars: [{label, tooltip, value}], where label is the axis text and tooltip the full text of
 * the bar. formatTick formats the y axis values.
 */
export function barChart({ title, description, bars, formatTick }) {
  const ids = nextIds();
  const plot = plotArea();
  const maxValue = Math.max(0, ...bars.map((bar) => bar.value ?? 0));
  const ticks = niceTicks(0, maxValue || 1);
  const top = ticks[ticks.length - 1];
  const y = (value) => plot.bottom - (value / top) * plot.height;
  const slot = plot.width / Math.max(bars.length, 1);
  const labelEvery = Math.ceil(bars.length / MAX_X_LABELS);

  const svg = chartSvg(ids, title, description);
  svg.append(yAxis(ticks, y, plot, formatTick));
  bars.forEach((bar, index) => {
    const x = plot.left + index * slot;
    const value = bar.value ?? 0;
    const barHeight = plot.bottom - y(value);
    svg.append(
      s(
        "rect",
        { class: "chart__bar", x: x + slot * 0.12, y: y(value), width: slot * 0.76, height: Math.max(barHeight, 0) },
        s("title", {}, bar.tooltip),
      ),
    );
    if (index % labelEvery === 0) {
      svg.append(s("text", { class: "chart__x-label", x: x + slot / 2, y: plot.bottom + 18, "text-anchor": "middle" }, bar.label));
    }
  });
  svg.append(s("line", { class: "chart__axis", x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom }));
  return svg;
}

/**
 * Draw one line per series over a time axis from xStart to xEnd (epoch ms).
 *
 * series: [{name, points: [{x, y, tooltip}]}]. Two points further apart than gapMs are not
 * joined, so a sensor that was silent shows a gap rather than a straight line. The time
 * labels fall on whole local hours; zoneOffsetMs is the zone's offset from UTC.
 */
export function lineChart({ title, description, series, xStart, xEnd, gapMs, zoneOffsetMs, formatTick, formatX }) {
  const ids = nextIds();
  const plot = plotArea();
  const values = series.flatMap((line) => line.points.map((point) => point.y)).filter((value) => value !== null);
  const low = values.length ? Math.min(...values) : 0;
  const high = values.length ? Math.max(...values) : 1;
  const ticks = niceTicks(low, high);
  const bottomTick = ticks[0];
  const topTick = ticks[ticks.length - 1];
  const y = (value) => plot.bottom - ((value - bottomTick) / (topTick - bottomTick)) * plot.height;
  const span = Math.max(xEnd - xStart, 1);
  const x = (time) => plot.left + ((time - xStart) / span) * plot.width;

  const svg = chartSvg(ids, title, description);
  svg.append(yAxis(ticks, y, plot, formatTick));
  for (const tick of timeTicks(xStart, xEnd, zoneOffsetMs)) {
    svg.append(s("text", { class: "chart__x-label", x: x(tick), y: plot.bottom + 18, "text-anchor": "middle" }, formatX(tick)));
  }
  series.forEach((line, index) => {
    const style = seriesStyle(index);
    const path = linePath(line.points.filter((point) => point.y !== null), x, y, gapMs);
    const group = s("g", { class: "chart__series" }, s("title", {}, line.name));
    group.append(
      s("path", { d: path, fill: "none", stroke: style.color, "stroke-width": 2, "stroke-dasharray": style.dash || null }),
    );
    for (const point of line.points.filter((item) => item.y !== null)) {
      group.append(
        s("circle", { cx: x(point.x), cy: y(point.y), r: 2.5, fill: style.color }, s("title", {}, point.tooltip)),
      );
    }
    svg.append(group);
  });
  svg.append(s("line", { class: "chart__axis", x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom }));
  return svg;
}

/** Draw a small line of `values` (oldest first) for a table cell; it is decoration, so screen readers skip it. */
export function sparkline(values) {
  const width = 120;
  const height = 28;
  const known = values.filter((value) => value !== null);
  const svg = s("svg", { class: "sparkline", viewBox: `0 0 ${width} ${height}`, width, height, "aria-hidden": "true", focusable: "false" });
  if (known.length < 2) {
    return svg;
  }
  const low = Math.min(...known);
  const high = Math.max(...known);
  const range = high - low || 1;
  const step = width / (values.length - 1);
  const points = [];
  values.forEach((value, index) => {
    if (value !== null) {
      points.push(`${(index * step).toFixed(1)},${(height - 3 - ((value - low) / range) * (height - 6)).toFixed(1)}`);
    }
  });
  svg.append(s("polyline", { points: points.join(" "), fill: "none", class: "sparkline__line" }));
  return svg;
}

/** Return 3 to 6 evenly spaced round numbers that cover low..high: (0, 7.3) → [0, 2, 4, 6, 8]. */
export function niceTicks(low, high) {
  if (high === low) {
    high = low + 1;
  }
  const step = niceStep((high - low) / 4);
  const first = Math.floor(low / step) * step;
  const last = Math.ceil(high / step) * step;
  const ticks = [];
  for (let value = first; value <= last + step / 2; value += step) {
    ticks.push(Number(value.toPrecision(12)));
  }
  return ticks;
}

function niceStep(rough) {
  const power = 10 ** Math.floor(Math.log10(rough));
  const fraction = rough / power;
  const nice = [1, 2, 2.5, 5].find((candidate) => fraction <= candidate) ?? 10;
  return nice * power;
}

/** Return at most 7 times between start and end that are whole multiples of 1 to 24 local hours. */
function timeTicks(start, end, zoneOffsetMs) {
  const hourMs = 3_600_000;
  const step = [1, 2, 3, 4, 6, 12, 24].map((hours) => hours * hourMs).find((candidate) => (end - start) / candidate <= 6) ?? 24 * hourMs;
  const first = Math.ceil((start + zoneOffsetMs) / step) * step - zoneOffsetMs;
  const ticks = [];
  for (let tick = first; tick <= end; tick += step) {
    ticks.push(tick);
  }
  return ticks;
}

function linePath(points, x, y, gapMs) {
  let path = "";
  let previous = null;
  for (const point of points) {
    const command = previous === null || point.x - previous.x > gapMs ? "M" : "L";
    path += `${command}${x(point.x).toFixed(1)},${y(point.y).toFixed(1)} `;
    previous = point;
  }
  return path.trim();
}

function plotArea() {
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  return { left, right, top, bottom, width: right - left, height: bottom - top };
}

function yAxis(ticks, y, plot, formatTick) {
  const group = s("g", { class: "chart__y-axis" });
  for (const tick of ticks) {
    group.append(s("line", { class: "chart__grid", x1: plot.left, x2: plot.right, y1: y(tick), y2: y(tick) }));
    group.append(s("text", { class: "chart__y-label", x: plot.left - 8, y: y(tick) + 4, "text-anchor": "end" }, formatTick(tick)));
  }
  return group;
}

function chartSvg(ids, title, description) {
  return s(
    "svg",
    { class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": `${ids.title} ${ids.description}` },
    s("title", { id: ids.title }, title),
    s("desc", { id: ids.description }, description),
  );
}

function nextIds() {
  chartCount += 1;
  return { title: `chart-${chartCount}-title`, description: `chart-${chartCount}-desc` };
}
