// Applied before first paint so the page does not flash the wrong theme.
(function () {
  var t = null;
  try { t = localStorage.getItem("netsight-theme"); } catch (e) { /* storage disabled */ }
  if (t !== "light" && t !== "dark") {
    t = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  var q = new URLSearchParams(location.search).get("theme");
  if (q === "light" || q === "dark") t = q;
  document.documentElement.dataset.theme = t;
})();
