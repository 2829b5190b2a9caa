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
