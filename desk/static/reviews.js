// Draft revisions: save the editor's form in the background while its author types.
// Without this script the "Save draft" button does the same; nothing depends on it.
(function () {
  "use strict";

  var form = document.querySelector("form[data-autosave-url]");
  if (!form || !window.fetch || !window.FormData) {
    return;
  }
  var url = form.getAttribute("data-autosave-url");
  var status = form.querySelector("[data-autosave-status]");
  var DELAY_MS = 2000;
  var timer = null;
  var inflight = null;
  var dirty = false;
  var leaving = false;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function save() {
    timer = null;
    if (inflight) {
      schedule();
      return;
    }
    dirty = false;
    inflight = fetch(url, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", Accept: "application/json" },
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (answer) {
            if (!response.ok) {
              dirty = true;
            }
            say(answer.message || "Not saved automatically: use “Save draft”.");
          });
      })
      .catch(function () {
        dirty = true;
        say("Not saved: the desk cannot be reached. Keep this page open and try “Save draft”.");
      })
      .finally(function () {
        inflight = null;
      });
  }

  function schedule() {
    if (timer) {
      clearTimeout(timer);
    }
    timer = setTimeout(save, DELAY_MS);
  }

  function changed() {
    dirty = true;
    say("Unsaved changes…");
    schedule();
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);

  // A button press saves through the form itself; let a background save finish first, so an
  // older text can never land after the newer one.
  form.addEventListener("submit", function (event) {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (inflight) {
      event.preventDefault();
      var submitter = event.submitter;
      inflight.finally(function () {
        leaving = true;
        if (form.requestSubmit) {
          form.requestSubmit(submitter);
        } else {
          form.submit();
        }
      });
      return;
    }
    leaving = true;
  });

  window.addEventListener("beforeunload", function (event) {
    if (dirty && !leaving) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
