// The sequence editor: the page holds the draft, the server applies every rule.
// Segment counts come from /admin/editor/count (templates/sms_segments.py, the one counter) and
// problems from /admin/editor/check (the launch's content rules); nothing is re-implemented here.
"use strict";

(() => {
  const root = document.getElementById("editor");
  if (!root) {
    return;
  }
  const draft = JSON.parse(root.dataset.draft);
  const languages = JSON.parse(root.dataset.languages);
  const canEdit = root.dataset.canEdit === "yes";
  const branches = root.dataset.branches === "yes";
  const csrf = document.getElementById("csrf").value;
  const stepsList = document.getElementById("steps");
  let lastField = null;

  const debounce = (fn, wait) => {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), wait);
    };
  };

  const post = async (url, fields) => {
    const body = new URLSearchParams({ csrf_token: csrf, ...fields });
    const response = await fetch(url, { method: "POST", body, credentials: "same-origin" });
    return { status: response.status, data: await response.json() };
  };

  const draftJson = () => JSON.stringify(draft);

  // -- the sequence's own fields ----------------------------------------------------------
  for (const input of root.querySelectorAll("[data-seq]")) {
    input.value = draft[input.dataset.seq] || "";
    input.readOnly = input.readOnly || !canEdit;
    input.addEventListener("input", () => {
      draft[input.dataset.seq] = input.value;
      changed();
    });
  }

  // -- steps --------------------------------------------------------------------------------
  const blankMessages = (channel) => {
    const messages = {};
    for (const code of Object.keys(languages)) {
      messages[code] = channel === "sms" ? { text: "" } : { subject: "", preheader: "", body: "" };
    }
    return messages;
  };

  const newStep = (channel) => ({
    name: `step-${draft.steps.length + 1}`,
    channel,
    delay: "2d",
    days: "mon-sun",
    start: "10:00",
    end: "19:00",
    max_segments: 2,
    then: null,
    messages: blankMessages(channel),
  });

  const showCount = async (output, text, step) => {
    const { data } = await post("/admin/editor/count", { text, max_segments: step.max_segments || 2 });
    output.classList.toggle("error-text", Boolean(data.error || data.over));
    if (data.error) {
      output.textContent = data.error;
      return;
    }
    const plural = data.segments === 1 ? "segment" : "segments";
    let words = `${data.characters} characters as sent to ${data.sample} · ${data.encoding} · ` +
      `${data.segments} ${plural} (limit ${data.limit})`;
    if (data.over) {
      words += ` · over the limit: each segment costs`;
    }
    if (data.forcing.length) {
      words += ` · these characters force the costlier UCS-2 encoding: ${data.forcing.join(" ")}`;
    }
    output.textContent = words;
  };

  const messageBox = (step, code, index) => {
    const template = document.getElementById(step.channel === "sms" ? "sms-template" : "email-template");
    const box = template.content.firstElementChild.cloneNode(true);
    box.querySelector("legend").textContent = languages[code];
    box.dataset.language = code;
    step.messages[code] = step.messages[code] || blankMessages(step.channel)[code];
    const message = step.messages[code];
    const counter = box.querySelector(".sms-counter");
    const recount = counter ? debounce(() => showCount(counter, message.text || "", step), 250) : null;
    for (const field of box.querySelectorAll("[data-msg]")) {
      const key = field.dataset.msg;
      field.value = message[key] || "";
      field.id = `step-${index}-${code}-${key}`;
      field.readOnly = !canEdit;
      field.addEventListener("focus", () => { lastField = field; });
      field.addEventListener("input", () => {
        message[key] = field.value;
        if (recount) {
          recount();
        }
        changed();
      });
    }
    if (recount) {
      recount();
    }
    return box;
  };

  const renderSteps = () => {
    stepsList.replaceChildren();
    draft.steps.forEach((step, index) => {
      const card = document.getElementById("step-template").content.firstElementChild.cloneNode(true);
      card.dataset.index = index;
      card.querySelector(".step-title").textContent =
        `Step ${index + 1}: ${step.channel === "sms" ? "text message" : "email"}`;
      for (const input of card.querySelectorAll("[data-step]")) {
        const key = input.dataset.step;
        input.value = step[key] ?? "";
        input.disabled = !canEdit;
        input.addEventListener(key === "channel" ? "change" : "input", () => {
          step[key] = key === "max_segments" ? Number(input.value) : input.value;
          if (key === "channel") {
            step.messages = blankMessages(step.channel);
            renderSteps();
          }
          if (key === "max_segments") {
            renderSteps();
          }
          changed();
        });
      }
      card.querySelector(".for-sms").hidden = step.channel !== "sms";
      const branch = card.querySelector(".branch");
      branch.hidden = !branches;
      branch.open = Boolean(step.then);
      for (const input of card.querySelectorAll("[data-then]")) {
        input.value = (step.then && step.then[input.dataset.then]) || "";
        input.disabled = !canEdit;
        input.addEventListener("input", () => {
          step.then = step.then || {};
          step.then[input.dataset.then] = input.value;
          if (!Object.values(step.then).some(Boolean)) {
            step.then = null;
          }
          changed();
        });
      }
      const messages = card.querySelector(".messages");
      for (const code of Object.keys(languages)) {
        messages.append(messageBox(step, code, index));
      }
      const move = (by) => {
        const [moved] = draft.steps.splice(index, 1);
        draft.steps.splice(index + by, 0, moved);
        renderSteps();
        changed();
      };
      const up = card.querySelector(".step-up");
      const down = card.querySelector(".step-down");
      const remove = card.querySelector(".step-remove");
      up.disabled = !canEdit || index === 0;
      down.disabled = !canEdit || index === draft.steps.length - 1;
      remove.disabled = !canEdit || draft.steps.length === 1;
      up.addEventListener("click", () => move(-1));
      down.addEventListener("click", () => move(1));
      remove.addEventListener("click", () => {
        if (window.confirm(`Remove step ${index + 1}?`)) {
          draft.steps.splice(index, 1);
          renderSteps();
          changed();
        }
      });
      stepsList.append(card);
    });
    fillStepChoice();
  };

  for (const [id, channel] of [["add-email", "email"], ["add-text", "sms"]]) {
    const button = document.getElementById(id);
    button.disabled = !canEdit;
    button.addEventListener("click", () => {
      draft.steps.push(newStep(channel));
      renderSteps();
      changed();
    });
  }

  // -- placeholders: inserted where the cursor was --------------------------------------------
  for (const button of document.querySelectorAll("[data-placeholder]")) {
    button.addEventListener("click", () => {
      if (!lastField || lastField.readOnly) {
        return;
      }
      const words = `{{ ${button.dataset.placeholder} }}`;
      const at = lastField.selectionStart ?? lastField.value.length;
      const end = lastField.selectionEnd ?? at;
      lastField.setRangeText(words, at, end, "end");
      lastField.dispatchEvent(new Event("input"));
      lastField.focus();
    });
  }

  // -- problems as they type ----------------------------------------------------------------
  const listInto = (list, findings) => {
    list.replaceChildren(...findings.map((finding) => {
      const item = document.createElement("li");
      item.textContent = finding.message;
      return item;
    }));
  };

  const check = debounce(async () => {
    const status = document.getElementById("check-status");
    const { data } = await post("/admin/editor/check", { draft: draftJson() });
    status.textContent = data.ok ? "No problems: ready for review." :
      `${data.problems.length} problem${data.problems.length === 1 ? "" : "s"} to fix.`;
    status.className = data.ok ? "notice" : "hint";
    listInto(document.getElementById("problems"), data.problems);
    listInto(document.getElementById("warnings"), data.warnings);
    for (const card of stepsList.children) {
      const number = Number(card.dataset.index) + 1;
      listInto(card.querySelector(".step-problems"), data.problems.filter((p) => p.step === number));
    }
  }, 400);

  function changed() {
    check();
  }

  // -- preview and test ---------------------------------------------------------------------
  const stepChoice = document.getElementById("preview-step");
  function fillStepChoice() {
    const chosen = stepChoice.value;
    stepChoice.replaceChildren(...draft.steps.map((step, index) => {
      const option = document.createElement("option");
      option.value = String(index);
      option.textContent = `${index + 1}. ${step.name} (${step.channel === "sms" ? "text" : "email"})`;
      return option;
    }));
    if (chosen && Number(chosen) < draft.steps.length) {
      stepChoice.value = chosen;
    }
  }
  stepChoice.addEventListener("change", fillStepChoice);

  const previewFields = () => ({
    draft: draftJson(),
    step: stepChoice.value || "0",
    language: document.getElementById("preview-language").value,
    contact: document.getElementById("preview-contact").value,
  });

  const frame = document.getElementById("preview-frame");
  const textBox = document.getElementById("preview-text");
  const about = document.getElementById("preview-about");
  for (const button of document.querySelectorAll(".preview-view")) {
    button.addEventListener("click", async () => {
      const fields = previewFields();
      const { data } = await post("/admin/editor/preview", fields);
      const subject = data.subject ? ` · Subject: ${data.subject}` : "";
      about.textContent = data.error ? `This step cannot be shown: ${data.error}` :
        `Shown for ${data.contact}${subject}. Links in previews go nowhere.`;
      const view = button.dataset.view;
      textBox.hidden = view !== "text";
      frame.hidden = view === "text";
      if (view === "text") {
        textBox.textContent = data.text || "";
        return;
      }
      frame.className = `email-frame preview-${view}`;
      const form = document.getElementById("preview-form");
      for (const [name, value] of Object.entries(fields)) {
        form.elements[name].value = value;
      }
      form.submit();
    });
  }

  const sendTest = document.getElementById("send-test");
  if (sendTest) {
    sendTest.addEventListener("click", async () => {
      const status = document.getElementById("test-status");
      status.textContent = "Sending…";
      const { data } = await post("/admin/editor/test", previewFields());
      status.textContent = data.sent ? data.message : data.error;
      status.className = data.sent ? "notice" : "error";
    });
  }

  const save = document.getElementById("save");
  if (save) {
    save.addEventListener("click", async () => {
      const status = document.getElementById("save-status");
      status.textContent = "Saving…";
      const creating = root.dataset.existing !== "yes";
      const { data } = await post("/admin/editor/save", { draft: draftJson(), creating });
      status.textContent = data.saved ? data.message : data.error;
      status.className = data.saved ? "notice" : "error";
      if (data.saved) {
        root.dataset.existing = "yes"; // later saves are new versions of this one
        document.getElementById("seq-name").readOnly = true;
        document.getElementById("review-link").href = `/admin/campaigns/${encodeURIComponent(draft.name)}`;
      }
    });
  }

  renderSteps();
  check();
})();
