// Small behaviour shared by every page; each works without JavaScript too.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    // After a failed submit, the summary of what to fix is at the top of the page: focus it,
    // so a screen reader reads it and a phone shows it (its links lead to each field).
    var summary = document.querySelector(".error-summary[tabindex]");
    if (summary) summary.focus();
  });

  // An irreversible or outward action (send, close, cancel, withdraw a link) asks first. With
  // JavaScript off, the server shows a confirmation page instead (the form lacks confirm=yes).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (!question || form.querySelector("input[name=confirm]")) return;
    if (!window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var yes = document.createElement("input");
    yes.type = "hidden";
    yes.name = "confirm";
    yes.value = "yes";
    form.appendChild(yes);
  });
})();
