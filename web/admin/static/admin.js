// Light progressive enhancement for the staff pages; every page works without it.
"use strict";

// Ask before buttons that change a campaign or a contact (data-confirm="question").
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Import progress: poll while the job runs, then reload once to show counts and the rejects link.
window.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("import-job");
  if (!box || box.dataset.status !== "running") {
    return;
  }
  const bar = document.getElementById("bar");
  const processed = document.getElementById("import-processed");
  const status = document.getElementById("import-status");
  const poll = async () => {
    try {
      const response = await fetch(box.dataset.progressUrl, { credentials: "same-origin" });
      if (!response.ok) {
        return;
      }
      const data = await response.json();
      bar.value = data.processed;
      processed.textContent = data.processed;
      status.textContent = data.status;
      if (data.status !== "running") {
        window.location.reload();
        return;
      }
    } catch (error) {
      // A network blip: try again on the next tick.
    }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 500);
});

// Uploads over the server's request limit would be refused after the whole upload: say so now.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || !input.dataset.maxBytes || !input.files) {
    return;
  }
  const limit = Number(input.dataset.maxBytes);
  const file = input.files[0];
  input.setCustomValidity(
    file && file.size > limit ? "This file is larger than the upload limit shown below." : "",
  );
  input.reportValidity();
});

// Copy a snippet (data-copy="textarea id"); without the clipboard API the text stays selectable.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) {
    return;
  }
  const box = document.getElementById(button.dataset.copy);
  const said = document.querySelector(`[data-copied="${button.dataset.copy}"]`);
  box.select();
  try {
    await navigator.clipboard.writeText(box.value);
    if (said) {
      said.textContent = "Copied.";
    }
  } catch {
    if (said) {
      said.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
    }
  }
});
