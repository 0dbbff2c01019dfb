// easgate console: small progressive enhancements. Every flow works
// without this file; it only adds "tick all", a count of ticked devices
// and a confirmation before destructive buttons.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var all = document.getElementById("q-all");
  var boxes = document.querySelectorAll('input[name="device"]');
  var count = document.getElementById("q-count");
  function update() {
    var n = 0;
    boxes.forEach(function (b) { if (b.checked) { n++; } });
    if (count) { count.textContent = n ? n + " ticked" : ""; }
    if (all) { all.checked = n > 0 && n === boxes.length; all.indeterminate = n > 0 && n < boxes.length; }
  }
  if (all) {
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { if (!b.disabled) { b.checked = all.checked; } });
      update();
    });
  }
  boxes.forEach(function (b) { b.addEventListener("change", update); });
  document.querySelectorAll("button[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      if (!window.confirm(b.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
})();
