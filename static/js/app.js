// Small behaviour shared by every page; each works without JavaScript too.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    // After a failed submit, the summary of what to fix is at the top of the page: focus it,
    // so a screen reader reads it and a phone shows it (its links lead to each field).
    var summary = document.querySelector(".error-summary[tabindex]");
    if (summary) summary.focus();
  });
})();
