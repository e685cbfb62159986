// The player's transport inside a SCORM package (docs/scorm.md): the same calls as the embed
// transport, recorded through the LMS's SCORM API instead of the session API.
//
//   findApi(name)           the LMS API object ("API" for SCORM 1.2, "API_1484_11" for 2004), found
//                           the way the SCORM RTE describes: this window, then each parent up to the
//                           top (at most 500 levels), then window.opener and its parents.
//   lmsConnection(version)  a small adapter over either API: init/get/set/commit/finish.
//   localGrader(key)        grades quiz attempts in the browser (static packages carry the answer key).
//   scormTransport({lms, course, grade, mirror})
//                           the transport: lesson/completion status, success status, score
//                           (raw/min/max, scaled on 2004), progress (progress_measure on 2004),
//                           location, session time, and suspend data for resume.
//                           `grade(screenId, answers)` scores a quiz attempt; `mirror(event, body)`
//                           (dynamic packages) also reports each event to the appliance.

export function findApi(name, win = window) {
  const climb = (start) => {
    let w = start;
    for (let depth = 0; w && depth < 500; depth++) {
      try { if (w[name]) return w[name]; } catch (_) { /* a cross-origin frame: keep climbing */ }
      let parent = null;
      try { parent = w.parent; } catch (_) { parent = null; }
      if (!parent || parent === w) break;
      w = parent;
    }
    return null;
  };
  let api = climb(win);
  if (!api) { try { if (win.opener) api = climb(win.opener); } catch (_) { api = null; } }
  if (!api) { try { if (win.top && win.top.opener) api = climb(win.top.opener); } catch (_) { api = null; } }
  return api;
}

const FIELDS = {
  "1.2": {
    status: "cmi.core.lesson_status", location: "cmi.core.lesson_location", suspend: "cmi.suspend_data",
    exit: "cmi.core.exit", sessionTime: "cmi.core.session_time", raw: "cmi.core.score.raw",
    min: "cmi.core.score.min", max: "cmi.core.score.max", entry: "cmi.core.entry",
    learnerId: "cmi.core.student_id", learnerName: "cmi.core.student_name",
  },
  "2004": {
    completion: "cmi.completion_status", success: "cmi.success_status", location: "cmi.location",
    suspend: "cmi.suspend_data", exit: "cmi.exit", sessionTime: "cmi.session_time", raw: "cmi.score.raw",
    min: "cmi.score.min", max: "cmi.score.max", scaled: "cmi.score.scaled", progress: "cmi.progress_measure",
    entry: "cmi.entry", learnerId: "cmi.learner_id", learnerName: "cmi.learner_name",
  },
};

export function lmsConnection(version, win = window) {
  const v12 = version === "1.2";
  const api = findApi(v12 ? "API" : "API_1484_11", win);
  if (!api) return null;
  const call = (method, ...args) => {
    try { return String(api[method](...args)); } catch (_) { return "false"; }
  };
  return {
    version: v12 ? "1.2" : "2004",
    fields: FIELDS[v12 ? "1.2" : "2004"],
    init: () => call(v12 ? "LMSInitialize" : "Initialize", "") === "true",
    get: (key) => call(v12 ? "LMSGetValue" : "GetValue", key),
    set: (key, value) => call(v12 ? "LMSSetValue" : "SetValue", key, String(value)) === "true",
    commit: () => call(v12 ? "LMSCommit" : "Commit", "") === "true",
    finish: () => call(v12 ? "LMSFinish" : "Terminate", "") === "true",
    lastError: () => call(v12 ? "LMSGetLastError" : "GetLastError"),
  };
}

// CMITimespan (1.2: HHHH:MM:SS.SS) and ISO 8601 durations (2004: PT#H#M#S)
export function sessionTime(version, seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (version === "1.2") return `${String(Math.min(h, 9999)).padStart(4, "0")}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}.00`;
  return `PT${h}H${m}M${sec}S`;
}

// Grading in the browser, the same rules as the appliance's (appliance/embeds/player.py `grade`):
// a question is right when the chosen answers are exactly its correct answers; the screen's score is
// the percent of questions right; passed when it reaches the screen's passing grade.
export function localGrader(key) {
  return async (screenId, answers) => {
    const screen = key[String(screenId)];
    if (!screen) throw new Error("not a quiz screen of this course");
    const results = [];
    let right = 0;
    for (const q of screen.questions) {
      const raw = (answers || {})[String(q.id)];
      const chosen = new Set((Array.isArray(raw) ? raw : raw == null ? [] : [raw]).map(String));
      const correct = q.correct.map(String);
      const ok = chosen.size > 0 && chosen.size === correct.length && correct.every((c) => chosen.has(c));
      if (ok) right += 1;
      results.push({ questionId: q.id, correct: ok, correctAnswers: [...correct].sort(),
        feedback: (q.feedback || {})[ok ? "correct" : "incorrect"] || "" });
    }
    const score = screen.questions.length ? Math.round((100 * right) / screen.questions.length) : 100;
    const passingGrade = screen.passingGrade || 0;
    return { score, passed: score >= passingGrade, passingGrade, results };
  };
}

