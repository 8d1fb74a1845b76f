// The console's only script, and a small one: every page works without it. It selects every row of a table at
// once, asks before a rejection, and sends a filter as soon as it changes.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll(`input[name="${all.dataset.selectAll}"]`)) {
        box.checked = all.checked;
      }
    });
  }
  for (const button of document.querySelectorAll("button[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }
  for (const select of document.querySelectorAll("form[data-auto] select")) {
    select.addEventListener("change", () => select.form.submit());
  }
});
