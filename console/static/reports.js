// The reports page's refresh: every few seconds it fetches the charts
// again (server-rendered, escaped by html/template on Cairn's own origin)
// and swaps them in, keeping which tables are open. It stops when the
// session ends rather than swap in the login page.
(function () {
  "use strict";
  var live = document.getElementById("reports-live");
  if (!live) { return; }
  var every = Number(live.getAttribute("data-refresh")) || 5000;
  var busy = false;

  function openTables() {
    var open = [];
    live.querySelectorAll("details[open] table").forEach(function (t) { open.push(t.id); });
    return open;
  }
  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch("/console/reports/live", { credentials: "same-origin", redirect: "manual", cache: "no-store" })
      .then(function (r) {
        if (r.type === "opaqueredirect" || r.status === 401) {
          clearInterval(timer);
          var p = document.createElement("p");
          p.className = "flash";
          p.setAttribute("role", "alert");
          p.textContent = "The session ended: log in again to keep the reports live.";
          live.insertBefore(p, live.firstChild);
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) { return; }
        var open = openTables();
        live.innerHTML = html;
        open.forEach(function (id) {
          var t = document.getElementById(id);
          var d = t && t.closest("details");
          if (d) { d.open = true; }
        });
      })
      .catch(function () { /* a failed poll is tried again at the next tick */ })
      .then(function () { busy = false; });
  }
  var timer = setInterval(refresh, every);
})();
