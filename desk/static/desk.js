// Progressive enhancement only: every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Live filter for lists that carry data-filter-text (the form still works on submit).
  document.querySelectorAll("input[data-filter]").forEach((input) => {
    const items = document.querySelectorAll(input.dataset.filter);
    const empty = document.querySelector(".filter-empty");
    const fold = (text) => text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
    input.addEventListener("input", () => {
      const needle = fold(input.value.trim());
      let shown = 0;
      items.forEach((item) => {
        const match = fold(item.dataset.filterText || item.textContent).includes(needle);
        item.hidden = !match;
        if (match) shown += 1;
      });
      if (empty) empty.hidden = shown !== 0;
    });
  });
});

// Feedback form: check the chosen files against the limits before sending (the server checks
// again and is the authority), keep a draft of the message in this tab, and forget the draft
// once the thank-you page shows the message arrived.
document.addEventListener("DOMContentLoaded", () => {
  const storage = (() => {
    try {
      return window.sessionStorage;
    } catch (error) {
      return null; // Storage can be switched off; the form works without it.
    }
  })();

  document.querySelectorAll("[data-clear-draft]").forEach((element) => {
    if (storage) storage.removeItem(element.dataset.clearDraft);
  });

  document.querySelectorAll("form[data-feedback-form]").forEach((form) => {
    const message = form.querySelector("textarea[name=message]");
    const key = form.dataset.draftKey;
    if (message && key && storage) {
      const draft = storage.getItem(key);
      if (draft && !message.value.trim()) {
        message.value = draft;
        const note = document.createElement("p");
        note.className = "notice";
        note.setAttribute("role", "status");
        note.textContent = form.dataset.draftRestored;
        message.before(note);
      }
      message.addEventListener("input", () => {
        try {
          storage.setItem(key, message.value);
        } catch (error) {
          // A full storage only costs the draft.
        }
      });
    }

    const files = form.querySelector("input[type=file][data-max-files]");
    const fileError = form.querySelector("#attachments-browser-error");
    if (!files || !fileError) return;
    const limits = files.dataset;
    const problems = () => {
      const chosen = Array.from(files.files || []);
      if (chosen.length > Number(limits.maxFiles)) return [limits.errorTooMany];
      const large = chosen.filter((file) => file.size > Number(limits.maxFileBytes));
      if (large.length) return large.map((file) => limits.errorTooLarge.replace("{name}", file.name));
      const total = chosen.reduce((sum, file) => sum + file.size, 0);
      return total > Number(limits.maxTotalBytes) ? [limits.errorTotal] : [];
    };
    const showProblems = () => {
      const found = problems();
      fileError.textContent = found.join(" ");
      fileError.hidden = found.length === 0;
      if (found.length) files.setAttribute("aria-invalid", "true");
      else files.removeAttribute("aria-invalid");
      return found.length > 0;
    };
    files.addEventListener("change", showProblems);
    form.addEventListener("submit", (event) => {
      if (showProblems()) {
        event.preventDefault();
        files.focus();
      }
    });
  });

  const summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
});
