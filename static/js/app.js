// Small behaviour shared by every page; each works without JavaScript too.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    // After a failed submit, the summary of what to fix is at the top of the page: focus it,
    // so a screen reader reads it and a phone shows it (its links lead to each field).
    var summary = document.querySelector(".error-summary[tabindex]");
    if (summary) summary.focus();
    document.querySelectorAll("select[multiple][data-searchable]").forEach(searchable);
  });

  // Letters only, lower case and without accents: what a search compares.
  function key(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  // A long multiple choice (select[multiple][data-searchable], e.g. 276 agencies) becomes a search
  // box over a list of checkboxes: type part of a name to filter, click a name to tick it (no
  // Ctrl). The select stays in the form, hidden: it is what the form submits, and each tick sets
  // its option and bubbles a change (the compose form's live preview listens for it). Without
  // JavaScript the plain select works as before.
  function searchable(select) {
    var label = document.querySelector('label[for="' + select.id + '"]');
    var box = el("div", "picker");
    var bar = el("div", "picker-bar");
    var search = el("input", "picker-search");
    search.type = "search";
    search.id = select.id + "_search";
    search.autocomplete = "off";
    search.placeholder = "Type to filter";
    var count = el("span", "picker-count");
    count.id = select.id + "_count";
    count.setAttribute("aria-live", "polite");
    var list = el("div", "picker-list");
    list.id = select.id + "_list";
    list.setAttribute("role", "group");
    var none = el("p", "picker-empty help");
    none.textContent = select.options.length ? "Nothing matches." : "Nothing to choose from.";
    none.hidden = true;
    search.setAttribute("aria-controls", list.id);
    var described = [select.getAttribute("aria-describedby"), count.id].filter(Boolean);
    search.setAttribute("aria-describedby", described.join(" "));
    if (label) {
      // The field's label now names the search box and the list; clicking it lands in the box.
      label.id = label.id || select.id + "_label";
      label.htmlFor = search.id;
      list.setAttribute("aria-labelledby", label.id);
    }

    var rows = Array.prototype.map.call(select.options, function (option) {
      var row = el("label", "picker-option");
      var tick = document.createElement("input");
      tick.type = "checkbox";
      tick.checked = option.selected;
      tick.tabIndex = -1;
      tick.addEventListener("change", function () {
        option.selected = tick.checked;
        setCurrent(tick);
        showCount();
      });
      row.appendChild(tick);
      row.appendChild(document.createTextNode(option.text)); // text, never HTML: names are user text
      row.searchKey = key(option.text);
      list.appendChild(row);
      return row;
    });

    // One tab stop for the whole list (it may hold hundreds); arrow keys move within it.
    var current = null;
    function setCurrent(tick) {
      if (current) current.tabIndex = -1;
      current = tick;
      if (current) current.tabIndex = 0;
    }
    function visibleTicks() {
      return rows.filter(function (row) { return !row.hidden; }).map(function (row) { return row.firstChild; });
    }
    function showCount() {
      count.textContent = select.selectedOptions.length + " selected";
    }
    function filter() {
      var wanted = key(search.value.trim());
      rows.forEach(function (row) { row.hidden = wanted !== "" && row.searchKey.indexOf(wanted) === -1; });
      var ticks = visibleTicks();
      none.hidden = ticks.length > 0;
      if (!current || ticks.indexOf(current) === -1) setCurrent(ticks[0] || null);
    }

    search.addEventListener("input", filter);
    search.addEventListener("change", function (event) { event.stopPropagation(); }); // not a form value
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault(); // filtering, not submitting the form
      if (event.key === "ArrowDown" && current) {
        event.preventDefault();
        current.focus();
      }
    });
    list.addEventListener("keydown", function (event) {
      var ticks = visibleTicks();
      var at = ticks.indexOf(document.activeElement);
      var next = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: ticks.length - 1 }[event.key];
      if (at === -1 || next === undefined) return;
      event.preventDefault();
      if (next < 0) return search.focus();
      if (next >= ticks.length) return;
      setCurrent(ticks[next]);
      ticks[next].focus();
    });

    bar.appendChild(search);
    bar.appendChild(count);
    box.appendChild(bar);
    box.appendChild(list);
    box.appendChild(none);
    select.parentNode.insertBefore(box, select);
    select.hidden = true;
    filter();
    showCount();
  }

  function el(tag, className) {
    var node = document.createElement(tag);
    node.className = className;
    return node;
  }

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
