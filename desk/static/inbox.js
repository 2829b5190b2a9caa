// Keyboard shortcuts for the staff desk. Progressive enhancement only: each shortcut does what a
// link, button or form on the page already does, so the desk works the same without this file.
"use strict";

(() => {
  const CURRENT_KEY = "desk.inbox.current";

  const isTyping = (element) =>
    element instanceof HTMLElement &&
    (element.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName));

  const storage = (() => {
    try {
      return window.sessionStorage;
    } catch (error) {
      return null; // Storage can be switched off; only the remembered row is lost.
    }
  })();

  // Post the same fields a form on the page would (the token is the page's CSRF token).
  const post = (url, fields) => {
    const form = document.createElement("form");
    form.method = "post";
    form.action = url;
    form.hidden = true;
    const token = document.querySelector('meta[name="csrf-token"]');
    const all = { csrf_token: token ? token.content : "", ...fields };
    Object.entries(all).forEach(([name, value]) => {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.append(input);
    });
    document.body.append(form);
    form.submit();
  };

  const clickIn = (selector) => {
    const button = document.querySelector(`${selector} button[type=submit]`);
    if (!button) return false;
    button.click();
    return true;
  };

  document.addEventListener("DOMContentLoaded", () => {
    const list = document.querySelector("[data-inbox-list]");
    const rows = list ? Array.from(list.querySelectorAll("tr[data-item]")) : [];
    const itemPage = document.querySelector("[data-item-page]");
    const search = document.querySelector("[data-search]");
    const shortcuts = document.getElementById("shortcuts");
    const here = window.location.pathname + window.location.search;
    let current = -1;

    const mark = (index) => {
      current = index;
      rows.forEach((row, i) => {
        row.classList.toggle("is-current", i === index);
        if (i === index) row.setAttribute("aria-current", "true");
        else row.removeAttribute("aria-current");
      });
      if (storage && rows[index]) storage.setItem(CURRENT_KEY, rows[index].dataset.reference);
    };

    const select = (index) => {
      if (!rows.length) return;
      mark(Math.max(0, Math.min(rows.length - 1, index)));
      const link = rows[current].querySelector(".item-link");
      if (link) link.focus();
      rows[current].scrollIntoView({ block: "nearest" });
    };

    if (list) {
      // Coming back from an item, the row it was on is the current one again.
      const remembered = storage ? storage.getItem(CURRENT_KEY) : null;
      const again = rows.findIndex((row) => row.dataset.reference === remembered);
      if (again >= 0) mark(again);
      list.addEventListener("focusin", (event) => {
        const row = event.target.closest("tr[data-item]");
        if (row) mark(rows.indexOf(row));
      });
    }
    if (search && window.location.hash === "#search") search.focus();
    if (itemPage && window.location.hash === "#close-reason") {
      // After the browser's own jump to the fragment, which would move the focus again.
      window.addEventListener("load", () => {
        const reason = document.getElementById("close-reason");
        if (reason) reason.focus();
      });
    }

    const setShortcuts = (open) => {
      if (!shortcuts) return;
      shortcuts.open = open;
      shortcuts.classList.toggle("as-overlay", open);
      if (open) shortcuts.querySelector("summary").focus();
    };
    if (shortcuts) {
      shortcuts.addEventListener("toggle", () => {
        if (!shortcuts.open) shortcuts.classList.remove("as-overlay");
      });
    }

    const row = () => rows[current] || null;
    const inboxUrl = () => {
      const link = document.querySelector('nav[aria-label="Staff"] a[href$="/desk/inbox"]');
      return link ? link.href : "/desk/inbox";
    };

    const actions = {
      j: () => select(current + 1),
      k: () => select(current < 0 ? 0 : current - 1),
      x: () => {
        const box = row() && row().querySelector("input[type=checkbox]");
        if (box) box.checked = !box.checked;
      },
      o: () => {
        const link = row() && row().querySelector(".item-link");
        if (link) window.location.assign(link.href);
      },
      a: () => {
        if (itemPage) return clickIn('form[data-action="assign-me"]');
        if (row()) post(row().dataset.assignUrl, { "assign-assignee": "me", "assign-next": here });
        return true;
      },
      e: () => {
        if (itemPage) {
          const reason = document.getElementById("close-reason");
          if (reason) reason.focus();
        } else if (row()) {
          window.location.assign(row().dataset.closeUrl);
        }
      },
      "#": () => {
        if (itemPage) return clickIn('form[data-action="spam"]');
        if (row()) post(row().dataset.spamUrl, { next: here });
        return true;
      },
      "/": () => {
        if (search) search.focus();
        else window.location.assign(`${inboxUrl()}#search`);
      },
      u: () => {
        const back = document.querySelector("[data-back]");
        window.location.assign(back ? back.href : inboxUrl());
      },
      "?": () => setShortcuts(!(shortcuts && shortcuts.open)),
    };

    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
      if (event.key === "Escape") {
        if (shortcuts && shortcuts.open) setShortcuts(false);
        else if (isTyping(event.target)) event.target.blur();
        return;
      }
      if (isTyping(event.target)) return;
      if (event.key === "Enter") {
        // Enter on a link or button does its own thing; on the page it opens the current row.
        if (event.target.closest("a, button, summary") || !row()) return;
        event.preventDefault();
        actions.o();
        return;
      }
      const action = actions[event.key];
      if (!action) return;
      event.preventDefault();
      action();
    });
    // Lets tests (and curious people) tell that the shortcuts are listening.
    document.documentElement.dataset.keyboard = "ready";
  });
})();
