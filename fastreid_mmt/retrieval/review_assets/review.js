// A blind review: for each query, mark the pooled candidates that show the same person.
// No framework and no network: the pool is embedded in the page, the images lie next to it.
(function () {
  "use strict";

  var STORAGE_PREFIX = "fastreid-mmt-review:";
  var FORMAT = "fastreid-mmt-review-judgments";
  var VERSION = 1;
  var TENTH = 9;  // the key "0" moves to the 10th candidate
  var PERCENT = 100;

  var data = JSON.parse(document.getElementById("review-data").textContent);
  var storageKey = STORAGE_PREFIX + data.pool_id;
  var total = data.queries.length;
  var byId = function (id) { return document.getElementById(id); };
  var view = {
    candidates: byId("candidates"), queryImage: byId("query-image"), queryNumber: byId("query-number"),
    queryState: byId("query-state"), progress: byId("progress"), progressFill: byId("progress-fill"),
    progressText: byId("progress-text"), status: byId("status"), download: byId("download")
  };
  var state = restore();

  function emptyState() {
    return {current: 0, cursor: 0, done: {}, same: {}};
  }

  function restore() {
    var saved = null;
    try {
      saved = JSON.parse(window.localStorage.getItem(storageKey));
    } catch (err) {
      saved = null;
    }
    if (!saved || typeof saved.done !== "object" || typeof saved.same !== "object") {
      return emptyState();
    }
    saved.current = Math.min(Math.max(Number(saved.current) || 0, 0), total - 1);
    saved.cursor = Math.max(Number(saved.cursor) || 0, 0);
    return saved;
  }

  function persist() {
    try {
      window.localStorage.setItem(storageKey, JSON.stringify(state));
    } catch (err) {
      setStatus("This browser cannot keep the judgments across a reload: save them (S) to keep them.", "error");
    }
  }

  function setStatus(text, kind) {
    view.status.textContent = text;
    view.status.className = kind || "";
  }

  function judgedCount() {
    return Object.keys(state.done).filter(function (q) { return state.done[q]; }).length;
  }

  function marks(q) {
    return state.same[q] || [];
  }

  function isMarked(q, g) {
    return marks(q).indexOf(g) >= 0;
  }

  function candidateElements() {
    return view.candidates.children;
  }

  function updateProgress() {
    var judged = judgedCount();
    view.progressFill.style.width = (PERCENT * judged / total) + "%";
    view.progress.setAttribute("aria-valuemax", String(total));
    view.progress.setAttribute("aria-valuenow", String(judged));
    view.progressText.textContent = judged + " of " + total + " judged";
    view.queryState.textContent = state.done[state.current] ? "judged" : "not judged yet";
  }

  function updateCandidates() {
    var q = state.current;
    var items = candidateElements();
    for (var i = 0; i < items.length; i++) {
      var marked = isMarked(q, Number(items[i].dataset.g));
      items[i].classList.toggle("same", marked);
      items[i].classList.toggle("cursor", i === state.cursor);
      items[i].setAttribute("aria-checked", marked ? "true" : "false");
    }
    updateProgress();
  }

  function showMissing(event) {
    setStatus("Image not found: " + event.target.getAttribute("src") +
              " (keep the images folder next to review.html).", "error");
  }

  function candidateElement(candidate, index) {
    var item = document.createElement("div");
    item.className = "candidate";
    item.setAttribute("role", "checkbox");
    item.dataset.g = String(candidate.g);
    item.dataset.index = String(index);
    var image = document.createElement("img");
    image.src = candidate.image;
    image.alt = "candidate " + (index + 1);
    image.addEventListener("error", showMissing);
    var number = document.createElement("span");
    number.className = "number";
    number.textContent = String(index + 1);
    var mark = document.createElement("span");
    mark.className = "mark";
    mark.textContent = "\u2713 same";
    item.append(image, number, mark);
    item.addEventListener("click", function () {
      state.cursor = index;
      toggle();
    });
    return item;
  }

  function render() {
    var query = data.queries[state.current];
    state.cursor = Math.min(state.cursor, Math.max(query.candidates.length - 1, 0));
    view.queryImage.src = query.image;
    view.queryNumber.textContent = (state.current + 1) + " of " + total;
    var fragment = document.createDocumentFragment();
    query.candidates.forEach(function (candidate, index) {
      fragment.appendChild(candidateElement(candidate, index));
    });
    view.candidates.replaceChildren(fragment);
    updateCandidates();
  }

  function toggle() {
    var q = state.current;
    var items = candidateElements();
    if (!items.length) {
      return;
    }
    var g = Number(items[state.cursor].dataset.g);
    var current = marks(q).slice();
    var at = current.indexOf(g);
    if (at >= 0) {
      current.splice(at, 1);
    } else {
      current.push(g);
    }
    state.same[q] = current;
    persist();
    updateCandidates();
  }

  function moveTo(index) {
    var count = candidateElements().length;
    if (count) {
      state.cursor = Math.min(Math.max(index, 0), count - 1);
      persist();
      updateCandidates();
    }
  }

  function columns() {
    var items = candidateElements();
    var perRow = 0;
    while (perRow < items.length && items[perRow].offsetTop === items[0].offsetTop) {
      perRow++;
    }
    return Math.max(perRow, 1);
  }

  function next() {
    state.done[state.current] = true;
    if (state.current < total - 1) {
      state.current++;
      state.cursor = 0;
      setStatus("");
    }
    persist();
    render();
    if (judgedCount() === total) {
      setStatus("All " + total + " queries judged: save the judgments (S) and score them with " +
                "tools/review.py score.", "done");
    }
  }

  function previous() {
    if (state.current > 0) {
      state.current--;
      state.cursor = 0;
      persist();
      render();
    }
  }

  function judgments() {
    var queries = {};
    Object.keys(state.done).filter(function (q) { return state.done[q]; }).forEach(function (q) {
      queries[q] = {same: marks(q).slice().sort(function (a, b) { return a - b; })};
    });
    return {format: FORMAT, version: VERSION, pool_id: data.pool_id, models: data.models,
            judged: Object.keys(queries).length, total: total, saved_at: new Date().toISOString(),
            queries: queries};
  }

  function save() {
    var content = judgments();
    var blob = new Blob([JSON.stringify(content, null, 1)], {type: "application/json"});
    if (view.download.href) {
      URL.revokeObjectURL(view.download.href);
    }
    view.download.href = URL.createObjectURL(blob);
    view.download.download = "judgments-" + data.pool_id + ".json";
    view.download.click();
    setStatus("Saved " + content.judged + " judged queries as " + view.download.download +
              " (your downloads folder).", "done");
  }

  function onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var key = event.key;
    if (key === "ArrowRight") {
      moveTo(state.cursor + 1);
    } else if (key === "ArrowLeft") {
      moveTo(state.cursor - 1);
    } else if (key === "ArrowDown") {
      moveTo(state.cursor + columns());
    } else if (key === "ArrowUp") {
      moveTo(state.cursor - columns());
    } else if (/^[0-9]$/.test(key)) {
      moveTo(key === "0" ? TENTH : Number(key) - 1);
    } else if (key === " " || key === "x" || key === "X") {
      toggle();
    } else if (key === "Enter" || key === "n" || key === "N") {
      next();
    } else if (key === "p" || key === "P" || key === "Backspace") {
      previous();
    } else if (key === "s" || key === "S") {
      save();
    } else {
      return;
    }
    event.preventDefault();
  }

  function onButton(action) {
    return function (event) {
      event.currentTarget.blur();  // Enter / Space stay page keys, not a second click
      action();
    };
  }

  byId("next").addEventListener("click", onButton(next));
  byId("previous").addEventListener("click", onButton(previous));
  byId("save").addEventListener("click", onButton(save));
  document.addEventListener("keydown", onKey);
  view.queryImage.addEventListener("error", showMissing);
  render();
  if (judgedCount()) {
    setStatus("Resumed: " + judgedCount() + " of " + total + " queries judged in this browser.");
  }
}());
