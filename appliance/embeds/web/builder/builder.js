// The course builder (action: edit). Everything goes through the embed session (Bearer JWT in
// memory, lib/session.js) to /embed/api/builder (appliance/embeds/builder/); the server validates
// and sanitises every save and refuses a stale one (409) so two authors never overwrite each other.
// Host events (§3.5): session ready/error/expired (lib/boot.js), course created/updated, back.
import { html, render, useState, useEffect, useRef, useCallback } from "../vendor/index.js";
import { applyTheme } from "../lib/boot.js";
import { Player } from "../player/player.js";
import { ScreenEditor, TYPE_NAMES, newContent, Field, Check } from "./editors.js";

const FLOWS = { ai: "ai", generate: "ai", document: "document", transform: "document",
  presentation: "presentation", convert: "presentation", preview: "preview" };
const AUTOSAVE_MS = 700;
const UNDO_DEPTH = 50;

function stylesheet() {
  if (document.querySelector("link[data-builder]")) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/embed/static/builder/builder.css";
  link.dataset.builder = "1";
  document.head.appendChild(link);
}

function flowOf(context) {
  let flow = context.options.flow;
  try { flow = new URLSearchParams(window.location.search).get("flow") || flow; } catch (_) { /* no query */ }
  return FLOWS[flow] || "edit";
}

const draftOf = (state) => ({
  title: state.course.title, description: state.course.description, themeId: state.course.themeId,
  start: state.course.start, finish: state.course.finish, screens: state.course.screens,
});

// Read a server-sent-events response body (fetch, so it carries the Bearer header).
async function* sse(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0 || (cut = buffer.indexOf("\r\n\r\n")) >= 0) {
      const chunk = buffer.slice(0, cut);
      buffer = buffer.slice(cut + (buffer[cut] === "\r" ? 4 : 2));
      const data = chunk.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (data) { try { yield JSON.parse(data); } catch (_) { /* keep-alive */ } }
    }
  }
}

