(function () {
  var box = document.getElementById("refresh");
  if (!box || !window.fetch || !window.DOMParser) return;
  var input = box.querySelector("input");
  var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 15;
  box.hidden = false;
  document.documentElement.setAttribute("data-refresh", "on");
  setInterval(function () {
    if (!input.checked || document.hidden) return;
    fetch(location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var main = document.querySelector("main");
        if (!next || !main) return;
        var open = {};
        main.querySelectorAll("details[id]").forEach(function (d) { open[d.id] = d.open; });
        next.querySelectorAll("details[id]").forEach(function (d) { if (d.id in open) d.open = open[d.id]; });
        main.replaceWith(next);
      })
      .catch(function () {});
  }, seconds * 1000);
})();
