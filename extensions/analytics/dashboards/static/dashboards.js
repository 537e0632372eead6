// learnhub dashboards: draws the page's charts with plotly.js and runs the assignment filter.
//
// The data comes from the page's JSON block (#learnhub-dashboard-data), built by the analytics
// service (extensions/analytics/dashboards/charts.py); this file has no data of its own. Without
// this script, or without plotly.js, the page keeps its tables and its text alternatives, and the
// filter still works as a form (the server hides the other assignments' rows).
(function () {
  "use strict";

  var block = document.getElementById("learnhub-dashboard-data");
  if (!block || typeof window.Plotly === "undefined") {
    return;
  }
  var page = JSON.parse(block.textContent);
  var ROWS_FRAME = 150; // keep in step with charts.ROWS_FRAME
  var PLOTLY_CONFIG = {
    responsive: true,
    displaylogo: false,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
    toImageButtonOptions: {format: "png", scale: 2}
  };
  document.documentElement.classList.add("js");

  // A deep copy: plotly.js writes the ranges it computes back into the objects it is given, and
  // a later filter must start from the figure as the service built it.
  function copy(value) {
    return JSON.parse(JSON.stringify(value));
  }

  function tracesFor(chart, assignment) {
    var data = copy(chart.figure.data);
    if (!chart.filter || !assignment) {
      return data;
    }
    return data.filter(function (trace) {
      return trace.meta && trace.meta.assignment === assignment;
    });
  }

  function draw(chart, assignment) {
    var node = document.getElementById(chart.id);
    if (!node) {
      return Promise.resolve();
    }
    var data = tracesFor(chart, assignment);
    var layout = copy(chart.figure.layout);
    if (chart.row_height) {
      var rows = 0;
      data.forEach(function (trace) { rows += (trace.y || []).length; });
      layout.height = ROWS_FRAME + chart.row_height * Math.max(rows, 1);
    }
    if (!data.length) {
      layout.annotations = [{text: "Nothing for this assignment yet", showarrow: false,
                             xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: {size: 16, color: "#555"}}];
    }
    var first = !node.classList.contains("js-plotly-plot");
    if (first) {
      node.textContent = ""; // the "needs JavaScript" note
    }
    node.dataset.assignment = chart.filter ? (assignment || "") : "";
    node.dataset.traces = String(data.length);
    return window.Plotly.react(node, data, layout, PLOTLY_CONFIG).then(function () {
      node.dataset.drawn = "true";
    });
  }

  function filterRows(assignment) {
    var rows = document.querySelectorAll("tr[data-assignment]");
    Array.prototype.forEach.call(rows, function (row) {
      row.hidden = Boolean(assignment) && row.getAttribute("data-assignment") !== assignment;
    });
  }

  function drawAll(assignment) {
    return Promise.all(page.charts.map(function (chart) {
      if (!chart.filter && document.getElementById(chart.id) &&
          document.getElementById(chart.id).dataset.drawn === "true") {
        return Promise.resolve(); // not filtered: drawn once is enough
      }
      return draw(chart, assignment);
    }));
  }

  function start() {
    drawAll(page.assignment).then(function () {
      // The charts are drawn: their tables fold away under "Numbers: …" (open by default, for a
      // page without JavaScript). The tables that say more than their chart stay open.
      Array.prototype.forEach.call(document.querySelectorAll("details.numbers"), function (details) {
        details.open = false;
      });
      document.body.dataset.chartsReady = "true";
    }).catch(function (error) {
      document.body.dataset.chartsError = String(error);
    });

    var select = document.getElementById("assignment-filter");
    if (!select) {
      return;
    }
    var status = document.getElementById("filter-status");
    select.addEventListener("change", function () {
      var assignment = select.value;
      filterRows(assignment);
      status.textContent = assignment ? "Showing assignment " + assignment + " only." : "Showing all assignments.";
      var url = new URL(window.location.href);
      if (assignment) {
        url.searchParams.set("assignment", assignment);
      } else {
        url.searchParams.delete("assignment");
      }
      window.history.replaceState(null, "", url.toString());
      drawAll(assignment);
    });
    document.getElementById("assignment-filter-form").addEventListener("submit", function (event) {
      event.preventDefault(); // the change handler has done it without a reload
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
