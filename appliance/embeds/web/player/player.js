// The learner player. It knows nothing about HTTP: everything it records goes through a
// *transport* (see docs/embeds.md), so the same player runs in the embed (EmbedTransport, the
// session API) and in a SCORM package (a SCORM-API transport):
//
//   transport.start()                                   -> Promise<{tracking}>
//   transport.progress({progress, screenId, screenIndex, seconds}) -> Promise<{tracking}>
//   transport.attempt({screenId, screenIndex, answers, seconds})   -> Promise<{score, passed, results}>
//        (quiz screens; for other screens `answers` is omitted and the result has no score)
//   transport.complete({seconds})                       -> Promise<{tracking}>
//   transport.feedback({feedback})                      -> Promise<{tracking}>
//   transport.narration(screenId)     (optional)        -> Promise<blob: URL of the screen's WAV>
//        (screens with `narration` get an audio control when the transport has this method)
//
// Host events go through `emit(type, event, data)` (lib/host.js), separately from the transport.
import { html, useState, useEffect, useRef, useCallback } from "../vendor/index.js";
import { SCREENS } from "./screens.js";
import { icon } from "../vendor/icons/index.js";

function Progress({ value, t }) {
  return html`<div class="progress" role="progressbar" aria-label=${t("progress")}
      aria-valuemin="0" aria-valuemax="100" aria-valuenow=${value}>
    <div class="progress-bar" style=${{ width: `${value}%` }}></div>
  </div>`;
}

// A screen's narration: a native audio player (keyboard operable, labelled) on a blob: URL.
function Narration({ screen, transport, t }) {
  const [url, setUrl] = useState(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    let made = null;
    setUrl(null);
    setFailed(false);
    transport.narration(screen.id).then((u) => {
      made = u;
      if (live) setUrl(u); else URL.revokeObjectURL(u);
    }).catch(() => { if (live) setFailed(true); });
    return () => { live = false; if (made) URL.revokeObjectURL(made); };
  }, [screen.id]);
  const label = t("narration");
  const seconds = Math.round((screen.narration && screen.narration.duration) || 0);
  const length = seconds ? ` (${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")})` : "";
  return html`<section class="narration" aria-label=${label}>
    <span class="narration-label" id="narration-label">${label}${length}</span>
    ${url ? html`<audio controls preload="metadata" src=${url} aria-labelledby="narration-label"></audio>`
      : html`<span class="hint" role="status">${failed ? t("narrationFailed") : t("loading")}</span>`}
  </section>`;
}

