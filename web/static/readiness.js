// The readiness board reloads itself while rooms wait their turn or test (data-refresh-seconds > 0).
(function () {
  "use strict";
  var board = document.getElementById("board");
  var seconds = board ? Number(board.dataset.refreshSeconds) : 0;
  if (seconds > 0) {
    setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();
