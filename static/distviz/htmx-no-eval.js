// htmx 4 has no allowEval switch: hx-on, js: values and event filters compile strings with the
// Function constructor. The Content-Security-Policy (no 'unsafe-eval') already blocks that; this
// extension also swaps htmx's Function constructors for ones that refuse, so no string from a
// page or a swapped fragment can ever run as code, whatever the policy.
(function () {
  "use strict";
  function refuse() { throw new Error("distviz: evaluating strings as code is disabled"); }
  htmx.registerExtension("distviz-no-eval", {
    init: function (api) { api.initSecurity(null, refuse, refuse); },
  });
})();
