// Progressive enhancement only: every page works without it. A filter applies as soon as a
// select changes (the Filter button stays for keyboards and for browsers without scripts).
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("form.filters select")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
});
