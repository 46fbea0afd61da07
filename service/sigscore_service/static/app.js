// The sigscore page: upload a matrix, call the /v1 API, show the results.
// Plain JavaScript, no dependencies; relative URLs, so the page also works under a path prefix.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const KEY = "sigscore.apiKey"; // sessionStorage only: gone when the tab closes
  const MAX_TABLE_ROWS = 1000, MAX_CHART_ROWS = 200;
  const JOB_ID = /^[A-Za-z0-9]{32}$/;

  let last = null; // {result, text, form, jobId}
  let polling = 0; // generation counter: a newer job stops an older poll loop

  // ------------------------------------------------------------------ API
  class ApiError extends Error {}

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    const key = sessionStorage.getItem(KEY);
    if (key) h["X-API-Key"] = key;
    return h;
  }

  function sentence(s) {
    // a capital for a plain first word ("the server is busy"), never for a file name
    // ("broken.csv: ..."), whose case matters; and a full stop
    s = String(s || "").trim();
    if (!s) return "";
    if (/^[a-z]+(\s|$)/.test(s)) s = s.charAt(0).toUpperCase() + s.slice(1);
    return /[.!?]$/.test(s) ? s : s + ".";
  }

  function retryText(value) {
    if (!value) return "";
    let secs = Number(value);
    if (!Number.isFinite(secs)) secs = Math.max(0, (Date.parse(value) - Date.now()) / 1000);
    if (!Number.isFinite(secs)) return "";
    const at = new Date(Date.now() + secs * 1000).toLocaleTimeString();
    return ` Try again in ${Math.ceil(secs)} seconds (after ${at}).`;
  }

  // A readable sentence from an error response: the problem document's detail, never raw JSON.
  async function problemText(resp) {
    let detail = "";
    const type = resp.headers.get("Content-Type") || "";
    if (type.includes("json")) {
      try {
        const doc = await resp.json();
        detail = typeof doc.detail === "string" ? doc.detail : "";
      } catch (e) { /* not JSON after all: fall back to the status */ }
    }
    let msg = sentence(detail) ||
      `The server answered ${resp.status}${resp.statusText ? " " + resp.statusText : ""}.`;
    if (resp.status === 429 || resp.status === 503) msg += retryText(resp.headers.get("Retry-After"));
    if (resp.status === 401 || resp.status === 403) {
      msg += " Enter a valid API key under “API key” and try again.";
      $("key-box").open = true;
    }
    return msg;
  }

  async function api(path, init) {
    let resp;
    try {
      resp = await fetch(path, Object.assign({ headers: headers() }, init || {}));
    } catch (e) {
      throw new ApiError("Could not reach the server (network error). Check the connection and try again.");
    }
    if (!resp.ok) throw new ApiError(await problemText(resp));
    return resp;
  }

  // ------------------------------------------------------------------ messages
  function showError(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = false;
  }

  function clearError() {
    $("message").hidden = true;
    $("message").textContent = "";
  }

  function setBusy(text) {
    $("busy").textContent = text || "";
    $("submit").disabled = Boolean(text);
  }

  // ------------------------------------------------------------------ form
  function chosen(input) {
    return input.files && input.files.length ? input.files[0] : null;
  }

  function buildForm() {
    const file = chosen($("file"));
    if (!file) throw new ApiError("Choose an expression matrix file first (or drop it on the box).");
    const fd = new FormData();
    fd.append("file", file, file.name);
    if ($("sig-file").checked) {
      const sig = chosen($("signatures"));
      if (!sig) throw new ApiError("Choose a signature file, or pick the shipped signatures.");
      fd.append("signatures", sig, sig.name);
    } else {
      fd.append("tier", $("tier").value);
    }
    for (const id of ["reference", "definition"]) {
      const f = chosen($(id));
      if (f) fd.append(id, f, f.name);
    }
    fd.append("index", $("index").checked ? "true" : "false");
    for (const id of ["method", "genes_axis", "layer", "min_genes"]) {
      const v = $(id).value.trim();
      if (v) fd.append(id, v);
    }
    fd.append("mode", "auto");
    return fd;
  }

  async function submit(ev) {
    ev.preventDefault();
    clearError();
    let fd;
    try {
      fd = buildForm();
    } catch (e) {
      showError(e.message);
      return;
    }
    polling++;
    setBusy("Uploading and scoring…");
    try {
      const resp = await api("v1/score?format=json", { method: "POST", body: fd, headers: headers() });
      if (resp.status === 202) {
        const info = await resp.json();
        setJobInUrl(info.id);
        await followJob(info, fd);
      } else {
        const text = await resp.text();
        show(JSON.parse(text), text, fd, null);
      }
    } catch (e) {
      showError(e instanceof ApiError ? e.message : "Something went wrong in this page: " + e);
    } finally {
      setBusy("");
    }
  }

  // ------------------------------------------------------------------ jobs
  function setJobInUrl(id) {
    const url = new URL(window.location.href);
    if (id) url.searchParams.set("job", id); else url.searchParams.delete("job");
    history.replaceState(null, "", url);
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function showJob(info) {
    $("job").hidden = false;
    $("job-id").textContent = info.id;
    const st = $("job-state");
    st.textContent = info.state;
    st.dataset.state = info.state;
    const pct = Math.round((info.progress || 0) * 100);
    $("job-stage").textContent = info.state === "running"
      ? `(${info.stage || "working"}, ${pct}%)` : "";
    $("job-progress").value = info.progress || 0;
    const line = info.state + (info.state === "running" ? ` – ${info.stage || "working"} ${pct}%` : "");
    const log = $("job-log");
    if (!log.lastElementChild || log.lastElementChild.dataset.line !== line) {
      const li = document.createElement("li");
      li.dataset.line = line;
      li.dataset.state = info.state;
      li.textContent = `${new Date().toLocaleTimeString()}: ${line}`;
      log.appendChild(li);
    }
  }

  // Poll GET /v1/jobs/{id} until done or failed; `onUpdate` sees every state.
  async function waitJob(id, onUpdate) {
    const gen = polling;
    let delay = 400;
    for (;;) {
      const info = await (await api(`v1/jobs/${id}`)).json();
      if (onUpdate) onUpdate(info);
      if (info.state === "done" || info.state === "failed") return info;
      if (gen !== polling) return null; // the user started something else
      await sleep(delay);
      delay = Math.min(3000, delay * 1.5);
    }
  }

  async function followJob(info, fd) {
    $("job-log").replaceChildren();
    showJob(info);
    setBusy("Scoring as a job…");
    const end = await waitJob(info.id, showJob);
    if (!end) return;
    if (end.state === "failed") {
      const d = end.error && end.error.detail;
      showError(sentence(d) || "The job failed without a reason.");
      return;
    }
    const resp = await api(`v1/jobs/${info.id}/result?format=json`);
    const text = await resp.text();
    show(JSON.parse(text), text, fd, info.id);
  }

  async function resume(id) {
    polling++;
    try {
      setBusy("Checking the job…");
      await followJob(await (await api(`v1/jobs/${id}`)).json(), null);
    } catch (e) {
      showError(e.message);
    } finally {
      setBusy("");
    }
  }

  // ------------------------------------------------------------------ results
  const num = (v, d) => (v === null || v === undefined ? "" : Number(v).toFixed(d));

  function modulesOf(result, prefix) {
    return result.columns.filter((c) => c.startsWith(prefix)).map((c) => c.slice(prefix.length));
  }

  function tableColumns(result) {
    if (result.kind === "index") {
      const cols = [{ key: "sample", label: "Sample" }, { key: "index", label: "Index", digits: 4 }];
      if (result.columns.includes("pct_index"))
        cols.push({ key: "pct_index", label: "Percentile", digits: 1 });
      cols.push({ key: "flags", label: "Flags" });
      return cols;
    }
    return [{ key: "sample", label: "Sample" }].concat(
      result.columns.map((c) => ({ key: c, label: c, digits: 4 })));
  }

  let sortKey = null, sortDir = 1;

  function renderTable() {
    const result = last.result, cols = tableColumns(result);
    const thead = $("scores").tHead, tbody = $("scores").tBodies[0];
    thead.replaceChildren();
    const tr = thead.insertRow();
    cols.forEach((c) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.dataset.key = c.key;
      th.setAttribute("aria-sort", sortKey === c.key ? (sortDir > 0 ? "ascending" : "descending") : "none");
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = c.label;
      b.setAttribute("aria-label", `${c.label}: sort`);
      b.addEventListener("click", () => {
        sortDir = sortKey === c.key ? -sortDir : (c.digits ? -1 : 1);
        sortKey = c.key;
        renderTable();
        thead.querySelector(`th[data-key="${CSS.escape(c.key)}"] button`).focus();
      });
      th.appendChild(b);
      tr.appendChild(th);
    });
    const q = $("filter").value.trim().toLowerCase();
    let rows = result.rows.filter((r) => !q ||
      String(r.sample).toLowerCase().includes(q) || String(r.flags || "").toLowerCase().includes(q));
    if (sortKey) {
      rows = rows.slice().sort((a, b) => {
        const x = a[sortKey], y = b[sortKey];
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (typeof x === "number" ? x - y : String(x).localeCompare(String(y))) * sortDir;
      });
    }
    tbody.replaceChildren();
    rows.slice(0, MAX_TABLE_ROWS).forEach((r) => {
      const row = tbody.insertRow();
      row.dataset.sample = r.sample;
      cols.forEach((c) => {
        const cell = c.key === "sample" ? document.createElement("th") : row.insertCell();
        if (c.key === "sample") { cell.scope = "row"; row.appendChild(cell); }
        cell.dataset.key = c.key;
        const v = r[c.key];
        if (c.digits !== undefined) {
          cell.className = "num";
          cell.textContent = num(v, c.digits);
          if (v !== null && v !== undefined) cell.dataset.value = String(v);
        } else {
          cell.textContent = v === null || v === undefined ? "" : String(v);
          if (c.key === "flags" && v) cell.classList.add("flag");
        }
      });
    });
    const n = result.rows.length;
    $("shown").textContent = rows.length > MAX_TABLE_ROWS
      ? `Showing ${MAX_TABLE_ROWS} of ${rows.length} matching samples (download for all).`
      : `${rows.length} of ${n} samples shown.`;
  }

  function renderCharts(result) {
    const rows = result.rows.slice(0, MAX_CHART_ROWS);
    const more = result.rows.length > MAX_CHART_ROWS
      ? ` (first ${MAX_CHART_ROWS} of ${result.rows.length} samples)` : "";
    const contribMods = modulesOf(result, "contrib_");
    const box = $("contrib");
    if (result.kind === "index" && contribMods.length) {
      window.SigCharts.contributions(box, rows.map((r) => ({
        sample: r.sample, index: r.index,
        contrib: Object.fromEntries(contribMods.map((m) => [m, r["contrib_" + m]])),
      })), contribMods);
      box.previousElementSibling.textContent =
        "Each bar stacks the modules' contributions (positive to the right of zero, negative " +
        "to the left); the black mark is their sum, the index" + more + ".";
    } else {
      box.replaceChildren(document.createTextNode("Contributions exist for the index only."));
    }
    const scoreMods = result.kind === "index" ? modulesOf(result, "score_") : result.columns;
    const key = result.kind === "index" ? (m) => "score_" + m : (m) => m;
    window.SigCharts.heatmap($("heatmap"), rows.map((r) => ({
      sample: r.sample, scores: Object.fromEntries(scoreMods.map((m) => [m, r[key(m)]])),
    })), scoreMods);
  }

  function renderCoverage(result) {
    const tbody = $("coverage").tBodies[0];
    tbody.replaceChildren();
    (result.coverage || []).forEach((c) => {
      const tr = tbody.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = c.module;
      tr.appendChild(th);
      const found = c.n_found !== undefined ? c.n_found : (c.found || []).length;
      const frac = c.fraction !== undefined && c.fraction !== null ? ` (${Math.round(c.fraction * 100)}%)` : "";
      tr.insertCell().textContent = `${found} of ${c.n_genes}${frac}`;
      tr.insertCell().textContent = c.status || "";
      const miss = tr.insertCell();
      miss.className = "genes";
      miss.textContent = (c.missing || []).join(", ") || "none";
      const via = tr.insertCell();
      via.className = "genes";
      const pairs = Object.entries(c.matched_via || {});
      via.textContent = pairs.length ? pairs.map(([g, how]) => `${g} ← ${how}`).join(", ") : "none";
    });
  }

  function renderManifest(result) {
    const m = result.manifest || {}, sig = m.signatures || {}, def = m.index_definition || {};
    const ref = m.reference;
    const items = [
      ["Research use", m.research_use_only || "Research use only; not a diagnostic."],
      ["sigscore version", m.sigscore_version],
      ["Method", m.method && `${m.method}${m.method_reference ? " — " + m.method_reference : ""}`],
      ["Method parameters", m.params && JSON.stringify(m.params)],
      ["Signatures", [sig.source, sig.version && "version " + sig.version, sig.tier && "tier " + sig.tier]
        .filter(Boolean).join(", ")],
      ["Signature hash", sig.hash],
      ["Index definition", def.name && `${def.name} ${def.version || ""}`.trim()],
      ["Index definition hash", def.hash],
      ["Reference cohort", ref && (typeof ref === "object" ? (ref.name || JSON.stringify(ref)) : String(ref))],
      ["Input", m.input_name || (m.input && m.input.source)],
      ["Input SHA-256", m.input_sha256],
      ["Samples × genes", m.input && `${m.input.n_obs} × ${m.input.n_genes}`],
      ["Reading notes", m.input && (m.input.notes || []).join("; ")],
      ["Modules excluded", (m.modules_excluded || []).join(", ") || "none"],
      ["Created", m.created],
    ];
    const dl = $("manifest");
    dl.replaceChildren();
    items.forEach(([k, v]) => {
      if (v === undefined || v === null || v === "") return;
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = String(v);
      dl.append(dt, dd);
    });
  }

  function show(result, text, fd, jobId) {
    last = { result: result, text: text, form: fd, jobId: jobId };
    sortKey = null;
    $("filter").value = "";
    const m = result.manifest || {};
    $("summary").textContent = `${result.n_obs} samples scored with ${m.method || "the default method"}` +
      (m.input_name ? ` from ${m.input_name}` : "") + (jobId ? ` (job ${jobId}).` : ".");
    renderTable();
    renderCharts(result);
    renderCoverage(result);
    renderManifest(result);
    $("dl-state").textContent = "";
    $("results").hidden = false;
    const h = $("h-results");
    h.tabIndex = -1;
    h.focus(); // screen readers hear that results arrived
  }

  // ------------------------------------------------------------------ downloads
  function save(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  }

  // A synchronous answer is not stored on the server: the first download of another format
  // submits the same files as a job, whose result then serves every format.
  async function storedJob() {
    if (last.jobId) return last.jobId;
    if (!last.form) throw new ApiError("Choose the file again and score it to download this format.");
    $("dl-state").textContent = "Preparing the files on the server…";
    const info = await (await api("v1/jobs", { method: "POST", body: last.form, headers: headers() })).json();
    const end = await waitJob(info.id, (i) => {
      $("dl-state").textContent = `Preparing the files on the server: ${i.state}…`;
    });
    if (!end || end.state !== "done")
      throw new ApiError(sentence(end && end.error && end.error.detail) || "Preparing the download failed.");
    last.jobId = info.id;
    setJobInUrl(info.id);
    return info.id;
  }

  async function download(fmt) {
    clearError();
    const base = (last.result.manifest && last.result.manifest.input_name || "matrix")
      .replace(/\.[^.]*$/, "").replace(/\.(tsv|csv|txt)$/, "");
    const ext = { csv: "csv", parquet: "parquet", json: "json", html: "html" }[fmt];
    const name = `${base}-sigscore-${last.result.kind}.${ext}`;
    try {
      if (fmt === "json" && !last.jobId) {
        save(new Blob([last.text], { type: "application/json" }), name);
      } else {
        const id = await storedJob();
        const resp = await api(`v1/jobs/${id}/result?format=${fmt}`, { headers: headers({ Accept: "*/*" }) });
        save(await resp.blob(), name);
      }
      $("dl-state").textContent = `Downloaded ${name}.`;
    } catch (e) {
      $("dl-state").textContent = "";
      showError(e.message);
    }
  }

  // ------------------------------------------------------------------ set-up
  async function loadMethods() {
    try {
      const methods = await (await api("v1/methods")).json();
      const sel = $("method");
      methods.forEach((m) => {
        const o = document.createElement("option");
        o.value = m.name;
        o.textContent = `${m.name}${m.sample_independent ? "" : " (depends on the other samples)"}`;
        o.title = m.summary;
        sel.appendChild(o);
      });
      sel.addEventListener("change", () => {
        const m = methods.find((x) => x.name === sel.value);
        $("method-help").textContent = m ? `${m.summary} ${m.reference}` : "";
      });
    } catch (e) {
      showError(e.message);
    }
  }

  function keyState() {
    $("key-state").textContent = sessionStorage.getItem(KEY) ? "(a key is set for this tab)" : "";
  }

  function wire() {
    $("score-form").addEventListener("submit", submit);
    const drop = $("drop"), file = $("file");
    const name = () => {
      const f = chosen(file);
      $("file-chosen").textContent = f ? `Chosen: ${f.name} (${f.size.toLocaleString()} bytes)` : "";
    };
    file.addEventListener("change", name);
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) {
        file.files = e.dataTransfer.files;
        name();
      }
    });
    const sigMode = () => {
      const own = $("sig-file").checked;
      $("signatures").disabled = !own;
      $("tier").disabled = own;
    };
    $("sig-tier").addEventListener("change", sigMode);
    $("sig-file").addEventListener("change", sigMode);
    $("key-save").addEventListener("click", () => {
      const v = $("apikey").value.trim();
      if (v) sessionStorage.setItem(KEY, v); else sessionStorage.removeItem(KEY);
      $("apikey").value = "";
      keyState();
      if (!$("method").options.length || $("method").options.length === 1) loadMethods();
    });
    $("key-forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); keyState(); });
    $("filter").addEventListener("input", () => last && renderTable());
    document.querySelectorAll(".downloads button").forEach((b) =>
      b.addEventListener("click", () => download(b.dataset.format)));
    $("again").addEventListener("click", () => {
      polling++;
      $("results").hidden = true;
      $("job").hidden = true;
      setJobInUrl(null);
      $("file").focus();
    });
    keyState();
  }

  wire();
  loadMethods();
  const job = new URL(window.location.href).searchParams.get("job");
  if (job && JOB_ID.test(job)) resume(job);
  else if (job) showError("The job id in this page's address is not valid.");
})();
