// Clinitune review: keyboard shortcuts on the grading page, confirmation before closing a campaign.
// No inline scripts (the Content-Security-Policy allows scripts from this file only).
(function () {
  "use strict";

  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && !["radio", "checkbox", "submit", "button"].includes(el.type)));
  }

  function gradingShortcuts(form) {
    if (form.classList.contains("closed")) return;
    var byKey = {};
    form.querySelectorAll("input[data-key]").forEach(function (input) { byKey[input.dataset.key] = input; });
    var comment = document.getElementById("comment");
    document.addEventListener("keydown", function (ev) {
      if (ev.altKey || ev.metaKey) return;
      if (typing(ev.target)) {
        if (ev.key === "Escape") { ev.target.blur(); ev.preventDefault(); }
        else if (ev.key === "Enter" && ev.ctrlKey) { ev.preventDefault(); form.requestSubmit(); }
        return;
      }
      if (ev.ctrlKey) return;
      var key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
      if (byKey[key]) { byKey[key].checked = true; byKey[key].focus(); ev.preventDefault(); return; }
      if (key === "Enter") {
        if (ev.target.tagName === "A" || ev.target.tagName === "BUTTON") return;  // their own Enter
        ev.preventDefault(); form.requestSubmit(); return;
      }
      if (key === "c" && comment) { ev.preventDefault(); comment.focus(); return; }
      var link = key === "n" ? document.getElementById("next") : key === "p" ? document.getElementById("prev") : null;
      if (link) { ev.preventDefault(); window.location.assign(link.href); }
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("grade-form");
    if (form) gradingShortcuts(form);
    confirmations();
  });
})();
