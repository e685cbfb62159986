// The player's transport inside a SCORM package (docs/scorm.md): the same calls as the embed
// transport, recorded through the LMS's SCORM API instead of the session API.
//
//   findApi(name)           the LMS API object ("API" for SCORM 1.2, "API_1484_11" for 2004), found
//                           the way the SCORM RTE describes: this window, then each parent up to the
//                           top (at most 500 levels), then window.opener and its parents.
//   lmsConnection(version)  a small adapter over either API: init/get/set/commit/finish.
//   localGrader(key)        grades quiz attempts in the browser (static packages carry the answer key).
//   scormTransport({lms, course, grade, mirror, clip})
//                           the transport: lesson/completion status, success status, score
//                           (raw/min/max, scaled on 2004), progress (progress_measure on 2004),
//                           location, session time, and suspend data for resume.
//                           `grade(screenId, answers)` scores a quiz attempt; `mirror(event, body)`
//                           (dynamic packages) also reports each event to the appliance.
//                           `clip(screenId)` (dynamic packages) fetches a screen's narration.
//   interactionRecords(...) one quiz attempt's cmi.interactions records (see below), written by attempt().

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

// cmi.interactions (docs/scorm.md): one record per question per quiz attempt, appended at
// `cmi.interactions._count` (a journal: retries add records, earlier ones stay). Ids are
// `screen-<screenId>-q-<questionId>`, type `choice`. Responses in each version's syntax:
//   1.2:  single characters a-z then 0-9 by the answer's position, comma separated (at most 36
//         answers, else the response and pattern are left out); result correct | wrong; time HH:MM:SS
//         (local); weighting 1; latency HHHH:MM:SS.SS; correct_responses.0.pattern the same syntax.
//   2004: short identifiers `answer-<answerId>` joined by `[,]` (at most 36); result correct | incorrect;
//         timestamp YYYY-MM-DDThh:mm:ss.ssZ; description the question text (at most 250 characters).
// `latency` is the time the learner spent on the quiz screen before checking (the attempt's seconds).
const CHARS_12 = "abcdefghijklmnopqrstuvwxyz0123456789";
const ident = (value, max) => String(value ?? "").replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, max);
const pad2 = (n) => String(n).padStart(2, "0");

export function interactionRecords(version, screen, answers, result, seconds, now = new Date()) {
  const v12 = version === "1.2";
  const byQuestion = {};
  for (const r of (result && result.results) || []) byQuestion[String(r.questionId)] = r;
  const questions = ((screen && screen.content) || {}).questions || [];
  const records = [];
  for (const q of questions) {
    const r = byQuestion[String(q.id)];
    if (!r) continue;
    const options = q.answers || [];
    const position = {};
    options.forEach((a, i) => { position[String(a.id)] = i; });
    const raw = (answers || {})[String(q.id)];
    const chosen = [...new Set((Array.isArray(raw) ? raw : raw == null ? [] : [raw]).map(String))]
      .filter((id) => id in position);
    const correct = (r.correctAnswers || []).map(String).filter((id) => id in position);
    const order = (ids) => [...ids].sort((a, b) => position[a] - position[b]);
    const encode = v12
      ? (ids) => (options.length <= CHARS_12.length ? order(ids).map((id) => CHARS_12[position[id]]).join(",") : null)
      : (ids) => (ids.length <= 36 ? order(ids).map((id) => `answer-${ident(id, 60) || position[id]}`).join("[,]") : null);
    const fields = [["id", `screen-${ident(screen.id, 60)}-q-${ident(q.id, 60)}`], ["type", "choice"]];
    const response = chosen.length ? encode(chosen) : null;
    const pattern = correct.length ? encode(correct) : null;
    if (v12) {
      fields.push(["time", `${pad2(now.getHours())}:${pad2(now.getMinutes())}:${pad2(now.getSeconds())}`]);
      fields.push(["weighting", "1"]);
      if (response) fields.push(["student_response", response]);
      if (pattern) fields.push(["correct_responses.0.pattern", pattern]);
      fields.push(["result", r.correct ? "correct" : "wrong"]);
    } else {
      fields.push(["timestamp", `${now.toISOString().slice(0, 22)}Z`]);
      fields.push(["weighting", "1"]);
      const text = String(q.question || "").replace(/\s+/g, " ").trim().replace(/^\{/, "(").slice(0, 250);
      if (text) fields.push(["description", text]);
      if (response) fields.push(["learner_response", response]);
      if (pattern) fields.push(["correct_responses.0.pattern", pattern]);
      fields.push(["result", r.correct ? "correct" : "incorrect"]);
    }
    fields.push(["latency", sessionTime(version, Number(seconds) || 0)]);
    records.push(fields);
  }
  return records;
}

function writeInteractions(lms, records) {
  let n = Number.parseInt(lms.get("cmi.interactions._count"), 10);
  if (!Number.isFinite(n) || n < 0) n = 0;
  for (const fields of records) {
    for (const [name, value] of fields) lms.set(`cmi.interactions.${n}.${name}`, value);
    n += 1;
  }
}

function readSuspend(lms) {
  try {
    const value = JSON.parse(lms.get(lms.fields.suspend) || "{}");
    return value && typeof value === "object" ? value : {};
  } catch (_) { return {}; }
}

export function scormTransport({ lms, course, grade, mirror, clip }) {
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
      const screen = (course.screens || []).find((s) => String(s.id) === key);
      writeInteractions(lms, interactionRecords(lms.version, screen, body.answers, result, body.seconds));
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
    // a narrated screen's clip: static packages carry it as a file (`narration.file`, a relative URL);
    // dynamic packages pass `clip(screenId)`, which fetches it from the appliance (a blob: URL)
    narration: async (screenId) => {
      const screen = (course.screens || []).find((s) => String(s.id) === String(screenId));
      if (screen && screen.narration && screen.narration.file) return screen.narration.file;
      if (clip) return clip(screenId);
      throw new Error("narration unavailable");
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
