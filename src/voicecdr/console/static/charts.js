// Draws the overview's charts with uPlot from the JSON each section carries; the same
// figures are in the table under each chart (for screen readers and for copying).
(function () {
  "use strict";
  var COLOURS = ["#0b5cad", "#2e9e5b", "#d4650b"];

  function data(id) {
    var node = document.getElementById("data-" + id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function size(el) {
    return { width: Math.max(280, el.clientWidth), height: 220 };
  }

  function hourly() {
    var el = document.getElementById("chart-hourly"), d = data("hourly");
    if (!el || !d || !d.x.length) return;
    var xs = d.x.map(function (iso) { return Date.parse(iso) / 1000; });
    var series = [{}].concat(d.labels.map(function (label, i) {
      return { label: label, stroke: COLOURS[i], width: 2, fill: i === 0 ? "rgba(11,92,173,0.08)" : undefined };
    }));
    var opts = Object.assign(size(el), { series: series, scales: { x: { time: true } } });
    new uPlot(opts, [xs].concat(d.series), el);
  }

  // A bar chart of categories (countries, hangup causes): x is their index.
  function bars(id) {
    var el = document.getElementById("chart-" + id), d = data(id);
    if (!el || !d || !d.categories.length) return;
    var xs = d.categories.map(function (_, i) { return i; });
    var many = d.labels.length > 1;
    var series = [{}].concat(d.labels.map(function (label, i) {
      // Two series side by side: the first left of its category, the second right.
      var paths = uPlot.paths.bars({ size: [many ? 0.35 : 0.6, 48], align: many ? (i === 0 ? -1 : 1) : 0 });
      return { label: label, stroke: COLOURS[i], fill: COLOURS[i], paths: paths, scale: i === 0 ? "y" : "y" + i };
    }));
    var values = d.series.map(function (s, i) {
      return s.map(function (v) {
        if (v === null) return null;
        return id === "country" && i === 0 ? v * 100 : Number(v);
      });
    });
    var axes = [{ values: function (u, ticks) { return ticks.map(function (t) { return d.categories[t] == null ? "" : (id === "country" ? "+" : "") + d.categories[t]; }); }, space: 30, rotate: 0 }, { scale: "y" }];
    if (d.labels.length > 1) axes.push({ scale: "y1", side: 1, grid: { show: false } });
    var opts = Object.assign(size(el), {
      series: series, axes: axes,
      scales: { x: { time: false, range: [-0.5, xs.length - 0.5] } },
    });
    new uPlot(opts, [xs].concat(values), el);
  }

  function draw() {
    if (typeof uPlot === "undefined") return;
    hourly(); bars("country"); bars("causes");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
