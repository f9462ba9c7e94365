// Light touch: show the hardship type only for a confirmed hardship and the disagreement
// fields only when the box is ticked. Without JavaScript every field simply stays visible.
document.addEventListener("DOMContentLoaded", function () {
  var outcome = document.getElementById("outcome-select");
  var disagrees = document.getElementById("disagrees");
  function sync() {
    document.querySelectorAll(".if-confirmed").forEach(function (el) {
      el.classList.toggle("hidden", !outcome || outcome.value !== "hardship_confirmed");
    });
    document.querySelectorAll(".if-disagrees").forEach(function (el) {
      el.classList.toggle("hidden", !disagrees || !disagrees.checked);
    });
  }
  if (outcome) { outcome.addEventListener("change", sync); }
  if (disagrees) { disagrees.addEventListener("change", sync); }
  sync();
  // a second click while the first submit is in flight would only resubmit the same id
  var form = document.getElementById("outcome-form");
  if (form) {
    form.addEventListener("submit", function () {
      var b = document.getElementById("submit-outcome");
      if (b) { b.disabled = true; }
    });
  }
});
