/* The Halvern Courier: small progressive enhancements. Deliberately makes no network requests,
   so a capture that runs scripts sees exactly the same traffic as one that does not. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var notes = document.querySelectorAll(".fnref a");
  for (var i = 0; i < notes.length; i += 1) {
    notes[i].setAttribute("title", "Jump to note");
  }
})();
