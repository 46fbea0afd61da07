// SVG charts of the sigscore page, built with DOM calls (no library, no inline styles:
// presentation attributes only, which the page's Content-Security-Policy allows).
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  // Okabe-Ito and Tol colours: distinguishable with the common colour-vision deficiencies
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
    "#F0E442", "#332288", "#882255", "#44AA99", "#999933", "#AA4499"];

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }

  function text(parent, x, y, s, attrs) {
    const t = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = s;
    return t;
  }

  function title(parent, s) {
    el("title", {}, parent).textContent = s;
  }

  function fmt(v) {
    return v === null || v === undefined ? "n/a" : Number(v).toFixed(4);
  }

  function legend(container, modules, colour) {
    const box = document.createElement("div");
    box.className = "legend";
    modules.forEach((m) => {
      const item = document.createElement("span");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.backgroundColor = colour(m); // CSSOM, not a style attribute: CSP-safe
      item.appendChild(sw);
      item.appendChild(document.createTextNode(m));
      box.appendChild(item);
    });
    container.appendChild(box);
  }

  // rows: [{sample, index, contrib: {module: value|null}}]; modules: names in order
  function contributions(container, rows, modules) {
    container.replaceChildren();
    const colour = (m) => PALETTE[modules.indexOf(m) % PALETTE.length];
    legend(container, modules, colour);
    let lo = 0, hi = 0;
    rows.forEach((r) => {
      let pos = 0, neg = 0;
      modules.forEach((m) => {
        const v = r.contrib[m];
        if (v > 0) pos += v; else if (v < 0) neg += v;
      });
      hi = Math.max(hi, pos, r.index || 0);
      lo = Math.min(lo, neg, r.index || 0);
    });
    if (hi === lo) hi = lo + 1;
    const labelW = 140, plotW = 560, barH = 16, gap = 6, top = 24;
    const height = top + rows.length * (barH + gap) + 10;
    const svg = el("svg", {
      width: labelW + plotW + 20, height: height, role: "img",
      "aria-label": "Stacked module contributions per sample; each bar sums to the index",
    }, container);
    const x = (v) => labelW + ((v - lo) / (hi - lo)) * plotW;
    el("line", { x1: x(0), x2: x(0), y1: top - 6, y2: height - 6, stroke: "#1b1f24" }, svg);
    text(svg, x(lo), 14, lo.toFixed(2), { "text-anchor": "start" });
    text(svg, x(0), 14, "0", { "text-anchor": "middle" });
    text(svg, x(hi), 14, hi.toFixed(2), { "text-anchor": "end" });
    rows.forEach((r, i) => {
      const y = top + i * (barH + gap);
      const g = el("g", { class: "bar", "data-sample": r.sample }, svg);
      text(g, labelW - 6, y + barH - 3, r.sample, { "text-anchor": "end" });
      let pos = 0, neg = 0;
      modules.forEach((m) => {
        const v = r.contrib[m];
        if (v === null || v === undefined || v === 0) return;
        const start = v > 0 ? pos : neg + v;
        if (v > 0) pos += v; else neg += v;
        const rect = el("rect", {
          x: x(start), y: y, width: Math.max(0.5, x(start + Math.abs(v)) - x(start)),
          height: barH, fill: colour(m), "data-module": m, "data-value": String(v),
        }, g);
        title(rect, `${r.sample}, ${m}: ${fmt(v)}`);
      });
      if (r.index !== null && r.index !== undefined) {
        const cx = x(r.index);
        const mark = el("rect", {
          x: cx - 2, y: y - 2, width: 4, height: barH + 4, fill: "#000000",
          class: "index-mark", "data-index": String(r.index),
        }, g);
        title(mark, `${r.sample}: index ${fmt(r.index)} (sum of the contributions)`);
      }
    });
  }

  // diverging blue - white - red around 0
  function diverging(v, max) {
    if (v === null || v === undefined || !isFinite(v)) return "#d9d9d9";
    const t = Math.max(-1, Math.min(1, v / max));
    const mix = (a, b) => Math.round(a + (b - a) * Math.abs(t));
    const [r, g, b] = t >= 0 ? [mix(255, 178), mix(255, 24), mix(255, 43)]
      : [mix(255, 33), mix(255, 102), mix(255, 172)];
    return `rgb(${r},${g},${b})`;
  }

  // rows: [{sample, scores: {module: value|null}}]
  function heatmap(container, rows, modules) {
    container.replaceChildren();
    let max = 0;
    rows.forEach((r) => modules.forEach((m) => {
      const v = r.scores[m];
      if (v !== null && v !== undefined && isFinite(v)) max = Math.max(max, Math.abs(v));
    }));
    if (max === 0) max = 1;
    const labelW = 190, cell = Math.max(8, Math.min(28, Math.floor(700 / Math.max(1, rows.length))));
    const cellH = 22, top = 10, bottom = 90;
    const width = labelW + rows.length * cell + 20;
    const height = top + modules.length * cellH + bottom;
    const svg = el("svg", {
      width: width, height: height, role: "img",
      "aria-label": `Heatmap of module scores, ${modules.length} modules by ${rows.length} samples`,
    }, container);
    modules.forEach((m, j) => {
      text(svg, labelW - 6, top + j * cellH + 15, m, { "text-anchor": "end" });
      rows.forEach((r, i) => {
        const v = r.scores[m];
        const c = el("rect", {
          x: labelW + i * cell, y: top + j * cellH, width: cell - 1, height: cellH - 1,
          fill: diverging(v, max), "data-module": m, "data-sample": r.sample,
        }, svg);
        title(c, `${r.sample}, ${m}: ${fmt(v)}`);
      });
    });
    if (cell >= 12) {
      rows.forEach((r, i) => {
        const cx = labelW + i * cell + cell / 2, cy = top + modules.length * cellH + 6;
        text(svg, cx, cy, r.sample, {
          transform: `rotate(60 ${cx} ${cy})`, "text-anchor": "start",
        });
      });
    }
    // colour key
    const defs = el("defs", {}, svg);
    const grad = el("linearGradient", { id: "heat-key" }, defs);
    [[0, -max], [50, 0], [100, max]].forEach(([o, v]) =>
      el("stop", { offset: `${o}%`, "stop-color": diverging(v, max) }, grad));
    const ky = height - 24;
    el("rect", { x: labelW, y: ky, width: 160, height: 10, fill: "url(#heat-key)",
      stroke: "#1b1f24" }, svg);
    text(svg, labelW - 6, ky + 9, `score ${(-max).toFixed(2)}`, { "text-anchor": "end" });
    text(svg, labelW + 166, ky + 9, max.toFixed(2), { "text-anchor": "start" });
  }

  window.SigCharts = { contributions: contributions, heatmap: heatmap };
})();
