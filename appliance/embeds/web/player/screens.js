// One renderer per screen type of the content model (appliance/courses/model.py). Each gets the
// screen, the translator and `state`/`setState` for its own interaction state, and reports
// `done(true)` once the screen's requirement is met (view, all ticked, all flipped, quiz answered).
import { html, useEffect } from "../vendor/index.js";
import { icon } from "../vendor/icons/index.js";

function Items({ items, ordered }) {
  const Tag = ordered ? "ol" : "ul";
  return html`<${Tag} class="items">
    ${(items || []).map((item, i) => html`<li key=${i}>
      <strong>${item.title}</strong>${item.description ? html`<p>${item.description}</p>` : null}
    </li>`)}
  </${Tag}>`;
}

function Text({ screen, done }) {
  useEffect(() => done(true), [screen.id]);
  return html`<div class="rich" dangerouslySetInnerHTML=${{ __html: screen.content.html || "" }}></div>`;
}

function List({ screen, done }) {
  useEffect(() => done(true), [screen.id]);
  return html`<${Items} items=${screen.content.items} />`;
}

function Process({ screen, done, t }) {
  useEffect(() => done(true), [screen.id]);
  const steps = screen.content.steps || [];
  return html`<ol class="process">
    ${steps.map((s, i) => html`<li key=${i} class="step">
      <span class="step-n" aria-hidden="true">${i + 1}</span>
      <div><h2><span class="sr-only">${t("step", { n: i + 1 })}: </span>${s.title}</h2>${s.description ? html`<p>${s.description}</p>` : null}</div>
    </li>`)}
  </ol>`;
}

function Checklist({ screen, state, setState, done, t }) {
  const items = screen.content.items || [];
  const ticked = state.ticked || [];
  useEffect(() => done(items.length === 0 || ticked.length === items.length), [ticked.length]);
  const toggle = (i) => {
    const next = ticked.includes(i) ? ticked.filter((x) => x !== i) : [...ticked, i];
    setState({ ...state, ticked: next });
  };
  return html`<fieldset class="checklist">
    <legend class="hint">${t("checklistHint")}</legend>
    ${items.map((item, i) => html`<label key=${i} class="check">
      <input type="checkbox" checked=${ticked.includes(i)} onChange=${() => toggle(i)} />
      <span><strong>${item.title}</strong>${item.description ? html`<br/>${item.description}` : null}</span>
    </label>`)}
  </fieldset>`;
}

function Flashcards({ screen, state, setState, done, t }) {
  const cards = screen.content.cards || [];
  const flipped = state.flipped || [];
  const seen = state.seen || [];
  useEffect(() => done(cards.length === 0 || seen.length === cards.length), [seen.length]);
  const flip = (i) => {
    const isFlipped = flipped.includes(i);
    setState({
      ...state,
      flipped: isFlipped ? flipped.filter((x) => x !== i) : [...flipped, i],
      seen: seen.includes(i) ? seen : [...seen, i],
    });
  };
  return html`<div>
    <p class="hint">${t("flashcardsHint")}</p>
    <div class="cards">
      ${cards.map((card, i) => {
        const showBack = flipped.includes(i);
        return html`<button key=${i} type="button" class=${"card" + (showBack ? " flipped" : "")}
          aria-pressed=${showBack ? "true" : "false"} onClick=${() => flip(i)}>
          <span class="card-face" aria-live="polite">${showBack ? card.back : card.front}</span>
          <span class="sr-only">${` (${t("flip")} ${i + 1}: ${showBack ? t("back") : t("front")})`}</span>
        </button>`;
      })}
    </div>
  </div>`;
}

function Media({ screen, done }) {
  useEffect(() => done(true), [screen.id]);
  const c = screen.content;
  let body;
  if (c.kind === "video") body = html`<video controls preload="metadata" src=${c.url} aria-label=${c.alt || screen.title}></video>`;
  else if (c.kind === "audio") body = html`<audio controls preload="metadata" src=${c.url} aria-label=${c.alt || screen.title}></audio>`;
  else body = html`<img src=${c.url} alt=${c.alt || ""} />`;
  return html`<figure class="media">${body}${c.caption ? html`<figcaption>${c.caption}</figcaption>` : null}</figure>`;
}

