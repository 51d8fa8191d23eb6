// harness dashboard: live fragments and PNG downloads of plots. Written for this project
// (no third-party code); loaded from the server itself, never from a CDN.
(function () {
  "use strict";
  window.__harnessLoadedAt = Date.now();

  function schedule(el) {
    var url = el.getAttribute("data-poll");
    if (!url) return;
    var ms = parseInt(el.getAttribute("data-interval") || "2000", 10);
    setTimeout(function () {
      if (!document.body.contains(el)) return;
      fetch(url, { credentials: "same-origin", headers: { "X-Fragment": "1" } })
        .then(function (r) {
          if (r.status === 401 || r.status === 404) return null; // logged out or gone: stop polling
          return r.ok ? r.text() : "";
        })
        .then(function (html) {
          if (html === null) return;
          if (!html) { schedule(el); return; }
          var t = document.createElement("template");
          t.innerHTML = html.trim();
          var fresh = t.content.firstElementChild;
          if (!fresh) { schedule(el); return; }
          el.replaceWith(fresh);
          init(fresh);
          document.dispatchEvent(new CustomEvent("harness:update", { detail: fresh.id }));
        })
        .catch(function () { schedule(el); });
    }, ms);
  }

  // The plot's SVG drawn on a canvas, as a PNG data URL (Promise).
  function plotPng(svg, scale) {
    scale = scale || 2;
    var xml = new XMLSerializer().serializeToString(svg);
    var src = "data:image/svg+xml;base64," + btoa(unescape(encodeURIComponent(xml)));
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () {
        var w = svg.width.baseVal.value, h = svg.height.baseVal.value;
        var c = document.createElement("canvas");
        c.width = w * scale; c.height = h * scale;
        var ctx = c.getContext("2d");
        ctx.scale(scale, scale);
        ctx.drawImage(img, 0, 0, w, h);
        resolve(c.toDataURL("image/png"));
      };
      img.onerror = function () { reject(new Error("could not draw the plot")); };
      img.src = src;
    });
  }
  window.harnessPlotPng = plotPng;

  function bindPng(root) {
    root.querySelectorAll("button.png-download").forEach(function (b) {
      b.addEventListener("click", function () {
        var svg = b.closest("figure").querySelector("svg");
        plotPng(svg).then(function (url) {
          var a = document.createElement("a");
          a.href = url; a.download = b.getAttribute("data-name") || "plot.png";
          document.body.appendChild(a); a.click(); a.remove();
        });
      });
    });
  }

  function init(root) {
    if (root.hasAttribute && root.hasAttribute("data-poll")) schedule(root);
    root.querySelectorAll("[data-poll]").forEach(schedule);
    bindPng(root);
    root.querySelectorAll("pre.log").forEach(function (p) { p.scrollTop = p.scrollHeight; });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document.body); });
})();
