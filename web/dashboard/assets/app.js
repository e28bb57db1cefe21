// netsight dashboard. Reads panels from panels.js (window.NETSIGHT_PANELS),
// data from the Prometheus-compatible API (/api/v1/*), collector status from
// /api/v1/status/collectors and flows from /api/v1/flows when it exists.
(function () {
  "use strict";

  var P = window.NETSIGHT_PANELS || { cards: [], sections: [] };
  var RANGES = [
    { key: "15m", secs: 900 }, { key: "1h", secs: 3600 }, { key: "6h", secs: 21600 },
    { key: "24h", secs: 86400 }, { key: "7d", secs: 604800 },
  ];
  var REFRESH_MS = 15000;
  var MAX_SERIES = 10;
  var PALETTE = ["#3b82f6", "#10b981", "#f59e0b", "#8b5cf6", "#ef4444", "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#64748b"];

  var state = {
    range: rangeFromURL(),
    interval: 5,
    names: null, // metric names present in the range (Set)
    charts: [], // {panel, el, plot, data}
    timer: null,
    loading: false,
    flowsSort: { key: "retransmissions", dir: -1 },
    flows: [],
    showSelf: false, // the agent's own scrape and API connections
    utc: tzFromURL(),
    pid: 0, // the agent's pid (meta.json)
  };

  // window.netsight is what the browser test inspects.
  var status = { flows: "", fetches: { ok: 0, failed: 0 }, errors: [], rendered: 0, lastRefresh: null, charts: 0, chartsWithData: 0 };
  window.netsight = status;

  function tzFromURL() {
    var q = new URLSearchParams(location.search).get("tz");
    if (q) return q === "utc";
    try { return localStorage.getItem("netsight-tz") === "utc"; } catch (e) { return false; }
  }

  // Times are shown in UTC or in the browser's zone (the header toggle).
  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  function clock(d, withSecs) {
    var h = state.utc ? d.getUTCHours() : d.getHours(), m = state.utc ? d.getUTCMinutes() : d.getMinutes(), s = state.utc ? d.getUTCSeconds() : d.getSeconds();
    return pad2(h) + ":" + pad2(m) + (withSecs ? ":" + pad2(s) : "") + (state.utc ? " UTC" : "");
  }

  function rangeFromURL() {
    var k = new URLSearchParams(location.search).get("range");
    for (var i = 0; i < RANGES.length; i++) if (RANGES[i].key === k) return RANGES[i];
    return RANGES[1];
  }

  // ---------- formatting ----------
  var SI = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  function num(v, digits) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    if (!isFinite(v)) return v > 0 ? "∞" : "-∞";
    var a = Math.abs(v);
    for (var i = 0; i < SI.length; i++) {
      if (a >= SI[i][0]) return trim((v / SI[i][0]).toFixed(digits === undefined ? 1 : digits)) + SI[i][1];
    }
    if (a === 0) return "0";
    if (a < 0.01) return v.toPrecision(2);
    return trim(v.toFixed(a < 10 ? 2 : a < 100 ? 1 : 0));
  }
  function trim(s) { return s.indexOf(".") >= 0 ? s.replace(/\.?0+$/, "") : s; }
  function bytes(v) {
    if (v === null || isNaN(v)) return "–";
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], a = Math.abs(v), i = 0;
    while (a >= 1024 && i < u.length - 1) { a /= 1024; v /= 1024; i++; }
    return trim(v.toFixed(a < 10 ? 1 : 0)) + " " + u[i];
  }
  function secs(v) {
    if (v === null || isNaN(v)) return "–";
    if (!isFinite(v)) return "∞";
    var a = Math.abs(v);
    if (a === 0) return "0";
    if (a < 1e-3) return trim((v * 1e6).toFixed(0)) + " µs";
    if (a < 1) return trim((v * 1e3).toFixed(a < 0.01 ? 2 : a < 0.1 ? 1 : 0)) + " ms";
    if (a < 60) return trim(v.toFixed(2)) + " s";
    return duration(v);
  }
  function duration(v) {
    if (v === null || isNaN(v)) return "–";
    if (!isFinite(v)) return "never";
    v = Math.max(0, Math.round(v));
    var d = Math.floor(v / 86400), h = Math.floor((v % 86400) / 3600), m = Math.floor((v % 3600) / 60), s = v % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + (m < 10 ? s + "s" : "");
    return s + "s";
  }
  function fmt(unit, v) {
    switch (unit) {
      case "percent": return v === null || isNaN(v) ? "–" : trim((v * 100).toFixed(Math.abs(v) < 0.1 ? 2 : 1)) + "%";
      case "bytes": return bytes(v);
      case "bps": return v === null || isNaN(v) ? "–" : num(v * 8) + "b/s";
      case "seconds": return secs(v);
      case "duration": return duration(v);
      case "ops": return v === null || isNaN(v) ? "–" : num(v) + "/s";
      case "count": return v === null || isNaN(v) || !isFinite(v) || Math.abs(v) < 1 ? num(v) : num(Math.round(v));
      default: return num(v);
    }
  }
  function ago(t) {
    if (!t) return "never";
    var d = (Date.now() - new Date(t).getTime()) / 1000;
    if (d < 0) d = 0;
    return duration(d) + " ago";
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; });
  }
  function el(tag, cls, html) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (html !== undefined) e.innerHTML = html;
    return e;
  }

  // ---------- API ----------
  function api(path, params) {
    var body = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (Array.isArray(v)) v.forEach(function (x) { body.append(k, x); });
      else body.append(k, v);
    });
    // label values is GET-only in the Prometheus API; the rest take POST
    // forms (no URL length limit for long PromQL).
    var req = /\/label\//.test(path) ? fetch(path + "?" + body.toString()) :
      fetch(path, { method: "POST", body: body, headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    return req
      .then(function (r) {
        return r.json().catch(function () { throw new Error(path + ": HTTP " + r.status); });
      })
      .then(function (j) {
        if (j.status !== "success") throw new Error(j.error || "query failed");
        status.fetches.ok++;
        return j.data;
      })
      .catch(function (e) {
        status.fetches.failed++;
        status.errors.push(path + " " + (params && params.query ? params.query + ": " : "") + e.message);
        throw e;
      });
  }
  function getJSON(path) {
    return fetch(path, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { var e = new Error(path + ": HTTP " + r.status); e.status = r.status; throw e; }
      return r.json();
    });
  }

  // window_ is the query range: it ends now (so the newest samples show) and
  // has about 300 points, never finer than the store's interval.
  function window_() {
    var step = Math.max(state.interval, Math.ceil(state.range.secs / 300 / state.interval) * state.interval);
    var end = Math.floor(Date.now() / 1000);
    return { start: end - Math.floor(state.range.secs / step) * step, end: end, step: step };
  }

  // ---------- health cards ----------
  function cardStatus(c, v) {
    if (!c.status) return "info";
    if (v === null || isNaN(v)) return "nodata";
    var s = c.status;
    if (s.below) return v <= s.crit ? "crit" : v <= s.warn ? "warn" : "ok";
    return v >= s.crit ? "crit" : v >= s.warn ? "warn" : "ok";
  }
  var LABEL = { ok: "healthy", warn: "warning", crit: "critical", nodata: "no data", info: "" };

  // pv parses a Prometheus sample value ("+Inf", "-Inf" and "NaN" included).
  function pv(s) {
    if (s === "+Inf") return Infinity;
    if (s === "-Inf") return -Infinity;
    return parseFloat(s);
  }

  function instant(expr) {
    return instantSample(expr).then(function (s) { return s ? s.v : null; });
  }
  // instantSample is the first sample of an instant query with its labels.
  function instantSample(expr) {
    return api("api/v1/query", { query: expr }).then(function (d) {
      if (d.resultType === "scalar") return { v: pv(d.result[1]), metric: {} };
      if (d.result.length === 0) return null;
      return { v: pv(d.result[0].value[1]), metric: d.result[0].metric || {} };
    });
  }

  function familyPresent(f) {
    if (!f || !state.names) return true;
    var prefixes = Array.isArray(f) ? f : [f];
    var found = false;
    state.names.forEach(function (n) {
      for (var i = 0; i < prefixes.length; i++) if (n.indexOf(prefixes[i]) === 0) found = true;
    });
    return found;
  }

  function renderCards(collectors) {
    var root = document.getElementById("cards");
    var jobs = P.cards.map(function (c) {
      var card = root.querySelector('[data-card="' + c.id + '"]');
      if (!card) {
        card = el(c.section ? "a" : "div", "card");
        if (c.section) card.href = "#" + c.section;
        card.dataset.card = c.id;
        root.appendChild(card);
      }
      if (c.special === "collectors") return Promise.resolve(collectorsCard(card, c, collectors));
      if (!familyPresent(c.family)) {
        paintCard(card, c, "nodata", "no data", [], c.absent || "metrics absent");
        return Promise.resolve("nodata");
      }
      var first = null;
      var ps = [instantSample(c.value.expr).then(function (s) { first = s; return s ? s.v : null; })].concat((c.details || []).map(function (d) { return instant(d.expr).catch(function () { return null; }); }));
      return Promise.all(ps).then(function (vs) {
        var v = vs[0];
        var st = cardStatus(c, c.status && c.status.expr ? vs[0] : v);
        var details = (c.details || []).map(function (d, i) { return { label: d.label, value: fmt(d.unit, vs[i + 1]) }; });
        // value.label names the series the value comes from (the worst
        // probe target), shown first.
        if (c.value.label && first && first.metric[c.value.label]) {
          details.unshift({ label: c.value.labelTitle || c.value.label, value: first.metric[c.value.label] });
        }
        if (v === null) { paintCard(card, c, c.status ? "nodata" : "info", "no data", details, "no samples in the last 5 minutes"); return c.status ? "nodata" : "info"; }
        paintCard(card, c, st, fmt(c.value.unit, v) + (c.value.suffix ? '<span class="suffix">' + esc(c.value.suffix) + "</span>" : ""), details);
        return st;
      }).catch(function (e) {
        paintCard(card, c, "nodata", "error", [], e.message);
        return "nodata";
      });
    });
    return Promise.all(jobs);
  }

  function paintCard(card, c, st, valueHTML, details, note) {
    card.dataset.status = st;
    var pill = LABEL[st] ? '<span class="pill ' + st + '">' + LABEL[st] + "</span>" : "";
    var h = '<div class="title">' + esc(c.title) + "</div>";
    h += '<div class="head"><div class="value">' + valueHTML + "</div>" + pill + "</div>";
    h += '<div class="details">';
    if (note) h += "<div>" + esc(note) + "</div>";
    details.forEach(function (d) { h += "<div><span>" + esc(d.label) + "</span><b>" + esc(d.value) + "</b></div>"; });
    card.innerHTML = h + "</div>";
  }

  function collectorsCard(card, c, list) {
    if (!list) { paintCard(card, c, "nodata", "–", [], "status unavailable"); return "nodata"; }
    var running = list.filter(function (s) { return s.state === "running"; });
    var idle = running.filter(function (s) { return s.idle; }).length;
    var up = running.filter(function (s) { return s.up && !s.idle; }).length;
    var failed = list.filter(function (s) { return s.state === "failed" || (s.state === "running" && !s.up); });
    var st = failed.length ? "crit" : running.length ? "ok" : "warn";
    var details = [
      { label: "running", value: String(running.length - idle) },
      { label: "idle", value: String(idle) },
      { label: "not supported", value: String(list.filter(function (s) { return s.state === "unsupported"; }).length) },
      { label: "disabled", value: String(list.filter(function (s) { return s.state === "disabled"; }).length) },
    ];
    paintCard(card, c, st, up + '<span class="suffix"> / ' + (running.length - idle) + " up</span>", details,
      failed.length ? "down: " + failed.map(function (s) { return s.name; }).join(", ") : null);
    return st;
  }

  function renderCollectors(list) {
    var tb = document.querySelector("#collectors tbody");
    if (!list) { tb.innerHTML = '<tr><td colspan="8" class="reason">collector status unavailable</td></tr>'; return; }
    var order = { failed: 0, running: 1, unsupported: 2, disabled: 3 };
    list = list.slice().sort(function (a, b) { return (order[a.state] - order[b.state]) || a.name.localeCompare(b.name); });
    tb.innerHTML = list.map(function (s) {
      // A running collector with nothing to do (a probe collector without
      // targets) is idle, not up.
      var cls = s.state === "running" ? (!s.up ? "failed" : s.idle ? "idle" : "up") : s.state;
      var label = s.state === "running" ? (!s.up ? "down" : s.idle ? "idle" : "up") : s.state.replace("unsupported", "not supported");
      return "<tr><td><b>" + esc(s.name) + '</b></td><td><span class="state ' + cls + '">' + esc(label) + "</span></td>" +
        '<td class="num">' + (s.interval_seconds ? duration(s.interval_seconds) : "–") + "</td>" +
        "<td>" + (s.last_update ? esc(ago(s.last_update)) : "–") + "</td>" +
        '<td class="num">' + (s.state === "running" ? secs(s.duration_seconds) : "–") + "</td>" +
        '<td class="num">' + (s.state === "running" ? num(s.series) : "–") + "</td>" +
        '<td class="num">' + num(s.errors_total || 0) + "</td>" +
        '<td class="reason">' + esc(s.reason || "") + "</td></tr>";
    }).join("");
  }

  function renderVerdict(states, collectors) {
    var v = document.getElementById("verdict");
    var crit = [], warn = [];
    P.cards.forEach(function (c, i) {
      if (states[i] === "crit") crit.push(c.title);
      if (states[i] === "warn") warn.push(c.title);
    });
    var text, sub, st;
    if (crit.length) { st = "crit"; text = crit.length + (crit.length > 1 ? " problems" : " problem") + ": " + crit.join(", "); }
    else if (warn.length) { st = "warn"; text = "Needs attention: " + warn.join(", "); }
    else { st = "ok"; text = "No threshold crossed"; }
    var running = collectors ? collectors.filter(function (s) { return s.state === "running"; }).length : 0;
    sub = running + " collector" + (running === 1 ? "" : "s") + " running · last " + state.range.key +
      (state.historySince ? " (history since " + clock(new Date(state.historySince * 1000)) + ")" : "");
    if (crit.length && warn.length) sub = "also: " + warn.join(", ") + " · " + sub;
    v.dataset.status = st;
    delete v.dataset.statusOnly;
    document.getElementById("verdict-text").textContent = text;
    document.getElementById("verdict-sub").textContent = "— " + sub;
    if (window.NetsightHealth) window.NetsightHealth.apply(); // health.js: the verdict leads the banner
  }

  // ---------- charts ----------
  function buildSections() {
    var root = document.getElementById("sections");
    root.innerHTML = "";
    state.charts.forEach(function (c) { if (c.plot) c.plot.destroy(); });
    state.charts = [];
    P.sections.forEach(function (s) {
      var sec = el("section", "section");
      sec.id = s.id;
      sec.dataset.family = s.family || "";
      sec.appendChild(el("h2", "", esc(s.title) + '<span class="note"></span>'));
      var note = el("div", "absent-note", esc(s.absent || "No data."));
      note.hidden = true;
      sec.appendChild(note);
      var grid = el("div", "charts");
      s.panels.forEach(function (p) {
        var box = el("div", "chart");
        box.appendChild(el("div", "ctitle", "<span>" + esc(p.title) + '</span><span class="more"></span>'));
        var body = el("div", "empty", "loading…");
        box.appendChild(body);
        grid.appendChild(box);
        state.charts.push({ panel: p, section: s, box: box, body: body, plot: null });
      });
      sec.appendChild(grid);
      if (s.table && TABLES[s.table]) {
        var tw = el("div", "table-wrap section-table");
        tw.innerHTML = '<table class="grid" id="' + s.table + '"><thead></thead><tbody></tbody></table>';
        sec.appendChild(tw);
      }
      root.appendChild(sec);
    });
  }

  function legendFor(tpl, metric, varying) {
    if (tpl) return tpl.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, function (_, k) { return metric[k] || ""; }).trim() || "value";
    var parts = varying.map(function (k) { return k + "=" + (metric[k] || ""); });
    return parts.join(", ") || metric.__name__ || "value";
  }

  function loadChart(c, w) {
    var sec = document.getElementById(c.section.id);
    if (c.section.family && !familyPresent(c.section.family)) {
      sec.classList.add("absent");
      sec.querySelector(".absent-note").hidden = false;
      destroyPlot(c);
      return Promise.resolve();
    }
    sec.classList.remove("absent");
    sec.querySelector(".absent-note").hidden = true;
    // Like Grafana's $__rate_interval: at least 4 samples, and at least one
    // step plus one sample so no sample falls between two evaluations.
    var rateInterval = Math.max(4 * state.interval, w.step + state.interval) + "s";
    var qs = c.panel.series.map(function (s) {
      var expr = s.expr.split("$__rate_interval").join(rateInterval);
      return api("api/v1/query_range", { query: expr, start: w.start, end: w.end, step: w.step }).then(function (d) { return { def: s, result: d.result }; });
    });
    return Promise.all(qs).then(function (rs) { drawChart(c, w, rs); }).catch(function (e) {
      destroyPlot(c);
      c.body.className = "empty err";
      c.body.textContent = e.message;
    });
  }

  function destroyPlot(c) {
    if (c.plot) { c.plot.destroy(); c.plot = null; }
    if (c.ro) { c.ro.disconnect(); c.ro = null; }
  }

  function drawChart(c, w, rs) {
    var n = Math.floor((w.end - w.start) / w.step) + 1;
    var xs = new Array(n);
    for (var i = 0; i < n; i++) xs[i] = w.start + i * w.step;
    var series = [];
    rs.forEach(function (r) {
      var keys = {};
      r.result.forEach(function (m) { Object.keys(m.metric).forEach(function (k) { keys[k] = (keys[k] || new Set()).add(m.metric[k]); }); });
      var varying = Object.keys(keys).filter(function (k) { return k !== "__name__" && keys[k].size > 1; });
      if (varying.length === 0) varying = Object.keys(keys).filter(function (k) { return k !== "__name__"; });
      r.result.forEach(function (m) {
        var ys = new Array(n).fill(null), peak = 0;
        m.values.forEach(function (p) {
          var idx = Math.round((p[0] - w.start) / w.step);
          if (idx >= 0 && idx < n) {
            var v = pv(p[1]);
            ys[idx] = isFinite(v) ? v : null;
            if (isFinite(v)) peak = Math.max(peak, Math.abs(v));
          }
        });
        series.push({ def: r.def, label: legendFor(r.def.legend, m.metric, varying), ys: ys, peak: peak });
      });
    });
    var more = c.box.querySelector(".more");
    if (series.length === 0) {
      destroyPlot(c);
      c.body.className = "empty";
      c.body.textContent = "no data in the last " + state.range.key;
      more.textContent = "";
      return;
    }
    var hidden = 0;
    if (series.length > MAX_SERIES) {
      series.sort(function (a, b) { return b.peak - a.peak; });
      hidden = series.length - MAX_SERIES;
      series = series.slice(0, MAX_SERIES);
    }
    more.textContent = hidden ? "top " + MAX_SERIES + " of " + (MAX_SERIES + hidden) : "";
    var data = [xs];
    var unit = c.panel.unit;
    var opts = {
      width: Math.max(200, c.box.clientWidth - 24),
      height: 190,
      // Drag to zoom into a time span, double-click to zoom out.
      cursor: { points: { size: 6 }, drag: { x: true, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true },
        // From zero (counts and rates are never negative unless the panel
        // mirrors tx below the axis); all-zero data gets a unit-sized axis.
        y: {
          range: function (u, min, max) {
            var lo = Math.min(0, min), hi = Math.max(0, max);
            if (hi === lo) hi = lo + (unit === "percent" ? 0.01 : 1);
            return [lo, hi + (hi - lo) * 0.08];
          },
        },
      },
      // Round ticks: 1-2-5 steps (binary multiples for bytes, so 0/20/40
      // MiB; bits for bps), whole numbers for counts.
      axes: [
        Object.assign(axis(), { values: timeTicks }), Object.assign(axis(), { size: 62, incrs: tickIncrs(unit), values: function (u, vals) { return vals.map(function (v) { return fmt(unit, v); }); } }),
      ],
      series: [{ value: function (u, v) { return v === null ? "–" : clock(new Date(v * 1000), true); } }],
    };
    if (state.utc) opts.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); };
    var stackAcc = c.panel.stack ? new Array(n).fill(0) : null;
    series.forEach(function (s, i) {
      var ys = s.ys;
      if (stackAcc) {
        ys = ys.map(function (v, j) { if (v === null) return null; stackAcc[j] += v; return stackAcc[j]; });
      }
      data.push(ys);
      var color = s.def.color || PALETTE[i % PALETTE.length];
      var raw = s.ys;
      opts.series.push({
        label: s.label, stroke: color, width: 1.6, dash: s.def.dash, spanGaps: false,
        fill: c.panel.stack ? color + "55" : (series.length === 1 ? color + "1f" : undefined),
        value: function (u, v, si, idx) { return legendValue(unit, raw, xs, idx); },
      });
    });
    if (c.panel.stack) {
      // Draw the top of the stack first so each band fills down to the next.
      var order = data.slice(1).reverse();
      var sOrder = opts.series.slice(1).reverse();
      data = [xs].concat(order);
      opts.series = [opts.series[0]].concat(sOrder);
    }
    destroyPlot(c);
    c.body.className = "plot";
    c.body.textContent = "";
    c.plot = new uPlot(opts, data, c.body);
    c.ro = new ResizeObserver(function () {
      if (c.plot) c.plot.setSize({ width: Math.max(200, c.box.clientWidth - 24), height: 190 });
    });
    c.ro.observe(c.box);
    status.chartsWithData++;
  }

  // tickIncrs are the y-axis steps uPlot may choose from.
  var DEC = [], BIN = [];
  (function () {
    for (var e = -9; e <= 15; e++) [1, 2, 5].forEach(function (m) { DEC.push(+(m * Math.pow(10, e)).toPrecision(1)); });
    for (var p = 0; p <= 5; p++) [1, 2, 5, 10, 20, 50, 100, 200, 500].forEach(function (m) { BIN.push(m * Math.pow(1024, p)); });
  })();
  function tickIncrs(unit) {
    switch (unit) {
      case "bytes": return BIN;
      case "bps": return DEC.map(function (v) { return v / 8; }); // shown as bits
      case "count": return DEC.filter(function (v) { return v >= 1; });
      default: return DEC;
    }
  }

  // timeTicks labels the time axis in 24 h time, UTC or local as the header
  // toggle says (dates for day-sized steps).
  function timeTicks(u, vals, axisIdx, space, incr) {
    return vals.map(function (v) {
      var d = new Date(v * 1000);
      if (incr >= 86400) return (state.utc ? d.getUTCMonth() : d.getMonth()) + 1 + "/" + (state.utc ? d.getUTCDate() : d.getDate());
      return clock(d, incr < 60).replace(" UTC", "");
    });
  }

  // legendValue is a series' legend text: the value under the cursor, else
  // the latest value, but a series without a sample in its last two steps
  // has ended (a closed connection, a removed target): its last value is
  // not current, so the legend says when it ended instead.
  function legendValue(unit, raw, xs, idx) {
    if (idx !== null && idx !== undefined) return fmt(unit, raw[idx]);
    for (var k = raw.length - 1; k >= 0; k--) {
      if (raw[k] === null) continue;
      return k < raw.length - 2 ? "ended " + clock(new Date(xs[k] * 1000)) : fmt(unit, raw[k]);
    }
    return "–";
  }
  status.legendValue = legendValue;
  // axisSplits: the y-axis ticks of every drawn chart (the browser test
  // checks they are round).
  status.axisSplits = function () {
    return state.charts.filter(function (c) { return c.plot; }).map(function (c) {
      return { title: c.panel.title, unit: c.panel.unit, splits: (c.plot.axes[1]._splits || []).slice() };
    });
  };

  function axis() {
    var cs = getComputedStyle(document.documentElement);
    var grid = cs.getPropertyValue("--grid").trim(), ax = cs.getPropertyValue("--axis").trim();
    return { stroke: ax, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: "11px system-ui, sans-serif" };
  }

  // ---------- section tables ----------
  // TABLES: a section's `table` (panels.js) names one of these; it is
  // filled on every refresh while the section's family is present.
  var TABLES = {
    // Per probe target over the chosen range: every outcome, the share of
    // probes that failed (a refused TCP connect is a failure even though
    // the RST came back, so its packet loss is 0%), loss and RTT now.
    "probe-targets": function (w) {
      var r = Math.max(60, w.end - w.start) + "s";
      var q = function (e) { return api("api/v1/query", { query: e, time: w.end }).then(function (d) { return d.result; }); };
      return Promise.all([
        q("sum by (target, protocol, outcome) (increase(netsight_probe_results_total[" + r + "]))"),
        q("max by (target, protocol) (netsight_probe_period_loss_ratio)"),
        q("max by (target, protocol) (netsight_probe_period_rtt_avg_seconds)"),
      ]).then(function (rs) {
        var rows = {};
        var row = function (m) {
          var k = m.target + "\u0000" + m.protocol;
          return rows[k] || (rows[k] = { target: m.target, protocol: m.protocol, out: {}, total: 0, loss: null, rtt: null });
        };
        rs[0].forEach(function (x) { var o = row(x.metric), v = Math.round(pv(x.value[1])); o.out[x.metric.outcome] = v; o.total += v; });
        rs[1].forEach(function (x) { row(x.metric).loss = pv(x.value[1]); });
        rs[2].forEach(function (x) { row(x.metric).rtt = pv(x.value[1]); });
        var list = Object.keys(rows).map(function (k) {
          var o = rows[k];
          o.failed = o.total ? 1 - (o.out.ok || 0) / o.total : null;
          return o;
        }).sort(function (a, b) { return (b.failed || 0) - (a.failed || 0) || (b.loss || 0) - (a.loss || 0) || a.target.localeCompare(b.target); });
        var t = document.getElementById("probe-targets");
        t.querySelector("thead").innerHTML = "<tr><th>Target</th><th>Protocol</th><th>Status</th>" +
          '<th class="num">OK</th><th class="num">Refused</th><th class="num">Timeout</th><th class="num">Unreachable</th><th class="num">Error</th>' +
          '<th class="num">Failed (' + esc(state.range.key) + ')</th><th class="num">Loss now</th><th class="num">RTT now</th></tr>';
        t.querySelector("tbody").innerHTML = list.map(function (o) {
          var st = o.failed === null ? "nodata" : o.failed >= 0.05 || (o.loss || 0) >= 0.05 ? "crit" : o.failed > 0 || (o.loss || 0) >= 0.01 ? "warn" : "ok";
          var word = { ok: "ok", warn: "degraded", crit: o.total && !o.out.ok ? "failing" : "degraded", nodata: "no probes yet" }[st];
          var n = function (k) { return '<td class="num' + (k !== "ok" && o.out[k] ? " bad" : "") + '">' + num(o.out[k] || 0) + "</td>"; };
          return '<tr data-status="' + st + '"><td><b>' + esc(o.target) + "</b></td><td>" + esc(o.protocol) + '</td><td><span class="state ' + st + '">' + word + "</span></td>" +
            n("ok") + n("refused") + n("timeout") + n("unreachable") + n("error") +
            '<td class="num">' + fmt("percent", o.failed) + '</td><td class="num">' + fmt("percent", o.loss) + '</td><td class="num">' + secs(o.rtt) + "</td></tr>";
        }).join("") || '<tr><td colspan="11" class="reason">no probe results in the last ' + esc(state.range.key) + "</td></tr>";
        status.probeTargets = list.length;
      });
    },
  };

  function loadTables(w) {
    return Promise.all(P.sections.filter(function (s) { return s.table && TABLES[s.table] && (!s.family || familyPresent(s.family)); }).map(function (s) {
      return TABLES[s.table](w).catch(function (e) { status.errors.push(s.table + ": " + e.message); });
    }));
  }

  // ---------- flows ----------
  var FLOW_COLS = [
    { key: "comm", label: "Process" },
    { key: "local", label: "Local", get: function (f) { return addr(f.local_addr, f.local_port); } },
    { key: "remote", label: "Remote", get: function (f) { return addr(f.remote_addr, f.remote_port); } },
    { key: "direction", label: "Dir" },
    // Network namespace: "host", its `ip netns` name, the container or pod
    // of the process (from its cgroup), else the inode.
    { key: "netns", label: "Netns / pod", get: netnsLabel },
    { key: "state", label: "State", get: function (f) { return f.notable ? "closed: " + f.notable.join(", ") : f.connect_failed ? "failed" : f.state; } },
    { key: "srtt_seconds", label: "RTT", num: true, fmt: secs },
    { key: "retransmissions", label: "Retrans", num: true, fmt: num },
    { key: "bytes_sent", label: "Sent", num: true, fmt: bytes },
    { key: "bytes_received", label: "Received", num: true, fmt: bytes },
    { key: "duration_seconds", label: "Duration", num: true, fmt: duration },
  ];
  status.netnsLabels = function () { return state.flows.map(netnsLabel); };
  function netnsLabel(f) {
    if (f.host_netns) return f.workload ? "host · " + f.workload : "host";
    return f.netns_name || f.workload || (f.netns ? "netns " + f.netns : "");
  }
  // isSelf: a connection of the agent itself (its pid, or to its port: a
  // scrape, this dashboard's API calls).
  function isSelf(f) {
    var port = parseInt(location.port || (location.protocol === "https:" ? "443" : "80"), 10);
    return (state.pid > 0 && f.pid === state.pid) || (f.direction === "server" && f.local_port === port);
  }
  function addr(a, p) { if (!a) return ""; return (a.indexOf(":") >= 0 ? "[" + a + "]" : a) + ":" + p; }

  function loadFlows(collectors) {
    var block = document.getElementById("flows-block");
    var hasFlows = collectors && collectors.some(function (s) { return /flow/.test(s.name) && s.state === "running"; });
    if (!hasFlows) { block.hidden = true; status.flows = "hidden: no flows collector running"; return Promise.resolve(); }
    // closed_since: closed connections that mattered in the chosen range,
    // which have left the live table.
    var since = Math.floor(Date.now() / 1000) - state.range.secs;
    return getJSON("api/v1/flows?limit=2000&closed_since=" + since).then(function (d) {
      var rows = Array.isArray(d) ? d : (d && (d.flows || d.data || d.items)) || [];
      state.notable = (d && d.notable_closed) || [];
      state.flows = rows.concat(state.notable);
      block.hidden = false;
      status.flows = "shown: " + rows.length + " flows, " + state.notable.length + " closed that mattered";
      status.notableClosed = state.notable.length;
      status.flowsTruncated = !!(d && d.truncated);
      return true;
    }, function (e) {
      // 404: no flow API on this agent; hide the table, it is not an error.
      block.hidden = true;
      status.flows = "hidden: " + e.message;
      return false;
    }).then(function (shown) { if (shown) renderFlows(); });
  }

  function renderFlows() {
    var t = document.getElementById("flows-table");
    var head = t.querySelector("thead");
    if (!head.firstChild) {
      var tr = el("tr");
      FLOW_COLS.forEach(function (c) {
        var th = el("th", c.num ? "num" : "", esc(c.label));
        th.dataset.key = c.key;
        th.addEventListener("click", function () {
          if (state.flowsSort.key === c.key) state.flowsSort.dir *= -1;
          else state.flowsSort = { key: c.key, dir: c.num ? -1 : 1 };
          renderFlows();
        });
        tr.appendChild(th);
      });
      head.appendChild(tr);
    }
    head.querySelectorAll("th").forEach(function (th) {
      th.setAttribute("aria-sort", th.dataset.key === state.flowsSort.key ? (state.flowsSort.dir > 0 ? "ascending" : "descending") : "none");
    });
    var col = FLOW_COLS.filter(function (c) { return c.key === state.flowsSort.key; })[0] || FLOW_COLS[0];
    var val = function (f) { return col.get ? col.get(f) : f[col.key]; };
    var all = state.flows, selfN = 0;
    var shown = all.filter(function (f) { var s = isSelf(f); if (s) selfN++; return state.showSelf || !s; });
    var rows = shown.slice().sort(function (a, b) {
      var x = val(a), y = val(b);
      if (typeof x === "number" && typeof y === "number") return (x - y) * state.flowsSort.dir;
      return String(x === undefined ? "" : x).localeCompare(String(y === undefined ? "" : y)) * state.flowsSort.dir;
    }).slice(0, 500);
    var closedN = shown.filter(function (f) { return f.notable; }).length;
    document.getElementById("flows-count").textContent = (shown.length - closedN) + (status.flowsTruncated ? "+" : "") + " live" + (closedN ? ", " + closedN + " closed that mattered in the last " + state.range.key : "") +
      (shown.length > 500 ? " (showing 500)" : "");
    var tog = document.getElementById("flows-self");
    tog.checked = state.showSelf;
    document.getElementById("flows-self-n").textContent = selfN ? " (" + selfN + ")" : "";
    t.querySelector("tbody").innerHTML = rows.map(function (f) {
      return '<tr class="' + (f.notable ? "closed" : "") + (isSelf(f) ? " self" : "") + '">' + FLOW_COLS.map(function (c) {
        var v = c.get ? c.get(f) : f[c.key];
        var txt = v === undefined || v === null ? "" : c.fmt ? c.fmt(v) : v;
        return '<td class="' + (c.num ? "num" : c.key === "local" || c.key === "remote" ? "mono" : "") + '"' +
          (c.num ? ' data-v="' + esc(v === undefined || v === null ? "" : v) + '"' : "") + ">" + esc(txt) + "</td>";
      }).join("") + "</tr>";
    }).join("") || '<tr><td colspan="' + FLOW_COLS.length + '" class="reason">no flows</td></tr>';
  }

  // ---------- refresh loop ----------
  function refresh() {
    if (state.loading) {
      // A range or theme change while loading: run again when this one ends.
      state.pending = true;
      return Promise.resolve();
    }
    state.loading = true;
    var btn = document.getElementById("refresh");
    btn.classList.add("spin");
    pollStore();
    if (state.storeDisabled || storeDown()) return refreshStatusOnly(btn);
    document.getElementById("sections").hidden = false;
    var w = window_();
    status.chartsWithData = 0;
    var names = api("api/v1/label/__name__/values", { start: w.start, end: w.end })
      .then(function (ns) { state.names = new Set(ns); })
      .catch(function () { state.names = null; });
    var coll = getJSON("api/v1/status/collectors").catch(function () { return null; });
    // Charts start where the store's history starts (a fresh agent has
    // minutes, not the whole range).
    var oldest = instant("min(netsight_store_oldest_sample_timestamp_seconds > 0)").catch(function () { return null; });
    var collectors = null;
    return Promise.all([names, coll, oldest]).then(function (r) {
      collectors = r[1];
      if (r[2] && isFinite(r[2]) && r[2] > w.start) {
        // Keep the grid anchored at end (start + k*step = end).
        w.start = w.end - Math.max(1, Math.ceil((w.end - r[2]) / w.step)) * w.step;
        w.partial = true;
      }
      state.historySince = w.partial ? r[2] : null;
      renderCollectors(collectors);
      var cards = renderCards(collectors).then(function (states) { renderVerdict(states, collectors); });
      var charts = Promise.all(state.charts.map(function (c) { return loadChart(c, w); }));
      return Promise.all([cards, charts, loadTables(w), loadFlows(collectors)]);
    }).then(function () {
      status.rendered++;
      status.charts = state.charts.length;
      status.lastRefresh = new Date().toISOString();
      document.getElementById("updated").textContent = "updated " + clock(new Date(), true);
      runHooks(w, collectors);
    }).catch(function (e) {
      status.errors.push("refresh: " + e.message);
    }).then(function () {
      state.loading = false;
      btn.classList.remove("spin");
      if (state.pending) {
        state.pending = false;
        refresh();
      }
    });
  }

  // ---------- store health (/api/v1/status/store) ----------
  // The store can be down (it could not open: corrupt WAL, another agent on
  // the data dir, permissions) while collectors and /metrics keep running,
  // or up with failing writes (a full disk). Both are shown above the cards.
  function storeDown() { return !!(state.store && state.store.state === "down"); }

  function pollStore() {
    return getJSON("api/v1/status/store").then(function (j) {
      var was = storeDown();
      state.store = j && j.data;
      renderStoreAlert();
      // The store came up (or went down) since the last render: switch mode.
      if (was !== storeDown() && !state.loading) refresh();
    }).catch(function () { /* older agent without the route */ });
  }

  function renderStoreAlert() {
    var a = document.getElementById("store-alert");
    var s = state.store;
    if (!a) return;
    if (!s || s.state === "disabled" || (s.up && !s.ingest_failures)) { a.hidden = true; a.textContent = ""; return; }
    if (s.state === "down") {
      a.dataset.status = "crit";
      a.innerHTML = "<b>Store down</b> " + esc(s.reason || "") + (s.hint ? " — " + esc(s.hint) : "") +
        '<span class="sub">history and charts are unavailable; collectors and /metrics keep running; the agent retries opening it' +
        (s.open_failures ? " (" + s.open_failures + (s.open_failures === 1 ? " failed attempt)" : " failed attempts)") : "") + "</span>";
    } else {
      // A full disk is the usual cause: say so in the headline.
      var full = /no space left|ENOSPC|disk quota|quota exceeded/i.test(s.ingest_error || "");
      a.dataset.status = full ? "crit" : "warn";
      a.dataset.kind = full ? "disk-full" : "ingest";
      a.innerHTML = "<b>" + (full ? "Disk full: store writes failing" : "Store writes failing") + "</b> " + esc(s.ingest_error || "") +
        '<span class="sub">' + s.ingest_failures + " ingest rounds failed in a row; new samples are not stored</span>";
    }
    a.hidden = false;
  }

  // Without the store only the collectors' status is live: hide charts and
  // metric cards instead of showing an error in each.
  function refreshStatusOnly(btn) {
    document.getElementById("sections").hidden = true;
    return getJSON("api/v1/status/collectors").catch(function () { return null; }).then(function (collectors) {
      renderCollectors(collectors);
      var root = document.getElementById("cards");
      var card = root.querySelector('[data-card="collectors"]');
      if (!card) { card = el("div", "card"); card.dataset.card = "collectors"; root.appendChild(card); }
      var st = collectorsCard(card, P.cards.filter(function (c) { return c.special === "collectors"; })[0] || { title: "Collectors" }, collectors);
      var v = document.getElementById("verdict");
      v.dataset.status = st === "crit" ? "crit" : "warn";
      v.dataset.statusOnly = "1"; // health.js keeps this notice's explanation
      if (storeDown() && !state.storeDisabled) {
        document.getElementById("verdict-text").textContent = st === "crit" ? "Collectors down" : "Status only: the store is down";
        document.getElementById("verdict-sub").textContent = "— no charts or health thresholds until it opens (reason below); /metrics is still served";
      } else {
        document.getElementById("verdict-text").textContent = st === "crit" ? "Collectors down" : "Status only: history is off";
        document.getElementById("verdict-sub").textContent = "— the embedded store is disabled (store.enabled: false): no charts or health thresholds; /metrics is still served";
      }
      if (window.NetsightHealth) window.NetsightHealth.apply();
      status.rendered++;
      return loadFlows(collectors);
    }).then(function () {
      state.loading = false;
      btn.classList.remove("spin");
      document.getElementById("updated").textContent = "updated " + clock(new Date(), true);
    });
  }

  // Hooks for views kept in their own files (monitors.js, health.js): each
  // function in window.netsightHooks runs after every refresh with what the
  // page loaded. It may fill #banners (above the cards) or its own section.
  function runHooks(w, collectors) {
    (window.netsightHooks || []).forEach(function (fn) {
      try {
        fn({ range: state.range, window: w, utc: state.utc, collectors: collectors, api: api, getJSON: getJSON, fmt: fmt, clock: clock, esc: esc });
      } catch (e) { status.errors.push("hook: " + e.message); }
    });
  }

  function schedule() {
    clearInterval(state.timer);
    state.timer = setInterval(function () { if (!document.hidden) refresh(); }, REFRESH_MS);
  }

  function setupHeader() {
    var nav = document.getElementById("ranges");
    RANGES.forEach(function (r) {
      var b = el("button", "", r.key);
      b.type = "button";
      b.setAttribute("aria-pressed", String(r === state.range));
      b.addEventListener("click", function () {
        state.range = r;
        nav.querySelectorAll("button").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
        var u = new URL(location.href);
        u.searchParams.set("range", r.key);
        history.replaceState(null, "", u);
        refresh();
      });
      nav.appendChild(b);
    });
    document.getElementById("refresh").addEventListener("click", refresh);
    var tz = document.getElementById("tz");
    var paintTZ = function () { tz.textContent = state.utc ? "UTC" : "local"; tz.setAttribute("aria-pressed", String(state.utc)); };
    paintTZ();
    tz.addEventListener("click", function () {
      state.utc = !state.utc;
      try { localStorage.setItem("netsight-tz", state.utc ? "utc" : "local"); } catch (e) { /* storage disabled */ }
      var u = new URL(location.href);
      u.searchParams.set("tz", state.utc ? "utc" : "local");
      history.replaceState(null, "", u);
      paintTZ();
      state.charts.forEach(destroyPlot);
      refresh();
    });
    document.getElementById("flows-self").addEventListener("change", function (e) {
      state.showSelf = e.target.checked;
      renderFlows();
    });
    document.getElementById("theme").addEventListener("click", function () {
      var t = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = t;
      try { localStorage.setItem("netsight-theme", t); } catch (e) { /* storage disabled */ }
      state.charts.forEach(destroyPlot);
      refresh();
    });
  }

  function init() {
    setupHeader();
    buildSections();
    getJSON("ui/meta.json").then(function (m) {
      if (m.scrape_interval_seconds) state.interval = m.scrape_interval_seconds;
      state.pid = m.pid || 0;
      document.getElementById("host").textContent = m.hostname || "";
      document.title = (m.hostname ? m.hostname + " · " : "") + "netsight";
      document.getElementById("version").textContent = "netsight " + m.version + (m.revision && m.revision !== "unknown" ? " (" + m.revision + ")" : "");
      state.storeDisabled = !m.store_enabled;
    }).catch(function () { /* meta is cosmetic */ }).then(function () {
      return getJSON("api/v1/status/store").then(function (j) { state.store = j && j.data; renderStoreAlert(); }).catch(function () { /* no route */ });
    }).then(function () {
      refresh();
      schedule();
    });
  }

  init();
})();