function readSuspend(lms) {
  try {
    const value = JSON.parse(lms.get(lms.fields.suspend) || "{}");
    return value && typeof value === "object" ? value : {};
  } catch (_) { return {}; }
}

export function scormTransport({ lms, course, grade, mirror }) {
  const f = lms.fields;
  const v12 = lms.version === "1.2";
  const scored = (course.screens || []).filter((s) => s.type === "quiz" && s.scored !== false);
  const saved = readSuspend(lms);
  // suspend data: {v, p: progress percent, b: {screenId: best score}, d: completed}
  const state = { v: 1, p: Number(saved.p) || 0, b: saved.b && typeof saved.b === "object" ? saved.b : {}, d: Boolean(saved.d) };
  const openedAt = Date.now();
  let finished = false;
  const report = (event, body) => (mirror ? mirror(event, body).catch(() => null) : Promise.resolve(null));

  const courseScore = () => {
    if (!scored.length || scored.some((s) => state.b[String(s.id)] == null)) return { score: null, passed: null };
    const scores = scored.map((s) => Number(state.b[String(s.id)]));
    const passed = scored.every((s) => Number(state.b[String(s.id)]) >= (s.passing_grade || 0));
    return { score: Math.round((100 * scores.reduce((a, b) => a + b, 0)) / scores.length) / 100, passed };
  };
  const tracking = () => ({ progress: state.p, completed: state.d ? true : null, ...courseScore() });

  const save = () => {
    lms.set(f.suspend, JSON.stringify(state));
    if (!v12) lms.set(f.progress, (Math.min(100, state.p) / 100).toFixed(2));
    lms.commit();
  };
  const writeScore = () => {
    const { score, passed } = courseScore();
    if (score == null) return;
    lms.set(f.min, 0);
    lms.set(f.max, 100);
    lms.set(f.raw, Math.round(score * 100) / 100);
    if (!v12) {
      lms.set(f.scaled, (score / 100).toFixed(4));
      lms.set(f.success, passed ? "passed" : "failed");
    }
  };
  const writeTime = () => lms.set(f.sessionTime, sessionTime(lms.version, (Date.now() - openedAt) / 1000));

  return {
    tracking,
    learner: () => ({ id: lms.get(f.learnerId), name: lms.get(f.learnerName) }),
    async start(body = {}) {
      if (v12) {
        const status = lms.get(f.status);
        if (!["completed", "passed", "failed"].includes(status)) lms.set(f.status, "incomplete");
      } else if (lms.get(f.completion) !== "completed") {
        lms.set(f.completion, "incomplete");
      }
      lms.set(f.exit, "suspend");  // resume where the learner left off unless the course completes
      save();
      await report("start", body);
      return { tracking: tracking() };
    },
    async progress(body) {
      state.p = Math.max(state.p, Math.min(100, Number(body.progress) || 0));
      lms.set(f.location, String(body.screenIndex ?? ""));
      save();
      await report("progress", body);
      return { tracking: tracking() };
    },
    async attempt(body) {
      if (body.answers === undefined) {  // a non-quiz screen finished: nothing to grade
        await report("attempt", body);
        return {};
      }
      const result = await grade(body.screenId, body.answers, body);
      const key = String(body.screenId);
      state.b[key] = Math.max(Number(state.b[key] ?? 0), Number(result.score));
      writeScore();
      save();
      return result;
    },
    async complete(body = {}) {
      state.p = 100;
      state.d = true;
      const { score, passed } = courseScore();
      writeScore();
      if (v12) lms.set(f.status, score == null ? "completed" : passed ? "passed" : "failed");
      else {
        lms.set(f.completion, "completed");
        if (score == null) lms.set(f.success, "unknown");
      }
      lms.set(f.exit, v12 ? "" : "normal");
      writeTime();
      save();
      await report("complete", body);
      return { tracking: tracking() };
    },
    async feedback(body) {
      if (v12) lms.set("cmi.comments", `Feedback: ${body.feedback}/5`);
      else lms.set("cmi.comments_from_learner.0.comment", `Feedback: ${body.feedback}/5`);
      lms.commit();
      await report("feedback", body);
      return { tracking: tracking() };
    },
    // the SCO's last word: session time, commit, LMSFinish/Terminate (once)
    terminate() {
      if (finished) return;
      finished = true;
      writeTime();
      lms.commit();
      lms.finish();
    },
  };
}
