// liebian console: draws the ECharts charts the server serialised into the page, offers each as a
// PNG download, and keeps working after htmx swaps in new content. No inline scripts (CSP).
(function () {
  "use strict";
  var charts = [];

  function drawCharts(root) {
    if (!window.echarts) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var source = document.getElementById(el.dataset.chart);
      if (!source) return;
      var option = JSON.parse(source.textContent);
      var chart = echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option);
      el.dataset.drawn = "1";
      charts.push(chart);
      chart.on("click", function (params) {
        // a chart may carry drill-down links: option.liebianLinks[seriesIndex][dataIndex]
        var links = option.liebianLinks;
        var url = links && links[params.seriesIndex] && links[params.seriesIndex][params.dataIndex];
        if (url) window.location.assign(url);
      });
    });
  }

  function downloadPng(id) {
    var el = document.getElementById(id);
    var chart = el && echarts.getInstanceByDom(el);
    if (!chart) return;
    var a = document.createElement("a");
    a.href = chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" });
    a.download = id + ".png";
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-png]");
    if (button) downloadPng(button.dataset.png);
  });

  // Filters: changing a select applies the filter bar at once (the button remains for keyboards).
  document.addEventListener("change", function (event) {
    var form = event.target.closest("form.filters");
    if (form && event.target.tagName === "SELECT") form.requestSubmit();
  });

  // A "select all" box: <input type=checkbox data-check-all="NAME"> ticks the form's NAME boxes.
  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-check-all]");
    if (!all || !all.form) return;
    all.form.querySelectorAll('input[type=checkbox][name="' + all.dataset.checkAll + '"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });

  // Narrow screens: the side navigation is collapsed behind the header's menu button.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest(".nav-toggle");
    if (!toggle) return;
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    document.body.classList.toggle("nav-open", open);
  });

  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.detail.target); });
  // A refusal with a 4xx status (an upload over a limit: 413, 422, 429) carries its reason as a
  // flash line: show it like a 200 answer.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status >= 400 && xhr.status < 500 && /^<p class="flash error"/.test(xhr.responseText || "")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  window.liebianConsole = { drawCharts: drawCharts, downloadPng: downloadPng };
})();
