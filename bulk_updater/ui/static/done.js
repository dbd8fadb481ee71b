// The page's Done step: the latest job's summary, downloads and rejects to fix and send again,
// and the jobs before it. Loaded before app.js, whose helpers (`$`, `el`, `once`) it calls.
"use strict";

const rejectEdits = new Map(); // row number -> {header: value}, for "Send fixed rows"

function renderDone(job, earlier) {
  const summary = job && job.summary;
  $("done-step").hidden = !summary && earlier.length === 0;
  $("latest").hidden = !summary;
  once("earlier", earlier, () => drawEarlier(earlier));
  if (!summary) return;
  const counts = Object.entries(summary.counts).map(([status, n]) => `${n} ${status}`).join(", ");
  $("summary").textContent = `${summary.rows} rows: ${counts}` +
    (summary.stopped ? `. Stopped: ${summary.stopped}` : "");
  $("report").hidden = !job.has_report;
  $("rejects-link").hidden = !job.has_rejects;
  once("rejects", [summary, job.has_rejects], () => loadRejects(job.has_rejects));
  $("send-fixed").disabled = rejectEdits.size === 0;
}

// The jobs before the latest one (a new Start, the fixed rows sent): their files stay here.
function drawEarlier(earlier) {
  const box = $("earlier");
  box.replaceChildren();
  if (earlier.length === 0) return;
  const items = earlier.map((job) => {
    const counts = Object.entries(job.counts).map(([status, n]) => `${n} ${status}`).join(", ");
    const item = el("li", { text: `Job ${job.number}, on ${job.name} (${job.state}${counts ? `: ${counts}` : ""}) ` });
    for (const [what, has] of [["report", job.has_report], ["rejects", job.has_rejects]]) {
      if (has) {
        item.append(" ", el("a", { href: `/api/download/earlier/${job.number}/${what}`, download: "",
          text: `Download ${what} of job ${job.number}` }));
      }
    }
    return item;
  });
  box.append(el("h3", { text: "Earlier jobs" }), el("ul", {}, ...items));
}

async function loadRejects(show) {
  rejectEdits.clear();
  $("rejects").replaceChildren();
  $("send-fixed").hidden = !show;
  if (!show) return;
  const response = await fetch("/api/rejects");
  const data = await response.json();
  const header = data.header;
  const head = el("tr", {}, el("th", { scope: "col", text: "Row" }),
    ...header.map((name) => el("th", { scope: "col", text: name })));
  const body = data.rows.map((row) => el("tr", {}, el("th", { scope: "row", text: row.row }),
    ...header.map((name, at) => {
      if (name === "_status" || name === "_message") return el("td", { text: row.cells[at] ?? "" });
      const input = el("input", { id: `reject-${row.row}-${at}`, "aria-label": `Reject ${row.row} ${name}` });
      input.value = row.cells[at] ?? "";
      input.addEventListener("change", () => {
        const edits = rejectEdits.get(row.row) || {};
        edits[name] = input.value;
        rejectEdits.set(row.row, edits);
        $("send-fixed").disabled = false;
      });
      return el("td", {}, input);
    })));
  $("rejects").append(el("p", { text: "Rows not updated: fix them here, then Send fixed rows." }),
    el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
}
