// The console's only script: the live tail of the Events page. Data goes
// into the page as text only, never parsed as markup.
(function () {
  "use strict";
  var form = document.getElementById("tail-form");
  if (!form) { return; }
  var input = document.getElementById("tail-subject");
  var start = document.getElementById("tail-start");
  var stop = document.getElementById("tail-stop");
  var status = document.getElementById("tail-status");
  var rows = document.getElementById("tail-rows");
  var source = null, count = 0, MAX_ROWS = 500;

  function cell(tr, text, code) {
    var td = document.createElement("td");
    var el = code ? document.createElement("code") : td;
    el.textContent = text;
    if (code) { td.appendChild(el); }
    tr.appendChild(td);
  }
  function halt(msg) {
    if (source) { source.close(); source = null; }
    start.disabled = false; stop.disabled = true;
    status.textContent = msg;
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    halt("Connecting…");
    var subject = input.value.trim() || "events.>";
    source = new EventSource("/console/events/tail?subject=" + encodeURIComponent(subject));
    start.disabled = true; stop.disabled = false; count = 0;
    source.onopen = function () { status.textContent = "Tailing " + subject + ": " + count + " events so far."; };
    source.onmessage = function (m) {
      var e;
      try { e = JSON.parse(m.data); } catch (err) { return; }
      var tr = document.createElement("tr");
      cell(tr, e.time || "", false);
      cell(tr, e.type || e.subject || "", false);
      cell(tr, e.key || "", true);
      var td = document.createElement("td"), a = document.createElement("a");
      a.href = "/console/lineage/" + encodeURIComponent(e.id || "");
      a.textContent = e.id || "";
      td.appendChild(a); tr.appendChild(td);
      rows.insertBefore(tr, rows.firstChild);
      while (rows.children.length > MAX_ROWS) { rows.removeChild(rows.lastChild); }
      count++;
      status.textContent = "Tailing " + subject + ": " + count + " events so far.";
    };
    source.onerror = function () {
      if (source && source.readyState === EventSource.CLOSED) { halt("The tail stopped (is the filter valid, and are you logged in?)."); }
      else { status.textContent = "Reconnecting…"; }
    };
  });
  stop.addEventListener("click", function () { halt("Stopped after " + count + " events."); });
})();
