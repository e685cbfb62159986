// The player's transport inside a cmi5 package (docs/xapi.md, cmi5): the same calls as the embed
// and SCORM transports, recorded as cmi5-defined xAPI statements sent to the LMS's LRS.
//
//   launchParameters(search)  the five parameters a cmi5 LMS puts on the AU's launch URL: endpoint,
//                             fetch, actor (JSON), registration, activityId; null when one is missing.
//   cmi5Session(params)       the launch: POST the fetch URL once for the auth token, GET the
//                             LMS.LaunchData state (contextTemplate, launchMode, masteryScore,
//                             returnURL, moveOn) and this AU's own OUTCOME_STATE document (what an
//                             earlier session of the registration already reported), send `initialized`.
//   cmi5Transport({session, course, grade})
//                             start/progress/attempt/complete/feedback/narration for the player;
//                             `completed`, then `passed` or `failed` (course score, or the LMS's
//                             masteryScore when it gives one) on completion, `terminated` at the end.
// cmi5 allows one `completed` and one `passed` per registration: a relaunch that finishes again
// sends neither twice (the outcome document in the LRS's State API remembers them across sessions).
// Statements carry the LaunchData contextTemplate (its session id and grouping), the registration,
// the cmi5 category (and moveon on completed/passed/failed), and an id made in the browser.
import { localGrader } from "./scorm-transport.js";

export { localGrader };

const VERB = (name) => ({ id: `http://adlnet.gov/expapi/verbs/${name}`, display: { "en-US": name } });
const CMI5 = { id: "https://w3id.org/xapi/cmi5/context/categories/cmi5" };
const MOVEON = { id: "https://w3id.org/xapi/cmi5/context/categories/moveon" };
const XAPI_VERSION = "1.0.3";
export const OUTCOME_STATE = "https://coassemble-appliance/cmi5/outcome";

export function launchParameters(search) {
  const q = new URLSearchParams(search);
  const names = ["endpoint", "fetch", "actor", "registration", "activityId"];
  if (names.some((n) => !q.get(n))) return null;
  let actor;
  try { actor = JSON.parse(q.get("actor")); } catch (_) { return null; }
  return { endpoint: q.get("endpoint").replace(/\/$/, ""), fetch: q.get("fetch"), actor,
    registration: q.get("registration"), activityId: q.get("activityId") };
}

const duration = (ms) => `PT${Math.max(0, Math.round(ms / 10) / 100)}S`;

export async function cmi5Session(params) {
  // the fetch URL answers once: its token authorises every request of this session
  const answer = await fetch(params.fetch, { method: "POST", credentials: "omit", cache: "no-store" });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok || !body["auth-token"]) throw new Error(`the LMS refused the launch (${body["error-text"] || answer.status})`);
  const auth = `Basic ${body["auth-token"]}`;
  const headers = { Authorization: auth, "X-Experience-API-Version": XAPI_VERSION };
  const state = new URLSearchParams({ stateId: "LMS.LaunchData", activityId: params.activityId,
    agent: JSON.stringify(params.actor), registration: params.registration });
  const launch = await fetch(`${params.endpoint}/activities/state?${state}`, { headers, credentials: "omit", cache: "no-store" });
  if (!launch.ok) throw new Error(`the LMS's LaunchData could not be read (${launch.status})`);
  const launchData = await launch.json();
  const outcomeAt = `${params.endpoint}/activities/state?${new URLSearchParams({ ...Object.fromEntries(state), stateId: OUTCOME_STATE })}`;
  // the outcome document only prevents a second completed/passed: an LRS that refuses it (its State
  // API is required, but not every one lets an AU write its own documents) must not stop the course
  const known = await fetch(outcomeAt, { headers, credentials: "omit", cache: "no-store" }).catch(() => null);
  if (known && !known.ok && known.status !== 404) console.warn(`cmi5: the outcome state could not be read (${known.status})`);
  const outcome = known && known.ok ? await known.json().catch(() => ({})) : {};
  const saveOutcome = async (value) => {
    Object.assign(outcome, value);
    const saved = await fetch(outcomeAt, { method: "PUT", credentials: "omit",
      headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(outcome) }).catch(() => null);
    if (!saved || !saved.ok) console.warn(`cmi5: the outcome state could not be saved (${saved ? saved.status : "network"})`);
  };
  const startedAt = Date.now();
  const send = async (verb, { result, moveOn = false } = {}) => {
    const template = launchData.contextTemplate || {};
    const activities = { ...(template.contextActivities || {}) };
    activities.category = [...(activities.category || []), CMI5, ...(moveOn ? [MOVEON] : [])];
    const statement = {
      id: crypto.randomUUID(),
      actor: params.actor,
      verb: VERB(verb),
      object: { objectType: "Activity", id: params.activityId },
      context: { ...template, registration: params.registration, contextActivities: activities },
      timestamp: new Date().toISOString(),
      ...(result ? { result } : {}),
    };
    const response = await fetch(`${params.endpoint}/statements?statementId=${encodeURIComponent(statement.id)}`, {
      method: "PUT", credentials: "omit", keepalive: verb === "terminated",
      headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(statement),
    });
    if (!response.ok) throw new Error(`the LRS refused the ${verb} statement (${response.status})`);
    return statement;
  };
  await send("initialized");
  return { params, launchData, outcome, saveOutcome, send, elapsed: () => duration(Date.now() - startedAt) };
}

