// Keyboard shortcuts for the review queue; every page works without it.
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
  if (!document.querySelector("input[name=review]")) return;
  if (e.key === "a") { document.getElementById("accept")?.click(); }
  else if (e.key === "n") { const n = document.getElementById("next"); if (n) location.href = n.href; }
  else if (e.key === "e") { document.querySelector(".fields input")?.focus(); e.preventDefault(); }
});

// Drag and drop onto the upload form's drop zone.
const drop = document.getElementById("drop");
if (drop) {
  const input = document.getElementById("files");
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; document.getElementById("upload-form").submit(); }
  });
}
