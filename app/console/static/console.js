// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Times are printed in UTC; the hover title gives the reader's local time.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when.getTime())) {
      el.title = when.toLocaleString() + " (local time)";
    }
  });
  // An active run's page reloads itself until the run ends (the server stops asking).
  var refresh = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (refresh > 0) {
    window.setTimeout(function () {
      if (!document.hidden) {
        window.location.reload();
      }
    }, refresh * 1000);
  }
  // Filters apply as soon as a select changes.
  document.querySelectorAll("form.filters select").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
});