function Builder({ session, context, host, t, initial }) {
  const [state, setState] = useState(initial);          // last server state (revision, variants…)
  const [draft, setDraftRaw] = useState(draftOf(initial));
  const [selected, setSelected] = useState(0);
  const [view, setView] = useState(flowOf(context));
  const [saveStatus, setSaveStatus] = useState("saved"); // saved | dirty | saving | conflict | error
  const [message, setMessage] = useState("");
  const [history, setHistory] = useState([]);
  const [courseId, setCourseId] = useState(initial.course.id);
  const caps = state.capabilities || {};
  const revision = useRef(initial.revision);
  const pending = useRef(null);
  const saving = useRef(null);
  const timer = useRef(null);
  const lastPush = useRef(0);
  const createdPending = useRef(Boolean(initial.course.fresh));
  const conflict = saveStatus === "conflict";
  const conflictRef = useRef(false);
  conflictRef.current = conflict;
  const q = (path) => `/embed/api/builder${path}${courseId !== initial.course.id ? `?course=${courseId}` : ""}`;

  const announce = useCallback((title) => {
    const id = initial.course.id;
    if (createdPending.current) { createdPending.current = false; host.post("course", "created", { id, title }); }
    else host.post("course", "updated", { id, title });
  }, []);

  const adopt = (next, keepDraft) => {
    revision.current = next.revision;
    setState((s) => ({ ...next, capabilities: next.capabilities || s.capabilities }));
    if (!keepDraft) setDraftRaw(draftOf(next));
  };

  const save = useCallback(async () => {
    if (saving.current) return saving.current;
    const body = pending.current;
    if (!body) return null;
    pending.current = null;
    setSaveStatus("saving");
    saving.current = (async () => {
      try {
        const next = await session.put(q("/"), {
          revision: revision.current, title: body.title || "Untitled course", description: body.description || "",
          themeId: body.themeId ?? null, content: { start: body.start, finish: body.finish, screens: body.screens },
        });
        const unchanged = pending.current === null;
        adopt(next, !unchanged);  // the sanitised version, unless the author typed on meanwhile
        setSaveStatus(unchanged ? "saved" : "dirty");
        setMessage("");
        announce(next.course.title);
      } catch (err) {
        if (err.status === 409) { conflictRef.current = true; setSaveStatus("conflict"); setMessage(err.message); pending.current = null; }
        else { setSaveStatus("error"); setMessage(err.message || "Saving failed"); pending.current = pending.current || body; }
      } finally { saving.current = null; }
      if (pending.current && !timer.current) timer.current = setTimeout(() => { timer.current = null; save(); }, AUTOSAVE_MS);
    })();
    return saving.current;
  }, [courseId]);

  const flush = async () => {
    if (timer.current) { clearTimeout(timer.current); timer.current = null; }
    if (saving.current) await saving.current;
    if (pending.current) await save();
    if (conflictRef.current) throw new Error("This course was changed by someone else; reload it first");
  };

  const setDraft = (next, { undoable = true } = {}) => {
    if (conflict) return;
    if (undoable) {
      const now = Date.now();
      if (now - lastPush.current > 1000) setHistory((h) => [...h.slice(-UNDO_DEPTH + 1), draft]);
      lastPush.current = now;
    }
    setDraftRaw(next);
    pending.current = next;
    setSaveStatus("dirty");
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => { timer.current = null; save(); }, AUTOSAVE_MS);
  };

  const undo = () => {
    if (!history.length || conflict) return;
    const previous = history[history.length - 1];
    setHistory((h) => h.slice(0, -1));
    lastPush.current = 0;
    setDraft(previous, { undoable: false });
    setSelected((i) => Math.min(i, Math.max(0, previous.screens.length - 1)));
  };

  useEffect(() => {
    const onKey = (e) => {
      const tag = (e.target && e.target.tagName) || "";
      const editing = ["INPUT", "TEXTAREA"].includes(tag) || (e.target && e.target.isContentEditable);
      if ((e.ctrlKey || e.metaKey) && e.key === "z" && !e.shiftKey && !editing) { e.preventDefault(); undo(); }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  const reload = async (id = courseId) => {
    const path = `/embed/api/builder/${id !== initial.course.id ? `?course=${id}` : ""}`;
    const next = await session.get(path);
    pending.current = null;
    adopt(next, false);
    setSaveStatus("saved");
    setMessage("");
    setHistory([]);
    return next;
  };

  // -- screens ----------------------------------------------------------------------------------
  const screens = draft.screens || [];
  const setScreens = (next) => setDraft({ ...draft, screens: next });
  const nextScreenId = () => screens.reduce((m, s) => Math.max(m, Number(s.id) || 0), 0) + 1;
  const [newType, setNewType] = useState("text");
  const addScreen = () => {
    const screen = { id: nextScreenId(), type: newType, title: `New ${TYPE_NAMES[newType].toLowerCase()} screen`, content: newContent[newType]() };
    if (newType === "quiz") Object.assign(screen, { scored: true, passing_grade: 50 });
    const at = Math.min(screens.length, selected + 1);
    setScreens([...screens.slice(0, at), screen, ...screens.slice(at)]);
    setSelected(screens.length ? at : 0);
  };
  const duplicate = (i) => {
    const copy = { ...JSON.parse(JSON.stringify(screens[i])), id: nextScreenId(), title: `${screens[i].title} (copy)` };
    setScreens([...screens.slice(0, i + 1), copy, ...screens.slice(i + 1)]);
    setSelected(i + 1);
  };
  const remove = (i) => {
    setScreens(screens.filter((_, k) => k !== i));
    setSelected(Math.max(0, Math.min(i, screens.length - 2)));
  };
  const moveScreen = (i, delta) => {
    const j = i + delta;
    if (j < 0 || j >= screens.length) return;
    const copy = screens.slice();
    [copy[i], copy[j]] = [copy[j], copy[i]];
    setScreens(copy);
    setSelected(j);
  };

  const upload = async (file) => {
    if (file.size > 8 * 1024 * 1024) throw new Error("Media files are limited to 8 MB");
    const response = await session.raw(q("/media"), { method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || "Upload failed");
    return data;
  };
  // refine answers synchronously, which can take longer than a session call's 20 s limit on a busy
  // model: a raw request, bounded by the server's AI timeout instead
  const refine = caps.ai ? async (text, operation) => {
    const response = await session.raw(q("/ai/refine"), { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text, operation, tone: "friendly" }) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || "The text could not be refined");
    return data;
  } : null;

  // -- publishing -------------------------------------------------------------------------------
  const [publishing, setPublishing] = useState(false);
  const publish = async () => {
    setPublishing(true);
    try {
      await flush();
      const next = await session.post(q("/publish"), { revision: revision.current });
      adopt(next, false);
      setMessage(`Published (revision ${next.course.publishedRevision}).`);
      announce(next.course.title);
    } catch (err) { setMessage(err.message); } finally { setPublishing(false); }
  };
  const revert = async () => {
    if (!window.confirm("Discard the draft and go back to the published version?")) return;
    try {
      await flush();
      const next = await session.post(q("/revert"), {});
      setHistory((h) => [...h, draft]);
      adopt(next, false);
      setMessage("The draft is back to the published version.");
      announce(next.course.title);
    } catch (err) { setMessage(err.message); }
  };

  // -- AI jobs ----------------------------------------------------------------------------------
  const [job, setJob] = useState(null);   // {label, events: [], error, done}
  const follow = async (started, label, after) => {
    setJob({ label, screens: [], status: "running", error: "" });
    const response = await session.raw(`/embed/api/builder/jobs/${started.id}/events`, { headers: { Accept: "text/event-stream" } });
    let final = null;
    for await (const event of sse(response)) {
      if (event.type === "progress" && event.data && event.data.screen) {
        // screens of a course are written several at once and arrive as each is done: keep the arrival
        // order (a log), labelled with the place each takes in the course
        const at = Number.isInteger(event.data.index) ? event.data.index + 1 : null;
        setJob((j) => ({ ...j, screens: [...j.screens, { ...event.data.screen, at }], message: event.message }));
      } else if (event.type === "progress") {
        setJob((j) => ({ ...j, message: event.message }));
      } else if (["succeeded", "failed", "cancelled"].includes(event.type)) { final = event.job; break; }
    }
    if (!final) final = await session.get(`/embed/api/builder/jobs/${started.id}`);
    if (final.status !== "succeeded") {
      setJob((j) => ({ ...j, status: final.status, error: final.error || "The job did not finish" }));
      return null;
    }
    const result = after ? await after(final) : await reload();
    setJob((j) => ({ ...j, status: "succeeded" }));
    const next = result && result.course ? result : null;
    announce(next ? next.course.title : draft.title);
    return final;
  };
  const startJob = async (path, body, label, after) => {
    try {
      await flush();
      const started = await session.post(q(path), body);
      return await follow(started, label, after);
    } catch (err) {
      setJob({ label, screens: [], status: "failed", error: err.message || "The job failed" });
      return null;
    }
  };

  const busy = job && job.status === "running";
  const current = screens[Math.min(selected, Math.max(0, screens.length - 1))];
  const changeCurrent = (next) => setScreens(screens.map((s, i) => (i === selected ? next : s)));

  const back = context.options.back === "event"
    ? html`<button type="button" class="back" onClick=${() => host.post("back", "back", {})} aria-label="Back">← Back</button>` : null;
  const statusText = { saved: "All changes saved", dirty: "Unsaved changes…", saving: "Saving…", conflict: "Not saved: conflict", error: "Not saved" }[saveStatus];
  const variant = state.course.translationOf != null;

  const tabs = [["edit", "Edit"], ["settings", "Theme & settings"], ["preview", "Preview"]];
  if (caps.ai) tabs.splice(1, 0, ["ai", "Generate with AI"]);
  if (caps.ai) tabs.splice(2, 0, ["document", "From a document"], ["presentation", "From a presentation"]);
  if (caps.translations) tabs.push(["translate", "Translate"]);

  return html`<div class="builder">
    <header class="bar builder-bar">
      ${back}
      <div class="field title-field"><label for="course-title" class="sr-only">Course title</label>
        <input id="course-title" value=${draft.title} disabled=${conflict} onInput=${(e) => setDraft({ ...draft, title: e.target.value })} /></div>
      ${variant ? html`<span class="badge">Translation: ${state.course.language}</span>` : null}
      <span class=${`save-status ${saveStatus}`} role="status" aria-live="polite">${statusText}</span>
      <button type="button" class="secondary" onClick=${undo} disabled=${!history.length || conflict} aria-keyshortcuts="Control+Z">Undo</button>
      ${caps.publish ? html`<button type="button" class="primary" onClick=${publish} disabled=${publishing || conflict || busy}>Publish</button>
        <button type="button" class="secondary" onClick=${revert} disabled=${!state.course.hasPublished || conflict || busy}>Revert to published</button>` : null}
      ${caps.narrations ? html`<button type="button" class="secondary" onClick=${() => startJob("/ai/narrate", {}, "Narrating the course")}
        disabled=${busy || conflict || !screens.length}>Narrate</button>` : null}
      ${context.testMode ? html`<span class="test-mode" role="note">${t("testMode")}</span>` : null}
    </header>
    ${conflict ? html`<div class="conflict" role="alert"><p>${message}</p>
      <button type="button" class="primary" onClick=${() => reload()}>Reload the latest version</button></div>`
      : message ? html`<p class="notice" role="status">${message}</p>` : null}
    ${job ? html`<section class="job" aria-label="AI progress" aria-live="polite">
      <p><strong>${job.label}</strong> · ${job.status === "running" ? (job.message || "Working…") : job.status === "succeeded" ? "Done" : job.error}</p>
      ${job.screens.length ? html`<ol class="generated" role="log" aria-label="Generated screens">${job.screens.map((s, i) => html`<li key=${i}>${s.title} <small>(${s.type}${s.at ? `, screen ${s.at}` : ""})</small></li>`)}</ol>` : null}
      ${!busy ? html`<button type="button" class="tool" onClick=${() => setJob(null)}>Dismiss</button>` : null}
    </section>` : null}
    <nav class="tabs" aria-label="Builder views">
      ${tabs.map(([key, label]) => html`<button type="button" key=${key} class=${"tab" + (view === key ? " active" : "")}
        aria-current=${view === key ? "page" : undefined} onClick=${async () => { if (key === "preview") { try { await flush(); } catch (_) { /* shown */ } } setView(key); }}>${label}</button>`)}
    </nav>
    ${view === "edit" ? html`<div class="workspace">
      <aside class="outline" aria-label="Course outline">
        <h2>Outline</h2>
        ${screens.length === 0 ? html`<p class="hint">No screens yet. Add one below${caps.ai ? ", or generate a course with AI" : ""}.</p>` : null}
        <ol class="outline-list">
          ${screens.map((s, i) => html`<li key=${s.id} class=${i === selected ? "selected" : ""}>
            <button type="button" class="outline-item" aria-current=${i === selected ? "true" : undefined} onClick=${() => setSelected(i)}>
              <span class="n">${i + 1}</span> <span class="t">${s.title || "(untitled)"}</span> <small>${TYPE_NAMES[s.type]}</small>
              ${s.unsupported ? html`<span class="flag" title="Not supported by the source">⚠ check</span>` : null}
            </button>
            <span class="outline-tools">
              <button type="button" class="tool" aria-label=${`Move screen ${i + 1} up`} disabled=${i === 0 || conflict} onClick=${() => moveScreen(i, -1)}>↑</button>
              <button type="button" class="tool" aria-label=${`Move screen ${i + 1} down`} disabled=${i === screens.length - 1 || conflict} onClick=${() => moveScreen(i, 1)}>↓</button>
              <button type="button" class="tool" aria-label=${`Duplicate screen ${i + 1}`} disabled=${conflict} onClick=${() => duplicate(i)}>Copy</button>
              <button type="button" class="tool danger" aria-label=${`Delete screen ${i + 1}`} disabled=${conflict} onClick=${() => remove(i)}>✕</button>
            </span>
          </li>`)}
        </ol>
        <div class="add-screen">
          <label for="new-type">New screen type</label>
          <select id="new-type" value=${newType} onChange=${(e) => setNewType(e.target.value)}>
            ${(state.screenTypes || Object.keys(TYPE_NAMES)).map((k) => html`<option value=${k} key=${k}>${TYPE_NAMES[k] || k}</option>`)}
          </select>
          <button type="button" class="primary" onClick=${addScreen} disabled=${conflict}>Add screen</button>
        </div>
        ${caps.ai ? html`<${AiScreenTools} state=${state} busy=${busy || conflict}
          run=${(path, body, label) => startJob(path, body, label, async () => {
            const next = await reload();  // the new screen is the last one: select it
            setSelected(Math.max(0, next.course.screens.length - 1));
            return next;
          })} />` : null}
      </aside>
      <section class="editor" aria-label="Screen editor">
        ${current ? html`<h2>Screen ${Math.min(selected, screens.length - 1) + 1}: ${TYPE_NAMES[current.type]}</h2>
          <fieldset disabled=${conflict} class="plain"><${ScreenEditor} key=${current.id} screen=${current} change=${changeCurrent} upload=${upload} refine=${refine} /></fieldset>`
          : html`<p class="hint">Select or add a screen to edit it.</p>`}
      </section>
    </div>` : null}
    ${view === "settings" ? html`<${Settings} draft=${draft} setDraft=${setDraft} themes=${state.themes || []} disabled=${conflict} options=${context.options} />` : null}
    ${view === "preview" ? html`<${Preview} session=${session} q=${q} context=${context} t=${t} />` : null}
    ${view === "ai" ? html`<${AiCourse} busy=${busy || conflict} run=${async (body) => {
      const done = await startJob("/ai/course", body, "Generating the course");
      if (done) setView("edit");
    }} />` : null}
    ${view === "document" || view === "presentation" ? html`<${DocumentFlow} key=${view} kind=${view} caps=${caps} session=${session} q=${q} busy=${busy || conflict}
      run=${async (body) => {
        const done = await startJob("/documents/course", body, view === "document" ? "Turning the document into a course" : "Converting the presentation",
          async (final) => { const next = await session.post(`/embed/api/builder/jobs/${final.id}/apply`, {}); adopt(next, false); setSaveStatus("saved"); return next; });
        if (done) setView("edit");
      }} />` : null}
    ${view === "translate" ? html`<${Translate} state=${state} busy=${busy || conflict} courseId=${courseId}
      run=${(language) => startJob("/ai/translate", { language }, `Translating into ${language}`)}
      open=${async (id) => { await flush(); setCourseId(id); await reload(id); setSelected(0); setView("edit"); }} />` : null}
  </div>`;
}

function AiScreenTools({ state, busy, run }) {
  const [kind, setKind] = useState("text");
  const [prompt, setPrompt] = useState("");
  const [fromCourse, setFromCourse] = useState(false);
  const [questions, setQuestions] = useState(3);
  const screens = state.course.screens || [];
  return html`<details class="ai-tools"><summary>Generate a screen or quiz with AI</summary>
    <${Field} label="What should it cover?" multiline value=${prompt} onInput=${setPrompt} />
    <${Check} label="Use the course's own content" checked=${fromCourse} onChange=${setFromCourse} />
    <div class="field"><label for="ai-type">Screen type</label>
      <select id="ai-type" value=${kind} onChange=${(e) => setKind(e.target.value)}>
        ${(state.generatedTypes || ["text"]).map((k) => html`<option value=${k} key=${k}>${TYPE_NAMES[k]}</option>`)}
      </select></div>
    <button type="button" class="secondary" disabled=${busy || (!prompt.trim() && !fromCourse)}
      onClick=${() => run("/ai/screen", { type: kind, prompt: prompt.trim() || null, fromCourse }, "Generating a screen")}>Generate screen</button>
    <${Field} label="Quiz questions" type="number" min="1" max="10" value=${questions} onInput=${(v) => setQuestions(Math.max(1, Math.min(10, v || 1)))} />
    <button type="button" class="secondary" disabled=${busy || (!prompt.trim() && !(fromCourse && screens.length))}
      onClick=${() => run("/ai/quiz", { prompt: prompt.trim() || null, fromCourse, questionCount: questions }, "Generating a quiz")}>Generate quiz</button>
  </details>`;
}

function AiCourse({ busy, run }) {
  const [form, setForm] = useState({ prompt: "", audience: "employees", familiarity: "beginner", tone: "professional", screenCount: 5 });
  const set = (k) => (v) => setForm({ ...form, [k]: v });
  return html`<main class="panel" aria-labelledby="ai-title">
    <h2 id="ai-title">Generate a course with AI</h2>
    <p class="hint">The on-box model writes an outline, then each screen; they appear below as they are written. Everything stays a draft until you publish.</p>
    <${Field} label="What is the course about?" multiline value=${form.prompt} onInput=${set("prompt")} />
    <${Field} label="Audience" value=${form.audience} onInput=${set("audience")} />
    <div class="field"><label for="ai-familiarity">Familiarity</label>
      <select id="ai-familiarity" value=${form.familiarity} onChange=${(e) => set("familiarity")(e.target.value)}>
        <option value="beginner">Beginner</option><option value="intermediate">Intermediate</option><option value="advanced">Advanced</option>
      </select></div>
    <div class="field"><label for="ai-tone">Tone</label>
      <select id="ai-tone" value=${form.tone} onChange=${(e) => set("tone")(e.target.value)}>
        <option value="professional">Professional</option><option value="friendly">Friendly</option>
        <option value="formal">Formal</option><option value="playful">Playful</option>
      </select></div>
    <${Field} label="Number of screens" type="number" min="1" max="25" value=${form.screenCount} onInput=${(v) => set("screenCount")(Math.max(1, Math.min(25, v || 1)))} />
    <button type="button" class="primary" disabled=${busy || !form.prompt.trim()} onClick=${() => run({ ...form, prompt: form.prompt.trim() })}>Generate course</button>
  </main>`;
}

function DocumentFlow({ kind, caps, session, q, busy, run }) {
  const [file, setFile] = useState(null);
  const [prompt, setPrompt] = useState("");
  const [count, setCount] = useState(kind === "document" ? 5 : "");  // presentations: "" = one screen per slide group
  const [status, setStatus] = useState("");
  const noun = kind === "document" ? "document" : "presentation";
  if (!caps.documents) {
    return html`<main class="panel"><h2>From a ${noun}</h2><p role="status">Turning a ${noun} into a course is not available on this appliance yet.</p></main>`;
  }
  const go = async () => {
    setStatus("Uploading…");
    const response = await session.raw(q("/documents"), { method: "POST", headers: { "Content-Type": "application/octet-stream", "X-Filename": file.name }, body: file });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) { setStatus(data.message || "The upload failed"); return; }
    setStatus("Uploaded; writing the course…");
    await run({ documentId: data.documentId ?? data.id, kind, prompt: prompt.trim() || undefined, screenCount: count || undefined });
    setStatus("");
  };
  return html`<main class="panel" aria-labelledby="doc-title">
    <h2 id="doc-title">${kind === "document" ? "Turn a document into a course" : "Convert a presentation"}</h2>
    <p class="hint">${kind === "document" ? "PDF, Word, text or Markdown." : "PowerPoint (.pptx): one screen per group of slides (a new group at each section title, or after three slides)."} Only the text is read; screens the document does not support are flagged for you to check.</p>
    <div class="field"><label for="doc-file">${kind === "document" ? "Document file" : "Presentation file"}</label>
      <input id="doc-file" type="file" accept=${kind === "document" ? ".pdf,.docx,.txt,.md" : ".pptx"} onChange=${(e) => setFile(e.target.files[0] || null)} /></div>
    <${Field} label="Anything to focus on? (optional)" multiline value=${prompt} onInput=${setPrompt} />
    ${kind === "document"
      ? html`<${Field} label="Number of screens" type="number" min="1" max="25" value=${count} onInput=${(v) => setCount(Math.max(1, Math.min(25, v || 1)))} />`
      : html`<${Field} label="Number of screens (optional)" type="number" min="1" max="25" value=${count}
          hint="Leave empty for one screen per slide group; a number makes that many balanced groups."
          onInput=${(v) => setCount(v ? Math.max(1, Math.min(25, v)) : "")} />`}
    <button type="button" class="primary" disabled=${busy || !file} onClick=${go}>Create the course</button>
    <p role="status">${status}</p>
  </main>`;
}

function Translate({ state, busy, run, open, courseId }) {
  const [language, setLanguage] = useState("fr");
  return html`<main class="panel" aria-labelledby="tr-title">
    <h2 id="tr-title">Translations</h2>
    <p class="hint">A translation is a language variant of this course: review and publish it before learners see it.</p>
    <ul class="variants">${(state.variants || []).map((v) => html`<li key=${v.id}>
      <strong>${v.language}</strong> ${v.source ? "(source)" : ""} · ${v.published ? "published" : "draft"}
      ${v.id !== courseId ? html`<button type="button" class="secondary" onClick=${() => open(v.id)}>Review ${v.language}</button>` : html` <em>(open)</em>`}
    </li>`)}</ul>
    <${Field} label="Translate into (language code)" value=${language} onInput=${setLanguage} />
    <button type="button" class="primary" disabled=${busy || !language.trim()} onClick=${() => run(language.trim())}>Translate the course</button>
  </main>`;
}

function Settings({ draft, setDraft, themes, disabled, options }) {
  const start = draft.start || {};
  const finish = draft.finish || {};
  const setStart = (patch) => setDraft({ ...draft, start: { ...start, ...patch } });
  const setFinish = (patch) => setDraft({ ...draft, finish: { ...finish, ...patch } });
  const theme = themes.find((x) => x.id === draft.themeId);
  useEffect(() => { applyTheme(theme ? { colours: theme.colours, font: theme.font } : null, options); }, [draft.themeId]);
  return html`<main class="panel settings"><fieldset class="plain" disabled=${disabled}>
    <h2>Theme and colours</h2>
    <div class="field"><label for="theme">Theme</label>
      <select id="theme" value=${draft.themeId ?? ""} onChange=${(e) => setDraft({ ...draft, themeId: e.target.value ? Number(e.target.value) : null })}>
        <option value="">Default</option>
        ${themes.map((x) => html`<option value=${x.id} key=${x.id}>${x.name}</option>`)}
      </select></div>
    ${theme ? html`<p class="swatches" aria-label="Theme colours">${Object.entries((theme.colours && theme.colours.standard) || {}).map(([k, v]) =>
      html`<span class="swatch" key=${k}><span class="chip" style=${{ background: /^#[0-9a-fA-F]{3,8}$/.test(v) ? v : "transparent" }}></span>${k} ${v}</span>`)}</p>` : null}
    ${options.color ? html`<p class="hint">The host sets the primary colour to ${options.color}.</p>` : null}
    <h2>Start screen</h2>
    <${Field} label="Course description" multiline value=${draft.description} onInput=${(v) => setDraft({ ...draft, description: v })} />
    <${Field} label="Start button label" value=${start.button_label} onInput=${(v) => setStart({ button_label: v })} />
    <${Check} label="Show the description" checked=${start.display_description !== false} onChange=${(v) => setStart({ display_description: v })} />
    <${Check} label="Show the duration" checked=${start.display_duration !== false} onChange=${(v) => setStart({ display_duration: v })} />
    <h2>Finish screen</h2>
    <${Field} label="Finish title" value=${finish.title} onInput=${(v) => setFinish({ title: v })} />
    <${Field} label="Finish message" multiline value=${finish.description} onInput=${(v) => setFinish({ description: v })} />
    <${Check} label="Ask learners for feedback" checked=${Boolean(finish.display_feedback)} onChange=${(v) => setFinish({ display_feedback: v })} />
    ${options.feedback === false ? html`<p class="hint">The host has switched course feedback off.</p>` : null}
  </fieldset></main>`;
}

// Preview as a learner: the real player on the saved draft, with a transport that records nothing.
function Preview({ session, q, context, t }) {
  const [course, setCourse] = useState(null);
  const [error, setError] = useState("");
  const [round, setRound] = useState(0);
  useEffect(() => {
    session.get(q("/preview")).then((c) => { applyTheme(c.theme, context.options); setCourse(c); }).catch((e) => setError(e.message));
  }, [round]);
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!course) return html`<p class="loading" role="status">Loading…</p>`;
  const tracking = { progress: 0, score: null, passed: null };
  const transport = {
    start: async () => ({ tracking }),
    progress: async () => ({ tracking }),
    attempt: async (b) => (b.answers ? session.post(q("/preview/grade"), b) : {}),
    complete: async () => ({ tracking: { progress: 100, score: null, passed: null } }),
    feedback: async () => ({ tracking }),
    narration: async (screenId) => {
      const response = await session.raw(q(`/narration/${screenId}`));
      if (!response.ok) throw new Error("narration unavailable");
      return URL.createObjectURL(await response.blob());
    },
  };
  return html`<div class="preview" aria-label="Preview as a learner">
    <p class="hint preview-note">Preview: nothing is recorded. <button type="button" class="tool" onClick=${() => { setCourse(null); setRound(round + 1); }}>Restart preview</button></p>
    <${Player} key=${round} course=${course} tracking=${null} options=${{ ...context.options, back: "hidden" }}
      testMode=${false} transport=${transport} emit=${() => {}} t=${t} />
  </div>`;
}

export async function mountBuilder({ app, session, context, host, setLanguage }) {
  stylesheet();
  const t = setLanguage(context.options.language);
  const initial = await session.get("/embed/api/builder/");
  document.title = `Builder · ${initial.course.title}`;
  applyTheme(null, context.options);
  app.textContent = "";  // the page's "Loading…" placeholder
  render(html`<${Builder} session=${session} context=${context} host=${host} t=${t} initial=${initial} />`, app);
  window.__builder = { ready: true };
  host.post("session", "ready", { courseId: initial.course.id, screens: initial.course.screens.length });
}
