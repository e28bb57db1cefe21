// The health verdict (GET /api/v1/health, docs/health.md): the banner at the
// top shows the worst monitor's verdict and its sentence; the "Health"
// block lists every monitor with its verdict, culprit and a timeline of its
// transitions over the last 30 minutes. app.js calls NetsightHealth.apply()
// after it writes the banner (its thresholds stay as a second line).
(function () {
  "use strict";
  var TIMELINE_S = 30 * 60;
  var LABEL = {
    healthy: "Network healthy",
    insufficient_data: "Not enough traffic to judge",
    path_degraded: "Path degraded",
    remote_degraded: "Remote host degraded",
    remote_application: "Remote application",
    local_application: "Local application",
    host_conntrack: "Conntrack table (this host)",
    host_stack: "Drops inside this host",
    cloud_nic_limit: "NIC allowance exceeded",
  };
  // Banner status per verdict: outside this host is a warning, this host's
  // own trouble critical.
  var STATUS = {
    healthy: "ok", insufficient_data: "nodata",
    path_degraded: "warn", remote_degraded: "warn", remote_application: "warn", local_application: "warn",
    host_conntrack: "crit", host_stack: "crit", cloud_nic_limit: "crit",
  };
  var COLOR = { ok: "var(--ok)", warn: "var(--warn)", crit: "var(--crit)", nodata: "var(--muted)" };
  var RANK = { nodata: 0, ok: 1, warn: 2, crit: 3, loading: -1, info: 0 };
  var last = null;
  var self = { report: null, applied: 0, fetches: 0, failed: 0 };
  window.NetsightHealth = self;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function worst(rep) {
    var m = null;
    (rep.monitors || []).forEach(function (x) {
      if (x.verdict === rep.verdict && (!m || x.name === "all")) m = x;
    });
    return m;
  }

  // apply writes the verdict into the banner app.js maintains, keeping
  // app.js's own finding (threshold cards) as a second sentence.
  function apply() {
    var rep = last;
    var v = document.getElementById("verdict");
    if (!rep || !v || !rep.monitors || !rep.monitors.length) return;
    var text = document.getElementById("verdict-text");
    var sub = document.getElementById("verdict-sub");
    var m = worst(rep);
    var st = STATUS[rep.verdict] || "nodata";
    if (text.textContent !== v.dataset.healthText) {
      // app.js wrote the banner since: keep its threshold finding.
      var prev = v.dataset.status;
      v.dataset.cardStatus = prev;
      v.dataset.cards = prev === "warn" || prev === "crit" ? text.textContent : "";
      // A status-only notice (store disabled or down) keeps its explanation.
      v.dataset.cardsSub = v.dataset.statusOnly ? sub.textContent.replace(/^— /, "") : "";
    }
    var cards = v.dataset.cards || "";
    if (cards && RANK[v.dataset.cardStatus] > RANK[st]) st = v.dataset.cardStatus;
    v.dataset.status = st;
    v.dataset.verdict = rep.verdict;
    text.textContent = (LABEL[rep.verdict] || rep.verdict) + (m && m.name !== "all" && rep.verdict !== "healthy" ? " (" + m.name + ")" : "");
    v.dataset.healthText = text.textContent;
    sub.textContent = "— " + (m ? m.summary : "") + (cards ? " · thresholds: " + cards : "") +
      (v.dataset.cardsSub ? " (" + v.dataset.cardsSub + ")" : "");
    self.applied++;
  }

  function ensureBlock() {
    var b = document.getElementById("health-block");
    if (b) return b;
    b = document.createElement("section");
    b.className = "block";
    b.id = "health-block";
    b.innerHTML = "<h2>Health <span class=\"count\" id=\"health-count\"></span></h2>" +
      "<div class=\"table-wrap\"><table class=\"grid\" id=\"health-table\"><thead><tr>" +
      "<th>Monitor</th><th>Verdict</th><th>Since</th><th>Confidence</th><th>Last 30 min</th><th>Summary</th>" +
      "</tr></thead><tbody></tbody></table></div>";
    var after = document.getElementById("store-alert") || document.getElementById("verdict");
    after.parentNode.insertBefore(b, after.nextSibling);
    return b;
  }

  // timeline draws the monitor's verdicts over the last TIMELINE_S seconds
  // as coloured segments (one per transition, oldest left).
  function timeline(m, now) {
    var from = now - TIMELINE_S;
    var tr = (m.transitions || []).map(function (t) { return { at: Date.parse(t.at) / 1000, v: t.verdict }; });
    var segs = [];
    for (var i = 0; i < tr.length; i++) {
      var s = Math.max(tr[i].at, from), e = i + 1 < tr.length ? tr[i + 1].at : now;
      if (e <= from) continue;
      segs.push({ s: s, e: e, v: tr[i].v });
    }
    return "<div class=\"health-timeline\" data-monitor=\"" + esc(m.name) + "\" style=\"display:flex;width:220px;height:12px;border-radius:3px;overflow:hidden;background:var(--border)\">" +
      (segs.length && segs[0].s > from ? "<span style=\"flex:" + (segs[0].s - from) + " 0 0\"></span>" : "") +
      segs.map(function (g) {
        return "<span data-verdict=\"" + esc(g.v) + "\" title=\"" + esc(g.v + " from " + new Date(g.s * 1000).toLocaleTimeString()) +
          "\" style=\"flex:" + Math.max(g.e - g.s, 1) + " 0 0;background:" + COLOR[STATUS[g.v] || "nodata"] + "\"></span>";
      }).join("") + "</div>";
  }

  function render() {
    var rep = last;
    var b = ensureBlock();
    var tb = b.querySelector("tbody");
    var mons = (rep && rep.monitors) || [];
    document.getElementById("health-count").textContent = mons.length ? "(" + mons.length + ")" : "";
    if (!mons.length) {
      tb.innerHTML = "<tr><td colspan=\"6\" class=\"reason\">no verdict yet (monitors evaluate every monitors.evaluate_every)</td></tr>";
      return;
    }
    var now = Date.parse(rep.at) / 1000 || Date.now() / 1000;
    tb.innerHTML = mons.map(function (m) {
      var st = STATUS[m.verdict] || "nodata";
      var extra = m.culprit ? " <b>" + esc(m.culprit) + "</b>" : "";
      if (m.scope) extra += " (scope " + esc(m.scope) + ")";
      return "<tr data-monitor=\"" + esc(m.name) + "\"><td><b>" + esc(m.name) + "</b></td>" +
        "<td><span class=\"state\" data-verdict=\"" + esc(m.verdict) + "\" style=\"color:" + COLOR[st] + "\">" + esc(m.verdict) + "</span></td>" +
        "<td>" + esc(new Date(m.since).toLocaleTimeString()) + "</td><td>" + esc(m.confidence) + "</td>" +
        "<td>" + timeline(m, now) + "</td><td class=\"reason\">" + esc(m.summary) + extra + "</td></tr>";
    }).join("");
  }

  function refresh() {
    self.fetches++;
    return fetch("api/v1/health", { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("GET api/v1/health: " + r.status);
      return r.json();
    }).then(function (rep) {
      last = rep;
      self.report = rep;
      render();
      apply();
    }).catch(function () { self.failed++; });
  }

  self.apply = apply;
  self.refresh = refresh;
  refresh();
  setInterval(function () { if (!document.hidden) refresh(); }, 5000);
})();
