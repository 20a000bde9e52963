// Follow a pairing in progress: reload the page when the unit's pairing phase changes.
(function () {
  var shown = document.getElementById("pairing-phase");
  if (!shown) { return; }
  var phase = shown.getAttribute("data-phase");
  window.setInterval(function () {
    fetch("/pairing/state.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (state) {
        if (state && state.phase !== phase) { window.location.replace("/pairing"); }
      })
      .catch(function () { /* the unit is busy or gone: try again next time */ });
  }, 1500);
})();
