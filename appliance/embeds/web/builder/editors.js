// Screen editors of the builder: one per screen type of the content model
// (appliance/courses/model.py). Each gets the screen and `change(next)`; the server validates and
// sanitises every save (appliance/courses/validate.py), so nothing here is trusted.
import { html, useEffect, useRef, useState } from "../vendor/index.js";
import { icon } from "../vendor/icons/index.js";

export const TYPE_NAMES = {
  text: "Text", process: "Process", checklist: "Checklist", flashcards: "Flashcards",
  list: "List", quiz: "Quiz", media: "Media",
};

let uid = 0;
const fieldId = (name) => `f-${name}-${++uid}`;

export function Field({ label, value, onInput, multiline, type, hint, max, min, ...rest }) {
  const [id] = useState(() => fieldId(label.replace(/\W+/g, "-").toLowerCase()));
  const common = { id, value: value ?? "", onInput: (e) => onInput(type === "number" ? Number(e.target.value) : e.target.value),
    "aria-describedby": hint ? `${id}-hint` : undefined, ...rest };
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${multiline
      ? html`<textarea rows="3" ...${common}></textarea>`
      : html`<input type=${type || "text"} max=${max} min=${min} ...${common} />`}
    ${hint ? html`<small class="hint" id=${`${id}-hint`}>${hint}</small>` : null}
  </div>`;
}

export function Check({ label, checked, onChange }) {
  return html`<label class="check inline"><input type="checkbox" checked=${Boolean(checked)}
    onChange=${(e) => onChange(e.target.checked)} /> <span>${label}</span></label>`;
}

export const newContent = {
  text: () => ({ html: "<p>Write something here.</p>" }),
  process: () => ({ steps: [{ title: "First step", description: "" }, { title: "Second step", description: "" }] }),
  checklist: () => ({ items: [{ title: "First item" }, { title: "Second item" }] }),
  flashcards: () => ({ cards: [{ front: "Term", back: "Definition" }] }),
  list: () => ({ items: [{ title: "First point", description: "" }] }),
  quiz: () => ({ questions: [newQuestion(1)] }),
  media: () => ({ url: "", alt: "", caption: "" }),
};

function newQuestion(id) {
  return {
    id, question: "New question",
    answers: [{ id: 1, text: "Right answer", correct: true }, { id: 2, text: "Wrong answer", correct: false }],
    feedback: { correct: "", incorrect: "" },
  };
}

const nextId = (list) => list.reduce((m, x) => Math.max(m, Number(x.id) || 0), 0) + 1;

function move(list, i, delta) {
  const j = i + delta;
  if (j < 0 || j >= list.length) return list;
  const copy = list.slice();
  [copy[i], copy[j]] = [copy[j], copy[i]];
  return copy;
}

// A list of rows with add / move / remove, used by process, checklist, list and flashcards.
function Rows({ rows, onChange, render, blank, noun, maxRows }) {
  return html`<div class="rows">
    ${rows.map((row, i) => html`<fieldset class="row" key=${i}>
      <legend>${noun} ${i + 1}</legend>
      ${render(row, (next) => onChange(rows.map((r, k) => (k === i ? next : r))))}
      <div class="row-tools">
        <button type="button" class="tool" aria-label=${`Move ${noun.toLowerCase()} ${i + 1} up`} disabled=${i === 0}
          onClick=${() => onChange(move(rows, i, -1))}>${icon("arrow-up")}</button>
        <button type="button" class="tool" aria-label=${`Move ${noun.toLowerCase()} ${i + 1} down`} disabled=${i === rows.length - 1}
          onClick=${() => onChange(move(rows, i, 1))}>${icon("arrow-down")}</button>
        <button type="button" class="tool danger" aria-label=${`Remove ${noun.toLowerCase()} ${i + 1}`}
          onClick=${() => onChange(rows.filter((_, k) => k !== i))}>${icon("trash")}</button>
      </div>
    </fieldset>`)}
    <button type="button" class="secondary" disabled=${rows.length >= (maxRows || 30)}
      onClick=${() => onChange([...rows, blank()])}>${icon("plus")} Add ${noun.toLowerCase()}</button>
  </div>`;
}

// Rich text: a contenteditable region with a small toolbar. Whatever it produces is reduced by the
// server's sanitiser on save; the sanitised HTML comes back and is shown once the field is left.
export function RichText({ value, onChange, label, refine }) {
  const ref = useRef(null);
  const [id] = useState(() => fieldId("rich"));
  useEffect(() => {
    const el = ref.current;
    if (el && document.activeElement !== el && el.innerHTML !== value) el.innerHTML = value || "";
  }, [value]);
  const exec = (command, arg) => {
    ref.current.focus();
    document.execCommand(command, false, arg);
    onChange(ref.current.innerHTML);
  };
  const link = () => {
    const url = window.prompt("Link address (https://…)");
    if (url) exec("createLink", url);
  };
  // names start with what a sighted user sees ("H2 heading"); all glyphs are vendored SVG icons
  const tools = [
    ["bold", "Bold", "bold"], ["italic", "Italic", "italic"], ["underline", "Underline", "underline"],
    ["h2", "H2 heading", "h-2"], ["h3", "H3 subheading", "h-3"], ["p", "Paragraph", "pilcrow"],
    ["insertUnorderedList", "Bulleted list", "list"], ["insertOrderedList", "Numbered list", "list-numbers"],
    ["link", "Link", "link"],
  ];
  // a toolbar is one tab stop: Left/Right/Home/End move between its buttons (roving tabindex)
  const [active, setActive] = useState(0);
  const bar = useRef(null);
  const onToolKey = (e) => {
    const to = { ArrowLeft: active - 1, ArrowRight: active + 1, Home: 0, End: tools.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const k = (to + tools.length) % tools.length;
    setActive(k);
    bar.current.querySelectorAll("button")[k].focus();
  };
  const run = (cmd) => (cmd === "link" ? link() : ["h2", "h3", "p"].includes(cmd) ? exec("formatBlock", cmd) : exec(cmd));
  return html`<div class="field rich-field">
    <span class="label" id=${id + "-label"}>${label}</span>
    <div class="toolbar" role="toolbar" aria-label="Text formatting" aria-controls=${id} ref=${bar} onKeyDown=${onToolKey}>
      ${tools.map(([cmd, name, glyph], k) => html`<button type="button" class="tool icon-only" key=${cmd} aria-label=${name} title=${name}
        tabindex=${k === active ? 0 : -1} onFocus=${() => setActive(k)}
        onMouseDown=${(e) => e.preventDefault()} onClick=${() => run(cmd)}>${icon(glyph)}</button>`)}
    </div>
    <div ref=${ref} id=${id} class="rich editable" contenteditable="true" role="textbox" aria-multiline="true"
      aria-labelledby=${id + "-label"} onInput=${(e) => onChange(e.currentTarget.innerHTML)}
      onBlur=${(e) => onChange(e.currentTarget.innerHTML)}></div>
    ${refine ? html`<${RefineMenu} refine=${refine} target=${ref} onChange=${onChange} />` : null}
  </div>`;
}

// AI refine of the selected text (or the whole field when nothing is selected). The selection is
// remembered while it is inside the field, so it survives focus moving to this menu (Tab from the
// text, or a click); a click elsewhere in the field forgets it. Choosing an action does nothing by
// itself (arrow keys walk a <select>'s options: WCAG 3.2.2); the Apply button runs it.
function RefineMenu({ refine, target, onChange }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [status, setStatus] = useState("");
  const [id] = useState(() => fieldId("refine"));
  const saved = useRef(null);
  useEffect(() => {
    const remember = () => {
      const el = target.current;
      const selection = window.getSelection();
      if (!el || !selection || !selection.rangeCount) return;
      const range = selection.getRangeAt(0);
      if (!el.contains(range.commonAncestorContainer)) return;  // focus went elsewhere: keep it
      saved.current = selection.isCollapsed ? null : range.cloneRange();
    };
    document.addEventListener("selectionchange", remember);
    return () => document.removeEventListener("selectionchange", remember);
  }, []);
  const run = async (operation) => {
    const el = target.current;
    const selection = window.getSelection();
    let range = null;
    if (selection && selection.rangeCount && el.contains(selection.getRangeAt(0).commonAncestorContainer)
        && !selection.isCollapsed) range = selection.getRangeAt(0).cloneRange();
    else if (saved.current && !saved.current.collapsed && el.contains(saved.current.commonAncestorContainer)) range = saved.current;
    const text = range ? range.toString() : el.innerText;
    if (!text.trim()) { setError("There is no text to refine"); return false; }
    setBusy(true); setError(""); setStatus("");
    try {
      const result = await refine(text, operation);
      if (range) {
        const node = document.createTextNode(result.text);  // text, never markup
        range.deleteContents();
        range.insertNode(node);
        saved.current = null;
      } else {
        el.innerHTML = "";
        for (const part of result.text.split(/\n+/)) {
          const p = document.createElement("p");
          p.textContent = part;
          el.appendChild(p);
        }
      }
      onChange(el.innerHTML);
      setStatus("Text refined");
      return true;
    } catch (err) {
      setError(err.message || "The text could not be refined");
      return false;
    } finally { setBusy(false); }
  };
  const [operation, setOperation] = useState("");
  const apply = async () => {
    if (!operation || busy) return;
    const done = await run(operation);
    if (done) { setOperation(""); target.current.focus(); }  // the result, where the author reads it
  };
  return html`<div class="refine">
    <label id=${id + "-label"} for=${id}>${icon("sparkles")} Refine with AI</label>
    <select id=${id} disabled=${busy} value=${operation} aria-describedby=${error ? id + "-error" : undefined}
      onChange=${(e) => setOperation(e.target.value)}>
      <option value="">Choose an action…</option>
      <option value="shorten">Shorten</option><option value="expand">Expand</option>
      <option value="simplify">Simplify</option><option value="fix_grammar">Fix grammar</option>
      <option value="change_tone">Friendlier tone</option>
    </select>
    <button type="button" class="secondary" disabled=${!operation} aria-disabled=${busy ? "true" : undefined} onMouseDown=${(e) => e.preventDefault()} onClick=${apply}>
      ${busy ? icon("loader-2", { className: "spin" }) : null}${busy ? "Refining…" : "Apply"}</button>
    <span class="sr-only" role="status">${busy ? "Refining the text…" : status}</span>
    ${error ? html`<span class="error" id=${id + "-error"} role="alert">${error}</span>` : null}
  </div>`;
}

function QuizEditor({ screen, change }) {
  const questions = screen.content.questions || [];
  const setQuestions = (next) => change({ ...screen, content: { ...screen.content, questions: next } });
  const setQuestion = (i, q) => setQuestions(questions.map((x, k) => (k === i ? q : x)));
  return html`<div class="quiz-editor">
    <div class="inline-fields">
      <${Field} label="Passing grade (%)" type="number" min="0" max="100" value=${screen.passing_grade ?? 50}
        onInput=${(v) => change({ ...screen, passing_grade: Math.max(0, Math.min(100, Number(v) || 0)) })} />
      <${Check} label="Scored" checked=${screen.scored !== false} onChange=${(v) => change({ ...screen, scored: v })} />
    </div>
    ${questions.map((q, i) => html`<fieldset class="question-edit" key=${q.id}>
      <legend>Question ${i + 1}</legend>
      <${Field} label=${`Question ${i + 1} text`} multiline value=${q.question} onInput=${(v) => setQuestion(i, { ...q, question: v })} />
      ${q.answers.map((a, j) => html`<div class="answer-edit" key=${a.id}>
        <${Field} label=${`Answer ${j + 1} of question ${i + 1}`} value=${a.text}
          onInput=${(v) => setQuestion(i, { ...q, answers: q.answers.map((x, k) => (k === j ? { ...x, text: v } : x)) })} />
        <${Check} label=${`Correct (answer ${j + 1})`} checked=${a.correct}
          onChange=${(v) => setQuestion(i, { ...q, answers: q.answers.map((x, k) => (k === j ? { ...x, correct: v } : x)) })} />
        <button type="button" class="tool danger" aria-label=${`Remove answer ${j + 1} of question ${i + 1}`}
          disabled=${q.answers.length <= 2} onClick=${() => setQuestion(i, { ...q, answers: q.answers.filter((_, k) => k !== j) })}>${icon("trash")}</button>
      </div>`)}
      <button type="button" class="secondary" disabled=${q.answers.length >= 8}
        onClick=${() => setQuestion(i, { ...q, answers: [...q.answers, { id: nextId(q.answers), text: "", correct: false }] })}>Add answer</button>
      <${Field} label=${`Feedback when right (question ${i + 1})`} value=${(q.feedback || {}).correct}
        onInput=${(v) => setQuestion(i, { ...q, feedback: { ...(q.feedback || {}), correct: v } })} />
      <${Field} label=${`Feedback when wrong (question ${i + 1})`} value=${(q.feedback || {}).incorrect}
        onInput=${(v) => setQuestion(i, { ...q, feedback: { ...(q.feedback || {}), incorrect: v } })} />
      ${!q.answers.some((a) => a.correct) ? html`<p class="error" role="alert">Mark at least one answer as correct.</p>` : null}
      <button type="button" class="tool danger" aria-label=${`Remove question ${i + 1}`} disabled=${questions.length <= 1}
        onClick=${() => setQuestions(questions.filter((_, k) => k !== i))}>Remove question</button>
    </fieldset>`)}
    <button type="button" class="secondary" disabled=${questions.length >= 30}
      onClick=${() => setQuestions([...questions, newQuestion(nextId(questions))])}>Add question</button>
  </div>`;
}

function MediaEditor({ screen, change, upload }) {
  const c = screen.content;
  const [status, setStatus] = useState("");
  const [id] = useState(() => fieldId("upload"));
  const onFile = async (e) => {
    const file = e.target.files && e.target.files[0];
    if (!file) return;
    setStatus("Uploading…");
    try {
      const result = await upload(file);
      change({ ...screen, content: { ...c, url: result.url, kind: result.kind } });
      setStatus("Uploaded");
    } catch (err) {
      setStatus(err.message || "Upload failed");
    }
  };
  return html`<div>
    <div class="field"><label for=${id}>Upload an image, video or audio file</label>
      <input id=${id} type="file" accept="image/png,image/jpeg,image/gif,image/webp,image/svg+xml,video/mp4,video/webm,audio/mpeg,audio/ogg,audio/wav" onChange=${onFile} />
      <small class="hint" role="status">${status}</small></div>
    ${c.url && (!c.kind || c.kind === "image") ? html`<img class="thumb" src=${c.url} alt="" />` : null}
    <${Field} label="Alternative text" value=${c.alt} onInput=${(v) => change({ ...screen, content: { ...c, alt: v } })} />
    <${Field} label="Caption" value=${c.caption} onInput=${(v) => change({ ...screen, content: { ...c, caption: v } })} />
  </div>`;
}

// A screen's image (its `asset`, alt text `content.asset_alt`; docs/embeds.md "Images"): made by
// "Illustrate this screen", replaced by the author's own upload, removed. Each of these is one
// undoable draft change that the builder announces with an undo toast (`images.changed`); the alt
// text is edited here like any field. The preview shows the image with the alt text it will have.
function ScreenImage({ screen, change, images }) {
  const c = screen.content || {};
  const [status, setStatus] = useState("");
  const [working, setWorking] = useState(false);
  const [id] = useState(() => fieldId("image-upload"));
  const put = (asset, alt, said, focus) => {
    const { asset_alt: _, ...content } = c;
    const { asset: __, ...rest } = screen;
    images.changed(asset ? { ...rest, asset, content: { ...content, asset_alt: alt } } : { ...rest, content }, said, focus);
  };
  const illustrate = async () => {
    setWorking(true);
    setStatus("Illustrating…");
    try {
      const made = await images.illustrate(screen);
      setStatus("");
      put(made.url, made.alt, `Image added to this screen: ${made.alt || "no description"}`, ".image-alt input");
    } catch (err) {
      setStatus(err.message || "The screen could not be illustrated");
    } finally { setWorking(false); }
  };
  const onFile = async (e) => {
    const file = e.target.files && e.target.files[0];
    if (!file) return;
    setWorking(true);
    setStatus("Uploading…");
    try {
      const made = await images.upload(file);
      if (made.kind !== "image") throw new Error("Choose an image: PNG, JPEG, GIF, WebP or SVG");
      setStatus("");
      put(made.url, "", "Your image was added to this screen. Describe it in the alternative text field.", ".image-alt input");
    } catch (err) {
      setStatus(err.message || "Upload failed");
    } finally { setWorking(false); e.target.value = ""; }
  };
  return html`<fieldset class="screen-image-tools">
    <legend>Screen image</legend>
    ${screen.asset ? html`<figure class="image-preview"><img class="thumb" src=${screen.asset} alt=${c.asset_alt || ""} />
        <figcaption class="hint">Preview${c.asset_alt ? "" : " (decorative: no alternative text)"}</figcaption></figure>
      <div class="image-alt"><${Field} label="Image description (alternative text)" value=${c.asset_alt} maxlength="300"
        hint="What the image shows, for people who cannot see it. Leave it empty only if the image is decorative."
        onInput=${(v) => change({ ...screen, content: { ...c, asset_alt: v } })} /></div>`
      : html`<p class="hint">This screen has no image.</p>`}
    <div class="image-actions">
      ${images.illustrate ? html`<button type="button" class="secondary" data-image="illustrate" disabled=${working}
        onClick=${illustrate}>${icon("sparkles")} ${screen.asset ? "Illustrate again" : "Illustrate this screen"}</button>` : null}
      ${screen.asset ? html`<button type="button" class="tool danger" data-image="remove" disabled=${working}
        onClick=${() => put(null, null, "Image removed from this screen", "[data-image=illustrate], .image-upload input")}>${icon("trash")} Remove image</button>` : null}
    </div>
    <div class="field image-upload"><label for=${id}>${screen.asset ? "Replace it with your own image" : "Or upload your own image"}</label>
      <input id=${id} type="file" accept="image/png,image/jpeg,image/gif,image/webp,image/svg+xml" disabled=${working} onChange=${onFile} /></div>
    <p class="hint" role="status">${status}</p>
  </fieldset>`;
}

export function ScreenEditor({ screen, change, upload, refine, images }) {
  const c = screen.content || {};
  const setContent = (patch) => change({ ...screen, content: { ...c, ...patch } });
  let body = null;
  if (screen.type === "text") {
    body = html`<${RichText} label="Text" value=${c.html} onChange=${(v) => setContent({ html: v })} refine=${refine} />`;
  } else if (screen.type === "process") {
    body = html`<${Rows} noun="Step" rows=${c.steps || []} maxRows=${20} onChange=${(v) => setContent({ steps: v })}
      blank=${() => ({ title: "", description: "" })}
      render=${(row, set) => html`<${Field} label="Step title" value=${row.title} onInput=${(v) => set({ ...row, title: v })} />
        <${Field} label="Step description" multiline value=${row.description} onInput=${(v) => set({ ...row, description: v })} />`} />`;
  } else if (screen.type === "checklist" || screen.type === "list") {
    body = html`<${Rows} noun="Item" rows=${c.items || []} onChange=${(v) => setContent({ items: v })}
      blank=${() => ({ title: "", description: "" })}
      render=${(row, set) => html`<${Field} label="Item title" value=${row.title} onInput=${(v) => set({ ...row, title: v })} />
        <${Field} label="Item description" multiline value=${row.description} onInput=${(v) => set({ ...row, description: v })} />`} />`;
  } else if (screen.type === "flashcards") {
    body = html`<${Rows} noun="Card" rows=${c.cards || []} onChange=${(v) => setContent({ cards: v })}
      blank=${() => ({ front: "", back: "" })}
      render=${(row, set) => html`<${Field} label="Front" value=${row.front} onInput=${(v) => set({ ...row, front: v })} />
        <${Field} label="Back" multiline value=${row.back} onInput=${(v) => set({ ...row, back: v })} />`} />`;
  } else if (screen.type === "quiz") {
    body = html`<${QuizEditor} screen=${screen} change=${change} />`;
  } else if (screen.type === "media") {
    body = html`<${MediaEditor} screen=${screen} change=${change} upload=${upload} />`;
  }
  return html`<div class="screen-editor">
    ${screen.unsupported ? html`<p class="unsupported" role="note"><strong>Check this screen:</strong> it is not supported by the source document. Review it, then clear the flag.
      <button type="button" class="secondary" onClick=${() => { const { unsupported, ...rest } = screen; change(rest); }}>I checked it</button></p>` : null}
    <${Field} label="Screen title" value=${screen.title} onInput=${(v) => change({ ...screen, title: v })} />
    <${Field} label="Screen description" value=${screen.description} onInput=${(v) => change({ ...screen, description: v })} />
    ${body}
    ${images ? html`<${ScreenImage} screen=${screen} change=${change} images=${images} />` : null}
  </div>`;
}