export function Player({ course, tracking, options, testMode, transport, emit, t }) {
  const screens = course.screens || [];
  const total = screens.length;
  const alreadyDone = Boolean(tracking && tracking.completed);
  const [phase, setPhase] = useState("start");
  const [index, setIndex] = useState(0);
  const [states, setStates] = useState({});
  const [done, setDone] = useState({});
  const [progress, setProgress] = useState(tracking ? tracking.progress : 0);
  const [summary, setSummary] = useState(tracking || null);
  const [feedbackSent, setFeedbackSent] = useState(false);
  const [busy, setBusy] = useState(false);
  const lastReport = useRef(Date.now());
  const heading = useRef(null);
  const maxProgress = useRef(tracking ? tracking.progress : 0);
  // where focus goes once the next render is on screen (a CSS selector): an action that replaces
  // the control the learner used must never leave focus on <body> (WCAG 2.4.3)
  const focusNext = useRef(null);
  const finished = useRef(false);  // `complete` was recorded in this visit and no answer changed since
  const [closed, setClosed] = useState(false);

  const seconds = () => {
    const now = Date.now();
    const s = Math.round((now - lastReport.current) / 1000);
    lastReport.current = now;
    return s;
  };
  const screen = screens[index];

  useEffect(() => { if (heading.current) heading.current.focus(); }, [phase, index]);
  useEffect(() => {
    if (!focusNext.current) return;
    const target = document.querySelector(focusNext.current);
    // Next is enabled one render after the result (the quiz reports done() from an effect): wait
    if (!target || target.disabled) return;
    focusNext.current = null;
    target.focus();
  });

  const enterScreen = (i) => {
    focusNext.current = null;  // the new screen's heading takes focus
    emit("screen", "start", { screenId: screens[i].id, screenIndex: i, type: screens[i].type });
    setIndex(i);
    setPhase("screen");
  };

  const start = async () => {
    setBusy(true);
    try { await transport.start({ seconds: seconds() }); } finally { setBusy(false); }
    emit("course", "start", { progress: maxProgress.current });
    const resumeAt = alreadyDone ? 0 : Math.min(total - 1, Math.floor((maxProgress.current / 100) * total));
    if (total === 0) return finish();
    enterScreen(Math.max(0, resumeAt));
  };

  const markDone = useCallback((i, value) => {
    setDone((d) => {
      if (value && !d[i]) emit("screen", "complete", { screenId: screens[i].id, screenIndex: i, type: screens[i].type });
      return d[i] === value ? d : { ...d, [i]: value };
    });
  }, [screens]);

  const report = async (i) => {
    const value = Math.round(((i + 1) / total) * 100);
    if (value > maxProgress.current) {
      maxProgress.current = value;
      setProgress(value);
      emit("course", "progress", { progress: value, screenId: screens[i].id, screenIndex: i });
      if (value < 100) await transport.progress({ progress: value, screenId: screens[i].id, screenIndex: i, seconds: seconds() });
    }
  };

  const finish = async () => {
    if (finished.current && summary) { setPhase("finish"); return; }  // back from a review: nothing new to record
    setBusy(true);
    try {
      const result = await transport.complete({ seconds: seconds() });
      const tr = (result && result.tracking) || {};
      setSummary(tr);
      finished.current = true;
      setProgress(100);
      setPhase("finish");
      emit("course", "completed", { progress: 100, score: tr.score ?? null, passed: tr.passed ?? null });
    } finally { setBusy(false); }
  };

  const next = async () => {
    if (!screen || busy || !done[index]) return;
    emit("screen", "end", { screenId: screen.id, screenIndex: index });
    if (screen.type !== "quiz") {
      transport.attempt({ screenId: screen.id, screenIndex: index, seconds: seconds() }).catch(() => {});
    }
    setBusy(true);
    try {
      await report(index);
    } catch (error) {
      // progress only ever grows and the next report carries it again: a lost report must not
      // stop the learner (the session layer already handled an expired session)
      console.warn("progress report failed", error);
    } finally {
      setBusy(false);
    }
    if (index + 1 < total) enterScreen(index + 1);
    else await finish();
  };

  const previous = () => {
    if (index === 0 || busy) return;
    emit("screen", "end", { screenId: screen.id, screenIndex: index });
    enterScreen(index - 1);
  };

  const check = async (chosen) => {
    setBusy(true);
    try {
      const answers = {};
      for (const [q, a] of Object.entries(chosen)) answers[q] = a;
      const result = await transport.attempt({ screenId: screen.id, screenIndex: index, answers, seconds: seconds() });
      setStates((s) => ({ ...s, [index]: { ...(s[index] || {}), result } }));
      finished.current = false;
      // right: on to Next (or Finish); wrong: "Try again" (the result itself is announced by the
      // quiz's status region)
      focusNext.current = result.passed ? ".nav .next" : ".quiz .retry";
      emit("screen", "answer", { screenId: screen.id, screenIndex: index, score: result.score, passed: result.passed });
      if (!result.passed) emit("screen", "failed", { screenId: screen.id, screenIndex: index, score: result.score });
    } finally { setBusy(false); }
  };

  const retry = () => {
    setStates((s) => ({ ...s, [index]: {} }));
    setDone((d) => ({ ...d, [index]: false }));
    focusNext.current = ".quiz input";
    emit("screen", "retry", { screenId: screen.id, screenIndex: index });
  };

  const sendFeedback = async (value) => {
    await transport.feedback({ feedback: value });
    focusNext.current = ".finish-button, .feedback-status";  // the first of these in the page
    setFeedbackSent(true);
    emit("course", "feedback", { feedback: value });
  };

  // the arrow keys act on the screen being shown: the handler reads this render's state through a
  // ref set while rendering, so a key pressed right after focus moved to a new screen (before a
  // re-attached listener would run) is not handled with the previous screen's state and lost
  const keyState = useRef(null);
  keyState.current = { phase, next, previous };
  useEffect(() => {
    const onKey = (e) => {
      const { phase: shown, next: forward, previous: back } = keyState.current;
      if (shown !== "screen") return;
      const tag = (e.target && e.target.tagName) || "";
      if (["INPUT", "TEXTAREA", "SELECT"].includes(tag) && e.target.type !== "checkbox" && e.target.type !== "radio") return;
      if (e.key === "ArrowRight" && !e.altKey) { e.preventDefault(); forward(); }
      if (e.key === "ArrowLeft" && !e.altKey) { e.preventDefault(); back(); }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const back = options.back === "event"
    ? html`<button type="button" class="back" onClick=${() => emit("back", "back", {})}>${icon("arrow-left")} ${t("backToHost")}</button>`
    : null;
  const badge = testMode ? html`<span class="test-mode" role="note">${t("testMode")}</span>` : null;
  const header = html`<header class="bar">
    ${back}<span class="course-title">${course.title}</span>${badge}
    <${Progress} value=${progress} t=${t} />
  </header>`;

  if (phase === "start") {
    const start_ = course.start || {};
    const resuming = !alreadyDone && maxProgress.current > 0;
    return html`<div class="player modern-course-player">${header}
      <main class="cover start" aria-labelledby="title">
        ${course.image ? html`<img class="cover-image" src=${course.image} alt=${start_.image_alt || ""} />` : null}
        <h1 id="title" tabindex="-1" ref=${heading}>${course.title}</h1>
        ${start_.display_description !== false && course.description ? html`<p class="lead">${course.description}</p>` : null}
        ${start_.display_duration !== false ? html`<p class="meta duration">${icon("clock")}<span>${t.count("minute", "minutes", Math.max(1, total))} · ${t.count("screen", "screens", total)}</span></p>` : null}
        <button type="button" class="primary big" disabled=${busy} onClick=${start}>
          ${resuming ? t("resume") : start_.button_label && t.language === "en" ? start_.button_label : t("start")}
        </button>
      </main></div>`;
  }

  if (phase === "finish") {
    // the course's finish settings (appliance/courses/model.py DEFAULT_FINISH): title, description,
    // button (label), feedback; the outcome follows the same passing rule as both transports (every
    // scored quiz at its passing grade: player.course_score, scorm-transport courseScore)
    const f = course.finish || {};
    const showFeedback = options.feedback === true || (options.feedback !== false && f.display_feedback);
    const failed = Boolean(summary && summary.passed === false);
    const title = failed ? t("finishedFailed") : f.display_title === false ? t("done") : (f.title || t("done"));
    const retakeAt = failed
      ? screens.findIndex((s, i) => s.type === "quiz" && s.scored !== false && !(states[i] && states[i].result && states[i].result.passed))
      : -1;
    const retake = () => { setStates((s) => ({ ...s, [retakeAt]: {} })); setDone((d) => ({ ...d, [retakeAt]: false }));
      emit("screen", "retry", { screenId: screens[retakeAt].id, screenIndex: retakeAt }); enterScreen(retakeAt); };
    const buttonLabel = f.button_label && (t.language === "en" || f.button_label !== "Finish") ? f.button_label : t("finish");
    const close = () => {
      setClosed(true);
      emit("course", "finish", { progress: 100, score: summary ? summary.score ?? null : null, passed: summary ? summary.passed ?? null : null });
    };
    const outcome = summary && summary.score != null
      ? html`<p class=${"outcome " + (failed ? "ko" : "ok")}>${icon(failed ? "alert-circle" : "circle-check")}
          <span>${t("score")}: <strong>${Math.round(summary.score)}%</strong>${summary.passed != null ? ` · ${summary.passed ? t("passed") : t("failed")}` : ""}</span></p>`
      : null;
    return html`<div class="player modern-course-player">${header}
      <main class="cover finish" aria-labelledby="title">
        ${icon(failed ? "alert-circle" : "trophy", { className: "cover-icon" })}
        <h1 id="title" tabindex="-1" ref=${heading}>${title}</h1>
        ${f.display_description !== false && f.description ? html`<p class="lead">${f.description}</p>` : null}
        ${outcome}
        <div class="actions">
          ${retakeAt >= 0 ? html`<button type="button" class="primary" onClick=${retake}>${icon("refresh")} ${t("retake")}</button>` : null}
          ${total > 0 ? html`<button type="button" class="secondary review" onClick=${() => enterScreen(0)}>${icon("eye")} ${t("review")}</button>` : null}
          ${f.display_button !== false ? html`<button type="button" class=${retakeAt >= 0 ? "secondary finish-button" : "primary finish-button"} onClick=${close}>${buttonLabel}</button>` : null}
        </div>
        ${showFeedback && !feedbackSent ? html`<div class="feedback-pick" role="group" aria-labelledby="feedback-prompt">
              <p id="feedback-prompt">${t("feedbackPrompt")}</p>
              ${[1, 2, 3, 4, 5].map((n) => html`<button type="button" class="secondary star" key=${n} aria-label=${`${n} / 5`} onClick=${() => sendFeedback(n)}>${icon("star")}<span>${n}</span></button>`)}
            </div>` : null}
        <p class="feedback-status" role="status" tabindex="-1">${feedbackSent ? t("feedbackThanks") : ""}${closed ? ` ${t("finishedNote")}` : ""}</p>
      </main></div>`;
  }

  const Screen = SCREENS[screen.type] || SCREENS.text;
  const state = states[index] || {};
  const setState = (value) => setStates((s) => ({ ...s, [index]: value }));
  const ready = Boolean(done[index]);
  // a failed scored quiz may be left (the course then ends not passed), but "Try again" is the main action
  const failedHere = screen.type === "quiz" && screen.scored !== false && state.result && !state.result.passed;
  return html`<div class="player modern-course-player">${header}
    <main class=${`screen screen-${screen.type}`} aria-labelledby="screen-title" data-screen-id=${screen.id}>
      <p class="meta" id="screen-position">${t("screenOf", { n: index + 1, total })}</p>
      <h1 id="screen-title" tabindex="-1" ref=${heading} aria-describedby="screen-position">${screen.title}</h1>
      ${screen.description ? html`<p class="lead">${screen.description}</p>` : null}
      ${screen.asset ? html`<figure class="screen-image"><img src=${screen.asset} alt=${(screen.content && screen.content.asset_alt) || ""} /></figure>` : null}
      ${screen.narration && transport.narration ? html`<${Narration} key=${`n-${screen.id}`} screen=${screen} transport=${transport} t=${t} />` : null}
      <${Screen} key=${`${screen.id}-${index}`} screen=${screen} state=${state} setState=${setState} t=${t}
        done=${(v) => markDone(index, v)} onCheck=${check} onRetry=${retry} />
    </main>
    <nav class="nav" aria-label=${t("navigation")}>
      <button type="button" class="secondary" onClick=${previous} disabled=${index === 0 || busy}>${t("previous")}</button>
      <button type="button" class=${failedHere ? "secondary next" : "primary next"} onClick=${next} disabled=${!ready || busy}
        aria-keyshortcuts="ArrowRight">${index + 1 === total ? t("finish") : t("next")}</button>
    </nav>
  </div>`;
}
