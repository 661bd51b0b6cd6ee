// docmail web: small progressive enhancements on top of server-rendered pages and htmx.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  if (window.htmx) {
    // Swap 4xx answers too: they carry the error shown next to the field.
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "(401)", swap: false, error: true },
      { code: "4..", swap: true, error: false },
      { code: "...", swap: false, error: true },
    ];
  }
  updateSelectedCount();
});

function dialog() { return document.getElementById("send-dialog"); }

document.addEventListener("htmx:afterSwap", function (event) {
  const target = event.detail.target;
  if (target && target.id === "send-dialog-body") {
    const box = dialog();
    if (box && !box.open) { box.showModal(); }
    const first = target.querySelector("[autofocus], #f-subject");
    if (first) { first.focus(); }
  }
});

document.addEventListener("htmx:responseError", function (event) {
  const xhr = event.detail.xhr;
  if (xhr && xhr.status >= 500) {
    alert(document.documentElement.lang === "en" ? "The server failed; try again." : "Error del servidor / Erro do servidor");
  }
});

function closeDialog(reload) {
  const box = dialog();
  if (box && box.open) { box.close(); }
  const body = document.getElementById("send-dialog-body");
  if (body) { body.innerHTML = ""; }
  if (reload) { window.location.reload(); }
  const opener = document.getElementById("open-send");
  if (opener) { opener.focus(); }
}

document.addEventListener("close", function (event) {
  if (event.target === dialog()) {
    const body = document.getElementById("send-dialog-body");
    if (body) { body.innerHTML = ""; }
  }
}, true);

function addChip(name) {
  const input = document.querySelector('input[data-chip-for="' + name + '"]');
  const list = document.querySelector('.chips[data-name="' + name + '"]');
  if (!input || !list) { return; }
  input.value.split(/[;,\n]+/).map(function (s) { return s.trim(); }).filter(Boolean).forEach(function (value) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.setAttribute("role", "listitem");
    const hidden = document.createElement("input");
    hidden.type = "hidden"; hidden.name = name; hidden.value = value;
    const text = document.createElement("span");
    text.textContent = value;
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "chip-x"; remove.textContent = "×";
    remove.setAttribute("aria-label", "× " + value);
    chip.append(hidden, text, remove);
    list.append(chip);
  });
  input.value = "";
  input.removeAttribute("required");
}

function recipients() {
  return Array.from(document.querySelectorAll('#send-form input[type=hidden][name="to"], #send-form input[type=hidden][name="cc"]'))
    .map(function (i) { return i.value; });
}

function showConfirm(show) {
  const panel = document.getElementById("confirm-panel");
  const actions = document.getElementById("review-actions");
  if (!panel || !actions) { return; }
  ["to", "cc"].forEach(addChip);
  const summary = document.getElementById("confirm-summary");
  if (summary) { summary.textContent = summary.dataset.template.replace("{to}", recipients().join(", ") || "—"); }
  panel.hidden = !show;
  actions.hidden = show;
  const focus = show ? document.getElementById("confirm-send") : document.getElementById("review-send");
  if (focus) { focus.focus(); }
}

function updateSelectedCount() {
  const out = document.getElementById("selected-count");
  if (!out) { return; }
  const n = document.querySelectorAll("input.pick:checked").length;
  out.textContent = n ? n + " ✓" : "";
}

document.addEventListener("click", function (event) {
  const el = event.target.closest("button, input");
  if (!el) { return; }
  if (el.classList.contains("close-dialog")) { closeDialog(el.classList.contains("reload")); }
  else if (el.classList.contains("chip-x")) { el.closest(".chip").remove(); }
  else if (el.classList.contains("chip-add-btn")) { addChip(el.dataset.chipFor); }
  else if (el.id === "review-send") { showConfirm(true); }
  else if (el.id === "confirm-back") { showConfirm(false); }
  else if (el.classList.contains("clear-panel")) { document.getElementById("batch-panel").innerHTML = ""; }
});

document.addEventListener("keydown", function (event) {
  const el = event.target;
  if (event.key === "Enter" && el.dataset && el.dataset.chipFor) {
    event.preventDefault();
    addChip(el.dataset.chipFor);
  }
});

document.addEventListener("change", function (event) {
  const el = event.target;
  if (el.id === "select-all") {
    document.querySelectorAll("input.pick").forEach(function (box) { box.checked = el.checked; });
  }
  if (el.classList.contains("pick") || el.id === "select-all") { updateSelectedCount(); }
  if (el.classList.contains("autosubmit")) { el.form.submit(); }
});
