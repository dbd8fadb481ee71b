// The page of `bulk-updater ui`: a view of the server's state, and one POST per action.
// The server holds everything (the file, the check, the job), so a reload shows the same steps.
"use strict";

const $ = (id) => document.getElementById(id);
let state = { version: -1 };
const drawn = {}; // what each table was last drawn from: edits in progress are not redrawn away

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

async function post(path, body) {
  const options = { method: "POST", headers: { "Content-Type": "application/json" } };
  options.body = JSON.stringify(body || {});
  let data;
  try {
    const response = await fetch(path, options);
    data = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
  } catch (error) {
    $("error").textContent = error.message;
    return null;
  }
  $("error").textContent = "";
  render(data);
  return data;
}

// Only once per change of `part`: redrawing a table would lose the cell being edited.
function once(name, part, draw) {
  const key = JSON.stringify(part);
  if (drawn[name] === key) return;
  drawn[name] = key;
  const focused = document.activeElement && document.activeElement.id;
  draw();
  if (focused && $(focused)) $(focused).focus();
}

function table(header, rows) {
  const head = el("tr", {}, ...header.map((name) => el("th", { scope: "col", text: name })));
  const body = rows.map((cells) => el("tr", {}, ...cells.map((cell) => el("td", { text: cell }))));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function render(next) {
  if (next.version < state.version) return; // an older answer arriving late
  state = next;
  renderConnection(next.connection);
  renderFile(next);
  renderColumns(next);
  renderCheck(next);
  renderRun(next);
  renderDone(next.job, next.earlier);
}

function renderConnection(connection) {
  $("connect").hidden = connection !== null;
  $("where").textContent = connection === null ? "" : connection.sandbox
    ? `Sending to the local sandbox (${connection.base_url})`
    : `Sending to ${connection.base_url}`;
}

function renderFile(s) {
  $("upload-status").textContent = s.file_error || "";
  once("detected", s.file, () => {
    const box = $("detected");
    box.replaceChildren();
    const file = s.file;
    if (file === null) return;
    const facts = [`${file.name}: ${file.format}`];
    if (file.delimiter) facts.push(`delimiter ${file.delimiter}`);
    facts.push(file.header_row === null ? "header on the sheet's first row with a cell"
      : `header on row ${file.header_row}`);
    box.append(el("p", { text: facts.join(", ") }));
    if (file.encoding) box.append(readChoice("encoding", "Encoding", file.encoding,
      ["utf-8", "cp1252", "latin-1", "utf-16"], `(${file.encoding_how})`));
    if (file.sheets.length > 1) box.append(readChoice("sheet", "Sheet", file.sheet, file.sheets, ""));
    if (file.format !== "jsonl") box.append(headerRowChoice(file.header_row_chosen, file.header_row));
    box.append(el("p", { text: "The first rows:" }), table(file.header, file.rows));
  });
}

function readChoice(name, label, current, values, note) {
  const select = el("select", { id: `read-${name}` });
  for (const value of new Set([current, ...values])) {
    select.append(el("option", { value, text: value }));
  }
  select.value = current;
  select.addEventListener("change", () => post("/api/read", readOptions()));
  return el("p", {}, el("label", { for: `read-${name}`, text: `${label} ` }), select, ` ${note}`);
}

// Title rows above the header (a CRM report's name, its filters): the line that names the
// columns is chosen here; empty reads the header where the file's first line (or row) is.
function headerRowChoice(chosen, read) {
  const input = el("input", { id: "read-header_row", type: "number", min: "1", step: "1",
    placeholder: read === null ? "first with a cell" : String(read) });
  input.value = chosen ?? "";
  input.addEventListener("change", () => post("/api/read", readOptions()));
  return el("p", {}, el("label", { for: "read-header_row", text: "Header row" }), " ", input,
    " (the line that names the columns, below any title rows)");
}

function readOptions() {
  const options = {};
  for (const name of ["encoding", "sheet"]) if ($(`read-${name}`)) options[name] = $(`read-${name}`).value;
  const row = $("read-header_row");
  if (row) options.header_row = row.value === "" ? null : Number(row.value);
  return options;
}

const FIELDS = ["id", "email", "firstName", "lastName", "companyName", "jobTitle", "phone",
  "linkedinUrl", "city", "state", "country", "tags", "customFields"];

function renderColumns(s) {
  $("columns-step").hidden = s.columns.length === 0;
  $("command").textContent = s.command || "";
  renderTagsSeparator(s);
  once("columns", s.columns, () => {
    const body = $("columns").tBodies[0];
    body.replaceChildren();
    s.columns.forEach((column, at) => {
      const select = el("select", { id: `field-${at}`, "aria-label": `Field of ${column.header}` });
      const custom = `customFields.${column.header}`;
      for (const field of new Set([...FIELDS, custom, column.field])) {
        if (field !== "-") select.append(el("option", { value: field, text: field }));
      }
      select.append(el("option", { value: "-", text: "dropped (not sent)" }));
      select.value = column.field;
      select.addEventListener("change", () =>
        post("/api/columns", { columns: { [column.header]: select.value } }));
      const how = el("td", { class: `how-${column.how}`, text: column.how });
      body.append(el("tr", {}, el("th", { scope: "row", text: column.header }),
        el("td", {}, select), how));
    });
  });
}

// What separates the tags in a tags cell: asked once a column means `tags`.
function renderTagsSeparator(s) {
  $("tags-choice").hidden = !s.columns.some((column) => column.field === "tags");
  const select = $("tags-separator");
  const value = s.tags_separator === "\t" ? "tab" : s.tags_separator;
  if (value === null) return;
  if (![...select.options].some((option) => option.value === value)) {
    select.append(el("option", { value, text: value }));
  }
  select.value = value;
}

function renderCheck(s) {
  const check = s.check;
  $("check-step").hidden = s.file === null;
  $("check").disabled = s.file === null || (check !== null && check.running);
  let counts = "";
  if (check !== null) {
    counts = check.error || `${check.rows} rows read: ${check.valid} valid, ${check.invalid} invalid`;
    if (check.running) counts += " (still reading)";
    if (check.more_invalid) counts += `; the first ${check.invalid_rows.length} invalid rows are shown`;
  } else if (s.file !== null && s.needs_decision) {
    counts = "Look at the columns marked suggested or unknown, then Check rows.";
  }
  $("check-counts").textContent = counts;
  const rows = check === null || check.running ? [] : check.invalid_rows;
  once("invalid", rows, () => drawInvalid(rows));
  once("examples", check && check.examples, () => {
    $("examples").replaceChildren();
    if (check && check.examples.length) {
      $("examples").append(el("p", { text: "What would be sent, for example:" }),
        el("pre", { text: check.examples.join("\n") }));
    }
  });
}

function drawInvalid(rows) {
  const box = $("invalid");
  box.replaceChildren();
  if (rows.length === 0) return;
  const header = Object.keys(rows[0].cells);
  const head = el("tr", {}, el("th", { scope: "col", text: "Row" }),
    ...header.map((name) => el("th", { scope: "col", text: name })),
    el("th", { scope: "col", text: "Problem" }));
  const body = rows.map((row) => {
    const cells = header.map((name, at) => {
      const input = el("input", { id: `cell-${row.row}-${at}`, "aria-label": `Row ${row.row} ${name}` });
      input.value = row.cells[name];
      input.addEventListener("change", () =>
        post("/api/fix", { row: row.row, cells: { [name]: input.value } }));
      return el("td", {}, input);
    });
    return el("tr", { class: row.fixed ? "fixed" : "" }, el("th", { scope: "row", text: row.row }),
      ...cells, el("td", { text: row.message }));
  });
  box.append(el("p", { text: "Invalid rows: fix a cell here, it is checked again." }),
    el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
}

function renderRun(s) {
  const job = s.job;
  const check = s.check;
  $("run-step").hidden = check === null && job === null;
  const active = job !== null && ["starting", "running", "stopping"].includes(job.state);
  $("start").disabled = !(check && check.ready) || s.connection === null || active;
  $("stop").disabled = !(job && ["starting", "running"].includes(job.state));
  $("resume").disabled = !(job && ["stopped", "failed"].includes(job.state));
  $("job-name").textContent = job === null ? "" : `The job on ${job.name}`;
  if (job === null) {
    $("progress").textContent = s.connection === null ? "Say where to send first (step 1)." : "";
    return;
  }
  countdown(job.paused_s, job.paused_why);
  $("bar").max = job.total || 1;
  $("bar").value = job.done;
  $("progress").textContent = progressText(job);
}

// The job is held (a 429's pause, rate-limit headers with nothing left, another job's 429):
// counted down here, second by second, from what the server said; only its start is in the
// live region, so a screen reader is not told every second.
let pauseEnds = 0;
let pauseWhy = "";
let pauseTimer = null;

function countdown(seconds, why) {
  pauseEnds = seconds ? Date.now() + seconds * 1000 : 0;
  pauseWhy = why || "";
  tick();
  if (pauseEnds && pauseTimer === null) pauseTimer = setInterval(tick, 250);
}

function tick() {
  const left = Math.ceil((pauseEnds - Date.now()) / 1000);
  $("pause").textContent = left > 0 ? `Paused (${pauseWhy}): going on in ${left} s` : "";
  if (left <= 0 && pauseTimer !== null) {
    clearInterval(pauseTimer);
    pauseTimer = null;
  }
}

function progressText(job) {
  if (job.state === "failed") return `The job stopped: ${job.error}`;
  const parts = [`${job.done} of ${job.total ?? "?"} rows done`];
  if (job.state === "running" || job.state === "stopping") {
    parts.push(`${job.rate} rows/s`);
    if (job.limit) parts.push(job.limit);
    if (job.eta_s !== null) parts.push(`about ${job.eta_s} s left`);
    if (job.paused_s) parts.push(`paused (${job.paused_why})`);
  }
  const counts = Object.entries(job.counts).map(([status, n]) => `${status} ${n}`).join(", ");
  if (counts) parts.push(counts);
  const word = { starting: "Starting", running: "Running", stopping: "Stopping",
    stopped: "Stopped (Resume continues)", finished: "Finished" }[job.state];
  return `${word}: ${parts.join("; ")}`;
}

// The file goes from disk to the page's server as it is read (XMLHttpRequest, for its progress
// events): a 1 GB file is never held whole in the page.
function upload(file) {
  const status = $("upload-status");
  const request = new XMLHttpRequest();
  request.open("POST", `/api/upload?name=${encodeURIComponent(file.name)}`);
  request.upload.onprogress = (event) => {
    const share = event.lengthComputable ? ` ${Math.floor((100 * event.loaded) / event.total)}%` : "";
    status.textContent = `Sending ${file.name} to the page's server…${share}`;
  };
  request.upload.onload = () => { status.textContent = `Reading ${file.name}…`; };
  request.onload = () => {
    let data;
    try { data = JSON.parse(request.responseText); } catch { data = { error: `the server answered ${request.status}` }; }
    if (request.status !== 200) {
      status.textContent = "";
      $("error").textContent = data.error || `the server answered ${request.status}`;
      return;
    }
    $("error").textContent = "";
    render(data);
  };
  request.onerror = () => { $("error").textContent = `${file.name} could not be sent`; };
  status.textContent = `Sending ${file.name} to the page's server…`;
  request.send(file);
}

function wire() {
  $("choose").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", () => {
    if ($("file").files.length) upload($("file").files[0]);
    $("file").value = ""; // so that choosing the same file again (changed since) reads it again
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    post("/api/key", { key: $("key").value, workspace_id: $("workspace").value })
      .then((done) => { if (done) $("key").value = ""; });
  });
  $("sandbox").addEventListener("click", () => post("/api/sandbox"));
  $("tags-separator").addEventListener("change", () =>
    post("/api/tags-separator", { separator: $("tags-separator").value }));
  $("check").addEventListener("click", () => post("/api/check"));
  $("start").addEventListener("click", () => post("/api/start"));
  $("stop").addEventListener("click", () => post("/api/stop"));
  $("resume").addEventListener("click", () => post("/api/resume"));
  $("send-fixed").addEventListener("click", () => {
    const rows = Object.fromEntries(rejectEdits);
    post("/api/send-fixed", { rows });
  });
  const events = new EventSource("/api/events");
  events.onmessage = (event) => render(JSON.parse(event.data));
}

wire();
// The page is wired: a test that opened it may act now.
document.body.dataset.ready = "1";