export function cmi5Transport({ session, course, grade }) {
  const scored = (course.screens || []).filter((s) => s.type === "quiz" && s.scored !== false);
  // an earlier session of this registration may have reported completed or passed already
  const state = { p: 0, b: {}, d: false, judged: false, completedBefore: session.outcome.completed === true,
    passedBefore: session.outcome.passed === true };
  const mastery = Number(session.launchData.masteryScore);
  const browse = session.launchData.launchMode && session.launchData.launchMode !== "Normal";
  let terminated = false;

  const courseScore = () => {
    if (!scored.length || scored.some((s) => state.b[String(s.id)] == null)) return { score: null, passed: null };
    const scores = scored.map((s) => Number(state.b[String(s.id)]));
    const score = Math.round((100 * scores.reduce((a, b) => a + b, 0)) / scores.length) / 100;
    const passed = Number.isFinite(mastery) && session.launchData.masteryScore != null
      ? score / 100 >= mastery
      : scored.every((s) => Number(state.b[String(s.id)]) >= (s.passing_grade || 0));
    return { score, passed };
  };
  const tracking = () => ({ progress: state.p, completed: state.d ? true : null, ...courseScore() });

  return {
    tracking,
    async start() { return { tracking: tracking() }; },
    async progress(body) {
      state.p = Math.max(state.p, Math.min(100, Number(body.progress) || 0));
      return { tracking: tracking() };
    },
    async attempt(body) {
      if (body.answers === undefined) return {};
      const result = await grade(body.screenId, body.answers, body);
      const key = String(body.screenId);
      state.b[key] = Math.max(Number(state.b[key] ?? 0), Number(result.score));
      return result;
    },
    async complete() {
      state.p = 100;
      const { score, passed } = courseScore();
      // cmi5: completed and passed once per registration, failed once per session; Normal mode only
      if (!browse && !state.d && !state.completedBefore) {
        await session.send("completed", { moveOn: true, result: { completion: true, duration: session.elapsed() } });
        await session.saveOutcome({ completed: true });
      }
      state.d = true;
      if (!browse && !state.judged && !state.passedBefore && score != null) {
        state.judged = true;
        await session.send(passed ? "passed" : "failed", { moveOn: true, result: {
          success: passed, duration: session.elapsed(), score: { scaled: Math.round(score * 100) / 10000 } } });
        if (passed) await session.saveOutcome({ passed: true });
      }
      return { tracking: tracking() };
    },
    async feedback() { return { tracking: tracking() }; },
    narration: async (screenId) => {
      const screen = (course.screens || []).find((s) => String(s.id) === String(screenId));
      if (screen && screen.narration && screen.narration.file) return screen.narration.file;
      throw new Error("narration unavailable");
    },
    // the AU's last statement; the page may be closing, so the request is kept alive
    async terminate() {
      if (terminated) return;
      terminated = true;
      await session.send("terminated", { result: { duration: session.elapsed() } }).catch(() => null);
    },
  };
}
