// The builder's panels beside the outline and editor (builder.js): AI tools, a course from a prompt,
// from a document or presentation, translations, theme and settings, and the preview as a learner.
// Each is a section of the builder's <main>; its heading is an h2 (the builder has the one h1).
import { html, useState, useEffect } from "../vendor/index.js";
import { icon } from "../vendor/icons/index.js";
import { applyTheme } from "../lib/boot.js";
import { Player } from "../player/player.js";
import { TYPE_NAMES, Field, Check } from "./editors.js";

export function AiScreenTools({ state, busy, run }) {
  const [kind, setKind] = useState("text");
  const [prompt, setPrompt] = useState("");
  const [fromCourse, setFromCourse] = useState(false);
  const [questions, setQuestions] = useState(3);
  const screens = state.course.screens || [];
  return html`<details class="ai-tools"><summary>${icon("sparkles")} Generate a screen or quiz with AI</summary>
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

// Into a course that already has screens the author chooses Replace or Append (nothing is chosen for
// them); appended screens never repeat a title (the server numbers them: service.unique_titles).
export function AiCourse({ busy, run, existing }) {
  const [form, setForm] = useState({ prompt: "", audience: "employees", familiarity: "beginner", tone: "professional", screenCount: 5 });
  const [mode, setMode] = useState(null);
  const set = (k) => (v) => setForm({ ...form, [k]: v });
  const choose = existing > 0;
  return html`<section class="panel" aria-labelledby="ai-title">
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
    ${choose ? html`<fieldset class="mode-choice">
      <legend>This course already has ${existing} screen${existing === 1 ? "" : "s"}. What should happen to them?</legend>
      <label class="check"><input type="radio" name="ai-mode" value="replace" checked=${mode === "replace"} onChange=${() => setMode("replace")} />
        <span><strong>Replace them</strong> with the generated screens (Undo brings them back)</span></label>
      <label class="check"><input type="radio" name="ai-mode" value="append" checked=${mode === "append"} onChange=${() => setMode("append")} />
        <span><strong>Append</strong> the generated screens after them (a title the course already has is numbered)</span></label>
    </fieldset>` : null}
    <button type="button" class="primary" disabled=${busy || !form.prompt.trim() || (choose && !mode)}
      onClick=${() => run({ ...form, prompt: form.prompt.trim(), ...(choose ? { mode } : {}) })}>${icon("sparkles")} Generate course</button>
  </section>`;
}

export function DocumentFlow({ kind, caps, session, q, busy, run }) {
  const [file, setFile] = useState(null);
  const [prompt, setPrompt] = useState("");
  const [count, setCount] = useState(kind === "document" ? 5 : "");  // presentations: "" = one screen per slide group
  const [status, setStatus] = useState("");
  const noun = kind === "document" ? "document" : "presentation";
  if (!caps.documents) {
    return html`<section class="panel"><h2>From a ${noun}</h2><p role="status">Turning a ${noun} into a course is not available on this appliance yet.</p></section>`;
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
  return html`<section class="panel" aria-labelledby="doc-title">
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
  </section>`;
}

export function Translate({ state, busy, run, open, courseId }) {
  const [language, setLanguage] = useState("fr");
  return html`<section class="panel" aria-labelledby="tr-title">
    <h2 id="tr-title">Translations</h2>
    <p class="hint">A translation is a language variant of this course: review and publish it before learners see it.</p>
    <ul class="variants">${(state.variants || []).map((v) => html`<li key=${v.id}>
      <strong>${v.language}</strong> ${v.source ? "(source)" : ""} · ${v.published ? "published" : "draft"}
      ${v.id !== courseId ? html`<button type="button" class="secondary" onClick=${() => open(v.id)}>Review ${v.language}</button>` : html` <em>(open)</em>`}
    </li>`)}</ul>
    <${Field} label="Translate into (language code)" value=${language} onInput=${setLanguage} />
    <button type="button" class="primary" disabled=${busy || !language.trim()} onClick=${() => run(language.trim())}>Translate the course</button>
  </section>`;
}

// The course's cover (docs/embeds.md "Images"): illustrate, upload, remove (`cover`, builder.js:
// each set on the server at once with an undo toast) and its alt text (`start.image_alt`, a field).
function CoverImage({ cover, start, setStart }) {
  const [status, setStatus] = useState("");
  const [working, setWorking] = useState(false);
  const run = async (work, label) => {
    setWorking(true);
    setStatus(label);
    try { await work(); setStatus(""); } catch (err) { setStatus(err.message || "The cover could not be changed"); } finally { setWorking(false); }
  };
  return html`<fieldset class="screen-image-tools cover-tools"><legend>Course cover</legend>
    ${cover.image ? html`<figure class="image-preview"><img class="thumb" src=${cover.image} alt=${start.image_alt || ""} />
        <figcaption class="hint">Preview${start.image_alt ? "" : " (decorative: no alternative text)"}</figcaption></figure>
      <div class="image-alt"><${Field} label="Cover description (alternative text)" value=${start.image_alt} maxlength="300"
        hint="What the cover shows, for people who cannot see it. Leave it empty only if it is decorative."
        onInput=${(v) => setStart({ image_alt: v })} /></div>`
      : html`<p class="hint">This course has no cover image.</p>`}
    <div class="image-actions">
      ${cover.illustrate ? html`<button type="button" class="secondary" data-cover="illustrate" disabled=${working}
        onClick=${() => run(cover.illustrate, "Illustrating…")}>${icon("sparkles")} ${cover.image ? "Illustrate the cover again" : "Illustrate the cover"}</button>` : null}
      ${cover.image ? html`<button type="button" class="tool danger" data-cover="remove" disabled=${working}
        onClick=${() => run(cover.remove, "")}>${icon("trash")} Remove cover</button>` : null}
    </div>
    <div class="field image-upload"><label for="cover-upload">${cover.image ? "Replace it with your own image" : "Or upload your own cover image"}</label>
      <input id="cover-upload" type="file" accept="image/png,image/jpeg,image/gif,image/webp,image/svg+xml" disabled=${working}
        onChange=${(e) => { const file = e.target.files && e.target.files[0]; if (file) run(() => cover.upload(file), "Uploading…"); }} /></div>
    <p class="hint" role="status">${status}</p>
  </fieldset>`;
}

export function Settings({ draft, setDraft, themes, disabled, options, cover }) {
  const start = draft.start || {};
  const finish = draft.finish || {};
  const setStart = (patch) => setDraft({ ...draft, start: { ...start, ...patch } });
  const setFinish = (patch) => setDraft({ ...draft, finish: { ...finish, ...patch } });
  const theme = themes.find((x) => x.id === draft.themeId);
  useEffect(() => { applyTheme(theme ? { colours: theme.colours, font: theme.font } : null, options); }, [draft.themeId]);
  return html`<section class="panel settings"><fieldset class="plain" disabled=${disabled}>
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
    ${cover ? html`<${CoverImage} cover=${cover} start=${start} setStart=${setStart} />` : null}
    <h2>Finish screen</h2>
    <${Field} label="Finish title" value=${finish.title} onInput=${(v) => setFinish({ title: v })} />
    <${Field} label="Finish message" multiline value=${finish.description} onInput=${(v) => setFinish({ description: v })} />
    <${Check} label="Ask learners for feedback" checked=${Boolean(finish.display_feedback)} onChange=${(v) => setFinish({ display_feedback: v })} />
    ${options.feedback === false ? html`<p class="hint">The host has switched course feedback off.</p>` : null}
  </fieldset></section>`;
}

// Preview as a learner: the real player on the saved draft, with a transport that records nothing.
export function Preview({ session, q, context, t }) {
  const [course, setCourse] = useState(null);
  const [error, setError] = useState("");
  const [round, setRound] = useState(0);
  useEffect(() => {
    session.get(q("/preview")).then((c) => { applyTheme(c.theme, context.options); setCourse(c); }).catch((e) => setError(e.message));
  }, [round]);
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!course) return html`<p class="loading">Loading the preview…</p>`;
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
  return html`<section class="preview" aria-label="Preview as a learner">
    <p class="hint preview-note">${icon("eye")} Preview: nothing is recorded. <button type="button" class="tool" onClick=${() => { setCourse(null); setRound(round + 1); }}>${icon("refresh")} Restart preview</button></p>
    <${Player} key=${round} course=${course} tracking=${null} options=${{ ...context.options, back: "hidden" }}
      testMode=${false} transport=${transport} emit=${() => {}} t=${t} />
  </section>`;
}
