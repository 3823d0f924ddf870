// The poll dashboard's map, and its print button. Everything else on the page is server-rendered
// and refreshed by htmx; the map keeps its state (hx-preserve) and refetches its points when the
// live figures change (a new stamp) or the "within" control moves.
(function () {
  "use strict";

  var COLOURS = {
    available: "#1e6b34",
    conditional: "#b35c00",
    unavailable: "#a4161a",
    "": "#7a8594",
  };
  var LABELS = {
    available: "Available",
    conditional: "Available with conditions",
    unavailable: "Unavailable",
    "": "No answer yet",
  };

  function el(tag, text) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text; // never innerHTML: names are user text
    return node;
  }

  function minutes(value) {
    if (value === null || value === undefined) return "—";
    var h = Math.floor(value / 60), m = value % 60;
    if (!h) return m + " min";
    return m ? h + " h " + m + " min" : h + " h";
  }

  function style(decision, officers) {
    var colour = COLOURS[decision] || COLOURS[""];
    if (!decision) return { radius: 3, color: colour, weight: 1, fillColor: colour, fillOpacity: 0.5 };
    var radius = 5 + Math.sqrt(officers || 0) * 2;
    if (decision === "available") {
      return { radius: radius, color: colour, weight: 2, fillColor: colour, fillOpacity: 0.7 };
    }
    if (decision === "conditional") {
      return { radius: radius, color: colour, weight: 3, dashArray: "4 3", fillColor: colour, fillOpacity: 0.25 };
    }
    return { radius: 6, color: colour, weight: 2, fillOpacity: 0 };
  }

  function popup(point, historyUrl) {
    // point: [id, name, lat, lon, decision, officers, arrival]
    var box = el("div");
    box.appendChild(el("strong", point[1]));
    box.appendChild(el("div", LABELS[point[4]] || LABELS[""]));
    if (point[4] && point[4] !== "unavailable") {
      box.appendChild(el("div", point[5] + " officers, earliest arrival " + minutes(point[6])));
    }
    if (point[4]) {
      var link = el("a", "Answer and history");
      link.href = historyUrl.replace("/0/", "/" + point[0] + "/");
      box.appendChild(link);
    }
    return box;
  }

  function setUpMap() {
    var node = document.getElementById("map");
    if (!node || !window.L || node.dataset.ready) return;
    node.dataset.ready = "1";
    var map = L.map(node, { preferCanvas: true, scrollWheelZoom: false });
    node.leafletMap = map; // reachable from the console and the browser tests (canvas markers)
    if (node.dataset.tiles) {
      L.tileLayer(node.dataset.tiles, { maxZoom: 18, attribution: node.dataset.attribution }).addTo(map);
    }
    var dest = [parseFloat(node.dataset.destLat), parseFloat(node.dataset.destLon)];
    map.setView(dest, 8);
    var star = L.divIcon({ className: "dest-icon", html: "★", iconSize: [28, 28], iconAnchor: [14, 14] });
    L.marker(dest, { icon: star, title: node.dataset.destName, keyboard: true, alt: node.dataset.destName, zIndexOffset: 1000 })
      .bindPopup(el("strong", "★ " + node.dataset.destName))
      .addTo(map);
    var layer = L.layerGroup().addTo(map);
    var loadedUrl = null, fitted = false;
    // After the first load only what changed is fetched (?since=), for the same window: a live
    // map of 20,000 agencies does not download every point on every change.
    var markers = {}, asOf = null, asOfWithin = null;

    function withinOf(url) {
      return new URL(url, window.location.href).searchParams.get("within");
    }

    function load() {
      var live = document.getElementById("live");
      var url = live && live.dataset.mapUrl;
      if (!url || url === loadedUrl) return;
      loadedUrl = url;
      var within = withinOf(url);
      var partial = asOf !== null && within === asOfWithin;
      var fetchUrl = partial ? url + "&since=" + encodeURIComponent(asOf) : url;
      fetch(fetchUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          if (!data.partial) {
            layer.clearLayers();
            markers = {};
          }
          var bounds = L.latLngBounds([dest]);
          // Silent agencies first, so answers are drawn on top of them.
          data.agencies
            .slice()
            .sort(function (a, b) { return (a[4] ? 1 : 0) - (b[4] ? 1 : 0) || b[5] - a[5]; })
            .forEach(function (p) {
              if (markers[p[0]]) layer.removeLayer(markers[p[0]]);
              var marker = L.circleMarker([p[2], p[3]], style(p[4], p[5]));
              marker.bindPopup(popup(p, node.dataset.historyUrl));
              marker.bindTooltip(el("span", p[1])); // a DOM node: the name is text, never HTML
              layer.addLayer(marker);
              markers[p[0]] = marker;
              bounds.extend([p[2], p[3]]);
            });
          if (!fitted && data.agencies.length) {
            map.invalidateSize();
            map.fitBounds(bounds, { padding: [20, 20], maxZoom: 10 });
            fitted = true;
          }
          asOf = data.as_of;
          asOfWithin = within;
          node.dataset.points = String(Object.keys(markers).length);
          node.dataset.lastFetched = String(data.agencies.length);
        })
        .catch(function () { loadedUrl = null; });
    }

    load();
    document.body.addEventListener("htmx:afterSettle", load);
  }

  // The long lists fold (<details class="fold">). The server renders them closed, for a phone;
  // a wider screen opens them, and so does a link to one of them (a sort or page link ends in
  // #replies). A live update replaces them: each comes back as the reader left it.
  var WIDE = "(min-width: 64rem)"; // a laptop, or a tablet held sideways
  var folds = {}; // details id -> open, once set here or by the reader

  function linkedFold() {
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    if (!target) return null;
    return target.closest("details.fold") || target.querySelector("details.fold");
  }

  // openLinked: on load and on a followed link, not on a live update (which must not reopen a
  // list the reader has closed since).
  function setUpFolds(openLinked) {
    var wide = window.matchMedia(WIDE).matches;
    var linked = openLinked ? linkedFold() : null;
    document.querySelectorAll("details.fold[id]").forEach(function (details) {
      var open = details.id in folds ? folds[details.id] : wide;
      if (details === linked) open = true;
      details.open = open;
      folds[details.id] = open;
    });
  }

  document.addEventListener(
    "toggle",
    function (event) {
      var details = event.target;
      if (details.matches && details.matches("details.fold[id]") && details.isConnected) {
        folds[details.id] = details.open;
      }
    },
    true // toggle does not bubble
  );

  function setUp() {
    document.documentElement.classList.add("js");
    setUpFolds(true);
    document.body.addEventListener("htmx:afterSwap", function () { setUpFolds(false); });
    window.addEventListener("hashchange", function () { setUpFolds(true); });
    document.querySelectorAll(".print-button").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    setUpMap();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
