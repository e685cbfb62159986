// The course builder (action: edit). Everything goes through the embed session (Bearer JWT in
// memory, lib/session.js) to /embed/api/builder (appliance/embeds/builder/); the server validates
// and sanitises every save and refuses a stale one (409) so two authors never overwrite each other.
// Host events (§3.5): session ready/error/expired (lib/boot.js), course created/updated, back.
import { html, render, useState, useEffect, useRef, useCallback } from "../vendor/index.js";
import { icon } from "../vendor/icons/index.js";
import { applyTheme } from "../lib/boot.js";
import { ScreenEditor, TYPE_NAMES, newContent } from "./editors.js";
import { Outline, KEYS_HINT } from "./outline.js";
import { AiScreenTools, AiCourse, DocumentFlow, Translate, Settings, Preview } from "./panels.js";

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
    setDeleted(null);  // the undo toast is for the very next step only (remove() sets it after this)
    setImageToast(null);
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
    const at = Math.min(selected, Math.max(0, previous.screens.length - 1));
    setSelected(at);
    if (history.length === 1 || document.activeElement === document.body) focusAfter.current = row(at);  // Undo is disabled now
    say("Undone");
  };

  useEffect(() => {
    const onKey = (e) => {
      const tag = (e.target && e.target.tagName) || "";
      const editing = ["INPUT", "TEXTAREA"].includes(tag) || (e.target && e.target.isContentEditable);
      if ((e.ctrlKey || e.metaKey) && e.key === "z" && !e.shiftKey && !editing) { e.preventDefault(); if (deleted) restore(); else undo(); }
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
  // Every action says what it did in a live region that exists from the start (`say`) and leaves the
  // focus on its result (`focusAfter`, applied once the next render is in the DOM), never on <body>.
  const screens = draft.screens || [];
  const setScreens = (next) => setDraft({ ...draft, screens: next });
  const nextScreenId = (list = screens) => list.reduce((m, s) => Math.max(m, Number(s.id) || 0), 0) + 1;
  const [newType, setNewType] = useState("text");
  const [spoken, setSpoken] = useState({ n: 0, text: "" });
  const say = (text) => setSpoken((s) => ({ n: s.n + 1, text }));
  const focusAfter = useRef(null);
  const [deleted, setDeleted] = useState(null);   // {screen, index}: the undo toast
  const [imageToast, setImageToast] = useState(null);  // {text, undo}: what the last image action did
  useEffect(() => {
    const find = focusAfter.current;
    if (!find) return;
    focusAfter.current = null;
    const el = find();
    if (el) el.focus();
  });
  const row = (i, action) => () => {
    const li = document.querySelectorAll(".outline-list > li")[i];
    const button = li && action ? li.querySelector(`[data-action="${action}"]`) : null;
    return button && !button.disabled ? button : li ? li.querySelector(".outline-item") : document.getElementById("new-type");
  };
  const toEditor = () => () => document.querySelector("#screen-editor .screen-editor input");
  const select = (i, focus) => { setSelected(i); if (focus) focusAfter.current = row(i); };
  const addScreen = () => {
    const screen = { id: nextScreenId(), type: newType, title: `New ${TYPE_NAMES[newType].toLowerCase()} screen`, content: newContent[newType]() };
    if (newType === "quiz") Object.assign(screen, { scored: true, passing_grade: 50 });
    const at = screens.length ? Math.min(screens.length, selected + 1) : 0;
    setScreens([...screens.slice(0, at), screen, ...screens.slice(at)]);
    setSelected(at);
    setDeleted(null);
    focusAfter.current = () => { const el = toEditor()(); if (el) el.select(); return el; };  // typing replaces the placeholder title
    say(`Screen ${at + 1} added: ${screen.title}`);
  };
  const duplicate = (i) => {
    const copy = { ...JSON.parse(JSON.stringify(screens[i])), id: nextScreenId(), title: `${screens[i].title} (copy)` };
    setScreens([...screens.slice(0, i + 1), copy, ...screens.slice(i + 1)]);
    setSelected(i + 1);
    setDeleted(null);
    focusAfter.current = row(i + 1);
    say(`Screen ${i + 2} added: ${copy.title}`);
  };
  const remove = (i) => {
    const next = screens.filter((_, k) => k !== i);
    setScreens(next);
    const to = Math.max(0, Math.min(i, next.length - 1));
    setSelected(to);
    setDeleted({ screen: screens[i], index: i });
    focusAfter.current = next.length ? row(to) : () => document.getElementById("new-type");
  };
  const restore = () => {
    if (!deleted) return;
    const at = Math.min(deleted.index, screens.length);
    const taken = screens.some((s) => s.id === deleted.screen.id);
    const screen = taken ? { ...deleted.screen, id: nextScreenId() } : deleted.screen;
    setScreens([...screens.slice(0, at), screen, ...screens.slice(at)]);
    setSelected(at);
    setDeleted(null);
    focusAfter.current = row(at);
    say(`Screen ${at + 1} restored: ${screen.title}`);
  };
  const moveScreen = (i, delta, from) => {
    const j = i + delta;
    if (j < 0 || j >= screens.length) return;
    const copy = screens.slice();
    [copy[i], copy[j]] = [copy[j], copy[i]];
    setScreens(copy);
    setSelected(j);
    focusAfter.current = row(j, from === "row" ? null : from);
    say(`${copy[j].title} moved to position ${j + 1} of ${copy.length}`);
  };

  const upload = async (file) => {
    if (file.size > 8 * 1024 * 1024) throw new Error("Media files are limited to 8 MB");
    const response = await session.raw(q("/media"), { method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || "Upload failed");
    return data;
  };
  // -- images (appliance/embeds/builder/images.py): illustrating a screen answers the image, which
  // becomes the screen's `asset` as one undoable edit with an undo toast; focus goes to `focus` (a
  // selector in the screen editor: the alt text after adding, the Illustrate button after removing)
  const inEditor = (selector) => () => document.getElementById("screen-editor").querySelector(selector);
  const images = {
    illustrate: caps.ai ? async (screen) => {
      await flush();
      const response = await session.raw(q("/images/screen"), { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ screenId: screen.id }) });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data.message || "The screen could not be illustrated");
      return data;
    } : null,
    upload: (file) => upload(file),
    changed: (next, said, focus) => {
      lastPush.current = 0;  // its own undo step, even right after typing
      changeCurrent(next);
      setImageToast({ text: said, undo: "screen" });  // this render's undo then, not this closure's (stale history)
      say(said);
      focusAfter.current = inEditor(focus);
    },
  };
  const undoImage = () => {
    undo();
    focusAfter.current = inEditor("[data-image=illustrate], .image-upload input");
  };
  // the course's cover (`image`, alt text `start.image_alt`): set on the server at once
  // (images/cover), undone by putting the previous one back
  const inCover = (selector) => () => document.querySelector(`.cover-tools ${selector}`);
  const coverCall = async (method, body) => {
    await flush();
    const response = await session.raw(q("/images/cover"), { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || "The cover could not be changed");
    adopt(data, false);
    setSaveStatus("saved");
    announce(data.course.title);
    return data;
  };
  const changeCover = async (method, body, said, focus) => {
    const before = { url: state.course.image || null, alt: (draft.start || {}).image_alt || "" };
    const next = await coverCall(method, body);
    const text = said(next.course);
    say(text);
    setImageToast({ text, undo: async () => {
      setImageToast(null);
      await coverCall("PUT", before);
      say("Cover change undone");
      focusAfter.current = inCover("[data-cover=illustrate], .image-upload input");
    } });
    focusAfter.current = inCover(focus);
  };
  const cover = {
    image: state.course.image,
    illustrate: caps.ai ? () => changeCover("POST", {}, (c) => `Cover added: ${c.start.image_alt || "no description"}`, ".image-alt input") : null,
    upload: async (file) => {
      const made = await upload(file);
      if (made.kind !== "image") throw new Error("Choose an image: PNG, JPEG, GIF, WebP or SVG");
      await changeCover("PUT", { url: made.url, alt: "" }, () => "Your cover image was added. Describe it in the alternative text field.", ".image-alt input");
    },
    remove: () => changeCover("PUT", { url: null }, () => "Cover removed", "[data-cover=illustrate], .image-upload input"),
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
      focusAfter.current = () => document.getElementById("publish");
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
    focusAfter.current = () => document.getElementById("job");  // the button that started it is disabled now
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
    ? html`<button type="button" class="back" onClick=${() => host.post("back", "back", {})}>${icon("arrow-left")} Back</button>` : null;
  const statusText = { saved: "All changes saved", dirty: "Unsaved changes…", saving: "Saving…", conflict: "Not saved: conflict", error: "Not saved" }[saveStatus];
  const variant = state.course.translationOf != null;

  const tabs = [["edit", "Edit"], ["settings", "Theme & settings"], ["preview", "Preview"]];
  if (caps.ai) tabs.splice(1, 0, ["ai", "Generate with AI"]);
  if (caps.ai) tabs.splice(2, 0, ["document", "From a document"], ["presentation", "From a presentation"]);
  if (caps.translations) tabs.push(["translate", "Translate"]);
  const open = async (key) => {
    if (key === "preview") { try { await flush(); } catch (_) { /* shown */ } }
    setView(key);
  };
  // the tabs are one tab stop: Left/Right/Home/End move between them, Enter or Space opens one
  const onTabKey = (e, i) => {
    const to = { ArrowLeft: i - 1, ArrowRight: i + 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const k = (to + tabs.length) % tabs.length;
    document.getElementById(`tab-${tabs[k][0]}`).focus();
  };
  const [focusTab, setFocusTab] = useState(null);
  const tabStop = focusTab ?? view;

  const views = {
    edit: () => html`<div class="workspace">
      <section class="outline" aria-labelledby="outline-title">
        <h2 id="outline-title">Outline</h2>
        <div class="add-screen">
          <label for="new-type">New screen type</label>
          <select id="new-type" value=${newType} onChange=${(e) => setNewType(e.target.value)}>
            ${(state.screenTypes || Object.keys(TYPE_NAMES)).map((k) => html`<option value=${k} key=${k}>${TYPE_NAMES[k] || k}</option>`)}
          </select>
          <button type="button" class="primary" onClick=${addScreen} disabled=${conflict}>${icon("plus")} Add screen</button>
        </div>
        ${caps.ai ? html`<${AiScreenTools} state=${state} busy=${busy || conflict}
          run=${(path, body, label) => startJob(path, body, label, async () => {
            const next = await reload();  // the new screen is the last one: select it
            const last = Math.max(0, next.course.screens.length - 1);
            setSelected(last);
            focusAfter.current = row(last);
            return next;
          })} />` : null}
        ${caps.ai && screens.length ? html`<button type="button" class="secondary illustrate-all" disabled=${busy || conflict}
          onClick=${async () => {
            const before = draft;
            const done = await startJob("/images/screens", {}, "Illustrating the screens", async () => {
              const next = await reload();
              setHistory([before]);  // undoable: the draft as it was
              return next;
            });
            if (done) say(`Illustrated ${done.result ? done.result.illustrated : ""} screens. Undo puts the draft back as it was.`);
          }}>${icon("sparkles")} Illustrate all screens</button>` : null}
        ${screens.length === 0 ? html`<p class="hint">No screens yet. Add one above${caps.ai ? ", or generate a course with AI" : ""}.</p>`
          : html`<p class="hint keys" id="outline-keys">${KEYS_HINT}</p>`}
        <${Outline} screens=${screens} selected=${Math.min(selected, Math.max(0, screens.length - 1))} select=${select}
          move=${moveScreen} duplicate=${duplicate} remove=${remove} edit=${() => { focusAfter.current = toEditor(); }} disabled=${conflict} />
      </section>
      <section class="editor" id="screen-editor" tabindex="-1" aria-labelledby="editor-title"
        onKeyDown=${(e) => { if (e.key === "Escape" && e.target.tagName !== "SELECT" && screens.length) { e.preventDefault(); row(selected)().focus(); } }}>
        ${current ? html`<h2 id="editor-title">Screen ${Math.min(selected, screens.length - 1) + 1}: ${TYPE_NAMES[current.type]}</h2>
          <fieldset disabled=${conflict} class="plain"><${ScreenEditor} key=${current.id} screen=${current} change=${changeCurrent} upload=${upload} refine=${refine} images=${images} /></fieldset>`
          : html`<h2 id="editor-title">Screen editor</h2><p class="hint">Select or add a screen to edit it.</p>`}
      </section>
    </div>`,
    settings: () => html`<${Settings} draft=${draft} setDraft=${setDraft} themes=${state.themes || []} disabled=${conflict} options=${context.options} cover=${cover} />`,
    ai: () => html`<${AiCourse} busy=${busy || conflict} existing=${screens.length} run=${async (body) => {
      const before = draft;
      const done = await startJob("/ai/course", body, "Generating the course", async () => {
        const next = await reload();
        // replacing is undoable: the draft as it was is the undo step
        if (body.mode === "replace") setHistory([before]);
        return next;
      });
      if (done) { setView("edit"); setSelected(0); focusAfter.current = row(0); }
    }} />`,
    document: () => html`<${DocumentFlow} key=${view} kind=${view} caps=${caps} session=${session} q=${q} busy=${busy || conflict}
      run=${async (body) => {
        const done = await startJob("/documents/course", body, view === "document" ? "Turning the document into a course" : "Converting the presentation",
          async (final) => { const next = await session.post(`/embed/api/builder/jobs/${final.id}/apply`, {}); adopt(next, false); setSaveStatus("saved"); return next; });
        if (done) { setView("edit"); focusAfter.current = row(0); }
      }} />`,
    translate: () => html`<${Translate} state=${state} busy=${busy || conflict} courseId=${courseId}
      run=${(language) => startJob("/ai/translate", { language }, `Translating into ${language}`)}
      open=${async (id) => { await flush(); setCourseId(id); await reload(id); setSelected(0); setView("edit"); focusAfter.current = row(0); }} />`,
  };
  views.presentation = views.document;

  const panel = view === "preview"
    ? html`<div role="tabpanel" id="builder-panel" aria-labelledby="tab-preview" class="preview-panel">
        <${Preview} session=${session} q=${q} context=${context} t=${t} /></div>`
    : html`<main><div id="builder-panel" role="tabpanel" aria-labelledby=${`tab-${view}`} tabindex="-1">
        <h1 class="sr-only">Course builder: ${draft.title || "Untitled course"}</h1>
        ${views[view] ? views[view]() : null}
      </div></main>`;

  return html`<div class="builder">
    <div class="skip-links">
      ${view === "edit" ? html`<a class="skip-link" href="#screen-editor" onClick=${(e) => { e.preventDefault(); (toEditor()() || document.getElementById("screen-editor")).focus(); }}>Skip to the screen editor</a>` : null}
      <a class="skip-link" href="#builder-panel" onClick=${(e) => { e.preventDefault(); document.getElementById("builder-panel").focus(); }}>Skip to the ${view === "preview" ? "preview" : "main content"}</a>
    </div>
    <header class="bar builder-bar">
      ${back}
      <div class="field title-field"><label for="course-title" class="sr-only">Course title</label>
        <input id="course-title" value=${draft.title} disabled=${conflict} onInput=${(e) => setDraft({ ...draft, title: e.target.value })} /></div>
      ${variant ? html`<span class="badge">Translation: ${state.course.language}</span>` : null}
      <span class=${`save-status ${saveStatus}`} role="status">${saveStatus === "saved" ? icon("check") : null}${statusText}</span>
      <button type="button" class="secondary" onClick=${undo} disabled=${!history.length || conflict} aria-keyshortcuts="Control+Z">${icon("arrow-back-up")} Undo</button>
      ${caps.publish ? html`<button type="button" class="primary" id="publish" onClick=${publish} disabled=${publishing || conflict || busy}>Publish</button>
        <button type="button" class="secondary" onClick=${revert} disabled=${!state.course.hasPublished || conflict || busy}>Revert to published</button>` : null}
      ${caps.narrations ? html`<button type="button" class="secondary" onClick=${() => startJob("/ai/narrate", {}, "Narrating the course")}
        disabled=${busy || conflict || !screens.length}>Narrate</button>` : null}
      ${context.testMode ? html`<span class="test-mode" role="note">${t("testMode")}</span>` : null}
    </header>
    <div class="sr-only" role="status">${spoken.text ? html`<span key=${spoken.n}>${spoken.text}</span>` : null}</div>
    ${conflict ? html`<div class="conflict" role="alert"><p>${message}</p>
      <button type="button" class="primary" onClick=${() => reload()}>Reload the latest version</button></div>` : null}
    <div class="notice-region" role="status">${!conflict && message ? html`<p class="notice">${message}</p>` : null}</div>
    <div class="toast-region" role="status">${deleted ? html`<div class="toast">
      <span>${icon("trash")} Screen deleted: “${deleted.screen.title || "(untitled)"}”</span>
      <button type="button" class="secondary" onClick=${restore}>${icon("arrow-back-up")} Undo</button>
      <button type="button" class="tool icon-only" aria-label="Dismiss" onClick=${() => { setDeleted(null); focusAfter.current = row(selected); }}>${icon("x")}</button>
    </div>` : imageToast ? html`<div class="toast">
      <span>${icon("check")} ${imageToast.text}</span>
      <button type="button" class="secondary" onClick=${imageToast.undo === "screen" ? undoImage : imageToast.undo}>${icon("arrow-back-up")} Undo</button>
      <button type="button" class="tool icon-only" aria-label="Dismiss" onClick=${() => { setImageToast(null); focusAfter.current = () => document.getElementById("builder-panel"); }}>${icon("x")}</button>
    </div>` : null}</div>
    <div class="job-region" aria-live="polite">${job ? html`<section class="job" id="job" tabindex="-1" aria-label="AI progress">
      <p>${job.status === "running" ? icon("loader-2", { className: "spin" }) : job.status === "succeeded" ? icon("circle-check") : icon("alert-circle")}
        <strong>${job.label}</strong> · ${job.status === "running" ? (job.message || "Working…") : job.status === "succeeded" ? "Done" : job.error}</p>
      ${job.screens.length ? html`<ol class="generated" role="log" aria-label="Generated screens">${job.screens.map((s, i) => html`<li key=${i}>${s.title} <small>(${s.type}${s.at ? `, screen ${s.at}` : ""})</small></li>`)}</ol>` : null}
      ${!busy ? html`<button type="button" class="tool" onClick=${() => { setJob(null); focusAfter.current = () => document.getElementById("builder-panel"); }}>Dismiss</button>` : null}
    </section>` : null}</div>
    <div class="tabs" role="tablist" aria-label="Builder views">
      ${tabs.map(([key, label], i) => html`<button type="button" role="tab" key=${key} id=${`tab-${key}`} class=${"tab" + (view === key ? " active" : "")}
        aria-selected=${view === key ? "true" : "false"} aria-controls="builder-panel" tabindex=${tabStop === key ? 0 : -1}
        onFocus=${() => setFocusTab(key)} onBlur=${() => setFocusTab(null)}
        onKeyDown=${(e) => onTabKey(e, i)} onClick=${() => open(key)}>${label}</button>`)}
    </div>
    ${panel}
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