// After "Check answer" the answers become a read-only review: each row says in words and with an
// icon (never by colour alone) which answer was the learner's and which is correct, at full
// contrast. The result goes into a status region that is in the DOM from the start (empty), so
// screen readers announce it; the player then moves focus to "Try again" or to Next.
function Quiz({ screen, state, setState, done, t, onCheck, onRetry }) {
  const questions = screen.content.questions || [];
  const chosen = state.chosen || {};
  const result = state.result || null;
  const answeredAll = questions.every((q) => (chosen[q.id] || []).length > 0);
  useEffect(() => done(Boolean(result)), [Boolean(result)]);
  const pick = (q, answerId) => {
    if (result) return;
    const current = chosen[q.id] || [];
    const next = q.multiple
      ? (current.includes(answerId) ? current.filter((a) => a !== answerId) : [...current, answerId])
      : [answerId];
    setState({ ...state, chosen: { ...chosen, [q.id]: next } });
  };
  const byQuestion = {};
  for (const r of (result && result.results) || []) byQuestion[r.questionId] = r;
  const verdict = (r) => (r.correct ? t("correct") : t("incorrect"));
  return html`<div class="quiz">
    ${screen.passing_grade ? html`<p class="hint">${t("passmark", { n: screen.passing_grade })}</p>` : null}
    ${questions.map((q) => {
      const r = byQuestion[q.id];
      const name = `q-${screen.id}-${q.id}`;
      const mine = chosen[q.id] || [];
      if (r) {
        return html`<fieldset key=${q.id} class="question checked" aria-describedby=${name + "-fb"}>
          <legend>${q.question}</legend>
          <ul class="answers-review">
            ${q.answers.map((a) => {
              const isChosen = mine.includes(a.id);
              const isRight = r.correctAnswers.includes(String(a.id));
              const cls = "answer" + (isRight ? " right" : "") + (isChosen && !isRight ? " wrong" : "") + (isChosen ? " chosen" : "");
              return html`<li key=${a.id} class=${cls}>
                <span class="answer-mark">${isRight ? icon("circle-check") : isChosen ? icon("circle-x") : null}</span>
                <span class="answer-text">${a.text}</span>
                <span class="answer-tags">
                  ${isChosen ? html`<span class="tag">${t("yourAnswer")}</span>` : null}
                  ${isRight ? html`<span class="tag tag-right">${t("correctAnswer")}</span>` : null}
                </span>
              </li>`;
            })}
          </ul>
          <p id=${name + "-fb"} class=${"feedback " + (r.correct ? "ok" : "ko")}>
            ${icon(r.correct ? "circle-check" : "circle-x")}
            <span><strong>${verdict(r)}.</strong> ${r.feedback}</span></p>
        </fieldset>`;
      }
      return html`<fieldset key=${q.id} class="question">
        <legend>${q.question}</legend>
        ${q.answers.map((a) => html`<label key=${a.id} class="answer">
            <input type=${q.multiple ? "checkbox" : "radio"} name=${name} checked=${mine.includes(a.id)}
              onChange=${() => pick(q, a.id)} />
            <span>${a.text}</span>
          </label>`)}
      </fieldset>`;
    })}
    <div class="quiz-status" role="status">
      ${result ? html`<p class=${"outcome " + (result.passed ? "ok" : "ko")}>
          ${icon(result.passed ? "circle-check" : "alert-circle")}
          <strong>${t("score")}: ${result.score}% · ${result.passed ? t("passed") : t("failed")}</strong></p>` : null}
    </div>
    ${result
      ? (!result.passed ? html`<button type="button" class="primary retry" onClick=${onRetry}
          aria-describedby=${questions.map((q) => `q-${screen.id}-${q.id}-fb`).join(" ")}>${icon("refresh")} ${t("retry")}</button>` : null)
      : html`<div class="quiz-actions">
          ${!answeredAll ? html`<p class="hint">${t("quizHint")}</p>` : null}
          <button type="button" class="primary check-answer" disabled=${!answeredAll} onClick=${() => onCheck(chosen)}>${t("check")}</button>
        </div>`}
  </div>`;
}

export const SCREENS = {
  text: Text,
  list: List,
  process: Process,
  checklist: Checklist,
  flashcards: Flashcards,
  media: Media,
  quiz: Quiz,
};
