// distviz message flights: the shared front end of every concept's messages in flight.
//
// A picture layer carrying data-flights (apps/common/flights.py writes it) is drawn here as
// animated dots, and every SMIL animation an update brings (begin="indefinite", data-at: a delay
// in ms) is started, on the next animation frame after the update (room.js fires
// "distviz:updated"). Nothing here knows a concept.
(function () {
  "use strict";
  // SVG animations in an update start when the update arrives: SMIL times count from the page's
  // load, so the server marks them begin="indefinite" (data-at: a delay in ms) and they start here.
  const SVG_NS = "http://www.w3.org/2000/svg";
  function startAt(el, ms) {
    el.dataset.started = "1";
    try { el.beginElementAt((Number(ms) || 0) / 1000); } catch (e) { /* detached meanwhile */ }
  }
  function svgEl(name, attrs) {
    const el = document.createElementNS(SVG_NS, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    return el;
  }
  // A layer's data-flights lists its messages, ";"-separated: "m,x1,y1,x2,y2,at,dur,tone" (a dot
  // flying along its link, starting at ms "at", for "dur" ms) and "a,x,y,at,tone,text" (an
  // answer shown when its reply arrives). The server writes them (apps/common/flights.py).
  function drawFlights(g) {
    g.dataset.flights.split(";").forEach(function (item) {
      const f = item.split(",");
      if (f[0] === "m" && f.length >= 8) {
        const dot = svgEl("circle", { "class": "msg " + f[7], r: "0" });
        const grow = svgEl("animate", { attributeName: "r", values: "10;10", begin: "indefinite", dur: (Number(f[6]) + 400) + "ms" });
        const move = svgEl("animateMotion", { begin: "indefinite", dur: f[6] + "ms", fill: "freeze", path: "M" + f[1] + " " + f[2] + "L" + f[3] + " " + f[4] });
        dot.append(grow, move);
        g.append(dot);
        startAt(grow, f[5]);
        startAt(move, f[5]);
      } else if (f[0] === "a" && f.length >= 6) {
        const text = svgEl("text", { "class": "answer " + f[4], x: f[1], y: f[2], opacity: "0" });
        text.textContent = f.slice(5).join(",");
        const show = svgEl("set", { attributeName: "opacity", to: "1", begin: "indefinite", fill: "freeze" });
        text.append(show);
        g.append(text);
        startAt(show, f[3]);
      }
    });
  }
  function startAnimations() {
    document.querySelectorAll("[data-flights]:not([data-started])").forEach(function (g) {
      g.dataset.started = "1";
      drawFlights(g);
    });
    document.querySelectorAll("animate[begin=indefinite]:not([data-started]), animateMotion[begin=indefinite]:not([data-started]), set[begin=indefinite]:not([data-started])").forEach(function (el) {
      startAt(el, el.dataset.at);
    });
  }
  // On the next animation frame, not now: an element that has just been swapped in has not been
  // laid out yet, and a SMIL animation begun before that sat still and then jumped to its end.
  let animationsQueued = false;
  document.addEventListener("distviz:updated", function () {
    if (animationsQueued) return;
    animationsQueued = true;
    requestAnimationFrame(function () { animationsQueued = false; startAnimations(); });
  });

})();
