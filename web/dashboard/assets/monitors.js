// netsight dashboard: the Monitors view. One row per monitor (bytes,
// retransmits, RTT over the configured window, with sparklines of the last 5
// minutes), the top contributors of the selected monitor, and per traffic
// category its totals and top remotes. Reads /api/v1/monitors,
// /api/v1/monitors/{name}/top and /api/v1/insights (docs/monitors.md); hidden
// when the agent has no monitors API. Self-contained: it fills
// <section id="monitors-block"> and refreshes on its own timer and on the
// page's refresh button.
(function () {
  "use strict";

  var REFRESH_MS = 15000;
  var METRICS = ["retransmits", "rtos", "bytes", "rtt", "connect_failures"];
  var st = { selected: "all", metric: "retransmits", loading: false };
  // window.netsightMonitors is what the browser test inspects.
  var status = { state: "", rendered: 0, monitors: 0, topRows: 0, categories: 0, errors: [], fetches: { ok: 0, failed: 0 } };
  window.netsightMonitors = status;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; });
  }
  function trim(s) { return s.indexOf(".") >= 0 ? s.replace(/\.?0+$/, "") : s; }
  function bytes(v) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], a = Math.abs(v), i = 0;
    while (a >= 1024 && i < u.length - 1) { a /= 1024; v /= 1024; i++; }
    return trim(v.toFixed(a < 10 ? 1 : 0)) + " " + u[i];
  }
  function count(v) {
    if (v >= 1e9) return trim((v / 1e9).toFixed(1)) + "G";
    if (v >= 1e6) return trim((v / 1e6).toFixed(1)) + "M";
    if (v >= 1e4) return trim((v / 1e3).toFixed(1)) + "k";
    return String(v);
  }
  function secs(v) {
    if (!v) return "–";
    if (v < 1e-3) return trim((v * 1e6).toFixed(0)) + " µs";
    if (v < 1) return trim((v * 1e3).toFixed(v < 0.01 ? 2 : 1)) + " ms";
    return trim(v.toFixed(2)) + " s";
  }
  function keyText(k) {
    if (!k) return "";
    return Object.keys(k).map(function (n) { return k[n] === "" ? "(none)" : k[n]; }).join(" ");
  }

  function getJSON(path) {
    return fetch(path, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { var e = new Error(path + ": HTTP " + r.status); e.status = r.status; throw e; }
      status.fetches.ok++;
      return r.json();
    }).catch(function (e) {
      if (e.status !== 404) { status.fetches.failed++; status.errors.push(e.message); }
      throw e;
    });
  }

  // spark draws values as an inline SVG polyline (an empty series is a flat
  // line at the bottom).
  function spark(values, cls) {
    var w = 90, h = 22, n = values.length, max = 0;
    values.forEach(function (v) { if (v > max) max = v; });
    var pts = values.map(function (v, i) {
      var x = n > 1 ? (i * w) / (n - 1) : 0;
      var y = max > 0 ? h - 1 - (v / max) * (h - 2) : h - 1;
      return x.toFixed(1) + "," + y.toFixed(1);
    }).join(" ");
    return '<svg class="spark ' + cls + '" width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + " " + h +
      '" role="img" aria-label="last 5 minutes"><polyline points="' + pts +
      '" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/></svg>';
  }

  function scope(m) {
    var parts = [];
    var l = m.local || {}, r = m.remote || {};
    var side = function (s) { return (s.networks || []).concat(s.cidrs || []).join(", "); };
    if (side(l)) parts.push("local " + side(l));
    if (side(r)) parts.push("remote " + side(r));
    if ((r.categories || []).length) parts.push(r.categories.join(", "));
    if ((r.ports || []).length) parts.push("port " + r.ports.join(", "));
    return parts.join(" · ") || "every connection";
  }

  function build(block) {
    block.innerHTML =
      '<h2>Monitors <span class="count" id="monitors-window"></span></h2>' +
      '<div class="table-wrap"><table class="grid" id="monitors-table"><thead><tr>' +
      '<th>Monitor</th><th>Scope</th><th class="num">Connections</th><th class="num">Bytes</th><th>Bytes, 5 min</th>' +
      '<th class="num">Retransmits</th><th>Retransmits, 5 min</th><th class="num">RTOs</th><th class="num">Connect failures</th>' +
      '<th class="num">RTT p50</th><th>RTT, 5 min</th><th class="num">Handshake p50</th>' +
      "</tr></thead><tbody></tbody></table></div>" +
      '<h2>Top contributors <span class="note" id="monitors-top-note"></span></h2>' +
      '<div class="ranges monitors-metric" id="monitors-metric" role="group" aria-label="Rank by" style="display:inline-flex;margin:0 0 8px"></div>' +
      '<div class="table-wrap"><table class="grid" id="monitors-top"><thead><tr>' +
      '<th>Remote</th><th>Category</th><th>Zone</th><th class="num">Retransmits</th><th class="num">RTOs</th>' +
      '<th class="num">Sent</th><th class="num">Received</th><th class="num">Connections</th><th class="num">Connect failures</th><th class="num">RTT p50</th>' +
      "</tr></thead><tbody></tbody></table></div>" +
      '<h2>By category <span class="note">all traffic, each connection once, last 5 minutes</span></h2>' +
      '<div class="table-wrap"><table class="grid" id="monitors-categories"><thead><tr>' +
      '<th>Category</th><th class="num">Sent</th><th class="num">Received</th><th class="num">Retransmits</th><th class="num">Connections</th>' +
      '<th class="num">RTT p50</th><th>Top remotes by bytes</th>' +
      "</tr></thead><tbody></tbody></table></div>";
    var bar = block.querySelector("#monitors-metric");
    METRICS.forEach(function (m) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = m.replace("_", " ");
      b.dataset.metric = m;
      b.setAttribute("aria-pressed", String(m === st.metric));
      b.addEventListener("click", function () {
        st.metric = m;
        bar.querySelectorAll("button").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
        loadTop();
      });
      bar.appendChild(b);
    });
    block.querySelector("#monitors-table tbody").addEventListener("click", function (ev) {
      var tr = ev.target.closest("tr[data-monitor]");
      if (!tr) return;
      st.selected = tr.dataset.monitor;
      renderSelection();
      loadTop();
    });
  }

  function renderSelection() {
    document.querySelectorAll("#monitors-table tbody tr[data-monitor]").forEach(function (tr) {
      tr.setAttribute("aria-selected", String(tr.dataset.monitor === st.selected));
      tr.style.fontWeight = tr.dataset.monitor === st.selected ? "600" : "";
    });
  }

  function renderMonitors(d) {
    var ms = d.monitors || [];
    status.monitors = ms.length;
    if (!ms.some(function (m) { return m.name === st.selected; })) st.selected = "all";
    if (ms.length) document.getElementById("monitors-window").textContent = "last " + ms[0].window_seconds + " s";
    document.querySelector("#monitors-table tbody").innerHTML = ms.map(function (m) {
      var s = m.slots || { bytes: [], retransmits: [], rtt_p50_seconds: [] };
      return '<tr data-monitor="' + esc(m.name) + '" style="cursor:pointer"><td class="mono">' + esc(m.name) + "</td>" +
        '<td class="reason">' + esc(scope(m)) + "</td>" +
        '<td class="num">' + count(m.connections) + "</td>" +
        '<td class="num" data-v="' + (m.bytes_sent + m.bytes_received) + '">' + bytes(m.bytes_sent + m.bytes_received) + "</td>" +
        "<td>" + spark(s.bytes, "bytes") + "</td>" +
        '<td class="num">' + count(m.retransmits) + "</td>" +
        "<td>" + spark(s.retransmits, "retransmits") + "</td>" +
        '<td class="num">' + count(m.rtos) + "</td>" +
        '<td class="num">' + count(m.connect_failures) + "</td>" +
        '<td class="num">' + secs(m.rtt_p50_seconds) + "</td>" +
        "<td>" + spark(s.rtt_p50_seconds, "rtt") + "</td>" +
        '<td class="num">' + secs(m.handshake_p50_seconds) + "</td></tr>";
    }).join("");
    renderSelection();
  }

  function loadTop() {
    var name = st.selected;
    return getJSON("api/v1/monitors/" + encodeURIComponent(name) + "/top?metric=" + st.metric + "&window=5m&limit=10").then(function (d) {
      var rows = d.rows || [];
      status.topRows = rows.length;
      status.topMonitor = name;
      document.getElementById("monitors-top-note").textContent = "of " + name + " by " + st.metric.replace("_", " ") + ", last 5 minutes";
      document.querySelector("#monitors-top tbody").innerHTML = rows.map(function (r) {
        return '<tr><td class="mono">' + esc(keyText(r.key)) + "</td><td>" + esc(r.category || "mixed") + "</td><td>" + esc(r.zone || "–") + "</td>" +
          '<td class="num">' + count(r.retransmits) + '</td><td class="num">' + count(r.rtos) + "</td>" +
          '<td class="num">' + bytes(r.bytes_sent) + '</td><td class="num">' + bytes(r.bytes_received) + "</td>" +
          '<td class="num">' + count(r.connections) + '</td><td class="num">' + count(r.connect_failures) + "</td>" +
          '<td class="num">' + secs(r.rtt_p50_seconds) + "</td></tr>";
      }).join("") || '<tr><td colspan="10" class="reason">no traffic in the last 5 minutes</td></tr>';
    });
  }

  function loadCategories() {
    return getJSON("api/v1/insights?metric=bytes&window=5m&limit=200").then(function (d) {
      var top = {};
      (d.rows || []).forEach(function (r) {
        var c = r.category || "mixed";
        (top[c] = top[c] || []).push(r);
      });
      var cats = (d.categories || []).filter(function (c) {
        return c.bytes_sent + c.bytes_received + c.connections + c.retransmits > 0;
      });
      status.categories = cats.length;
      document.querySelector("#monitors-categories tbody").innerHTML = cats.map(function (c) {
        var rs = (top[c.category] || []).slice(0, 3).map(function (r) {
          return esc(keyText(r.key)) + " (" + bytes(r.bytes_sent + r.bytes_received) + ")";
        }).join(", ");
        return '<tr data-category="' + esc(c.category) + '"><td>' + esc(c.category) + "</td>" +
          '<td class="num">' + bytes(c.bytes_sent) + '</td><td class="num">' + bytes(c.bytes_received) + "</td>" +
          '<td class="num">' + count(c.retransmits) + '</td><td class="num">' + count(c.connections) + "</td>" +
          '<td class="num">' + secs(c.rtt_p50_seconds) + '</td><td class="mono">' + rs + "</td></tr>";
      }).join("") || '<tr><td colspan="7" class="reason">no traffic in the last 5 minutes</td></tr>';
    });
  }

  function refresh() {
    var block = document.getElementById("monitors-block");
    if (!block || st.loading) return Promise.resolve();
    st.loading = true;
    return getJSON("api/v1/monitors").then(function (d) {
      if (!block.firstChild) build(block);
      block.hidden = false;
      status.state = "shown";
      renderMonitors(d);
      return Promise.all([loadTop(), loadCategories()]);
    }, function (e) {
      // 404: an agent without the monitors API; not an error.
      block.hidden = true;
      status.state = "hidden: " + e.message;
    }).catch(function (e) {
      status.errors.push("monitors: " + e.message);
    }).then(function () {
      status.rendered++;
      st.loading = false;
    });
  }

  function init() {
    var btn = document.getElementById("refresh");
    if (btn) btn.addEventListener("click", refresh);
    refresh();
    setInterval(function () { if (!document.hidden) refresh(); }, REFRESH_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
