// Draws the overview's charts with uPlot from the JSON each section carries; the same
// figures are in the table under each chart (for screen readers and for copying).
(function () {
  "use strict";
  var COLOURS = ["#0b5cad", "#2e9e5b", "#d4650b"];
  var FROM_ZERO = function (u, min, max) { return [0, max > 0 ? max * 1.08 : 1]; };

  function data(id) {
    var node = document.getElementById("data-" + id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function size(el, height) {
    return { width: Math.max(280, el.clientWidth), height: height || 220 };
  }

  // Calls per hour, on the app's clock (not the browser's).
  function hourly() {
    var el = document.getElementById("chart-hourly"), d = data("hourly");
    if (!el || !d || !d.x.length) return;
    var xs = d.x.map(function (iso) { return Date.parse(iso) / 1000; });
    var series = [{ label: d.xlabel }].concat(d.labels.map(function (label, i) {
      return { label: label, stroke: COLOURS[i], width: 2, fill: i === 0 ? "rgba(11,92,173,0.08)" : undefined };
    }));
    var opts = Object.assign(size(el), {
      series: series,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), d.zone); },
      scales: { x: { time: true }, y: { range: FROM_ZERO } },
    });
    new uPlot(opts, [xs].concat(d.series), el);
  }

  // A bar chart of categories (countries, hangup causes): x is their index.
  function bars(id, prefix, rotate) {
    var el = document.getElementById("chart-" + id), d = data(id);
    if (!el || !d || !d.categories.length) return;
    var narrow = el.clientWidth < (rotate ? 80 : 40) * d.categories.length;  // no room
    // Upright labels when narrow (a phone): slanted ones would need room to the right.
    var angle = narrow ? -90 : rotate ? -35 : 0;
    var xs = d.categories.map(function (_, i) { return i; });
    var longest = Math.max.apply(null, d.categories.map(function (c) { return String(c).length + prefix.length; }));
    var many = d.labels.length > 1;
    var series = [{ label: d.xlabel, value: function (u, i) { return i == null ? "" : prefix + d.categories[i]; } }].concat(d.labels.map(function (label, i) {
      // Two series side by side: the first left of its category, the second right.
      var paths = uPlot.paths.bars({ size: [many ? 0.35 : 0.6, 48], align: many ? (i === 0 ? -1 : 1) : 0 });
      return { label: label, stroke: COLOURS[i], fill: COLOURS[i], paths: paths, scale: i === 0 ? "y" : "y" + i, points: { show: false } };
    }));
    var values = d.series.map(function (s, i) {
      return s.map(function (v) { return v === null ? null : Number(v) * (d.percent === i ? 100 : 1); });
    });
    var axes = [
      {
        values: function (u, ticks) { return ticks.map(function (t) { return d.categories[t] == null ? "" : prefix + d.categories[t]; }); },
        space: narrow ? 6 : 20, rotate: angle, size: angle ? Math.min(210, 14 + (narrow ? 7.5 : 4.5) * longest) : 40, gap: 4,
      },
      { scale: "y", stroke: COLOURS[0] },
    ];
    var scales = { x: { time: false, range: [-0.5, xs.length - 0.5] }, y: { range: FROM_ZERO } };
    if (many) {
      axes.push({ scale: "y1", side: 1, grid: { show: false }, stroke: COLOURS[1] });
      scales.y1 = { range: FROM_ZERO };
    }
    var opts = Object.assign(size(el, angle ? 170 + Math.min(210, 7.5 * longest) : 240), {
      series: series, axes: axes, scales: scales, padding: [8, angle === -35 ? Math.min(140, 5.5 * longest) : 8, 0, 0],
    });
    new uPlot(opts, [xs].concat(values), el);
  }

  function draw() {
    if (typeof uPlot === "undefined") return;
    hourly(); bars("country", "+", false); bars("causes", "", true);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
