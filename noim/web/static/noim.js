// noim: progressive enhancement only; every page works without this file.
(function () {
  "use strict";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  // The label's own words, without its "(required)" marker.
  function labelText(input) {
    if (!input.labels || !input.labels[0]) { return "a date"; }
    var copy = input.labels[0].cloneNode(true);
    Array.prototype.forEach.call(copy.querySelectorAll(".req"), function (r) { r.remove(); });
    return copy.textContent.trim();
  }
  // A date typed dd/mm/yyyy can also be picked: a native date input beside it writes back.
  function enhanceDates() {
    var inputs = document.querySelectorAll("input.date-input");
    Array.prototype.forEach.call(inputs, function (input) {
      if (input.dataset.enhanced) { return; }
      input.dataset.enhanced = "1";
      var picker = document.createElement("input");
      picker.type = "date";
      picker.className = "date-picker-native";
      picker.tabIndex = -1;
      picker.setAttribute("aria-label", "Pick " + labelText(input));
      picker.addEventListener("change", function () {
        var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(picker.value);
        if (m) { input.value = m[3] + "/" + m[2] + "/" + m[1]; input.dispatchEvent(new Event("change")); }
      });
      input.addEventListener("change", function () {
        var m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(input.value.trim());
        if (m) { picker.value = m[3] + "-" + pad(+m[2]) + "-" + pad(+m[1]); }
      });
      input.insertAdjacentElement("afterend", picker);
    });
  }
  // Errors are announced: move focus to the summary of a rejected form.
  function focusErrors() {
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  }
  document.addEventListener("DOMContentLoaded", function () { enhanceDates(); focusErrors(); });
})();
