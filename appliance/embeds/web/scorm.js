// Entry of a SCORM package's launch page (index.html, copied from scorm.html at export; docs/scorm.md).
// The same learner player as the embed (player/player.js) with the SCORM transport
// (player/scorm-transport.js). `package.js` is written at export:
//   {mode: "static"|"dynamic", version: "1.2"|"2004", environment, expires (epoch s or null),
//    static:  course (learner shape) + key (the answer key: static packages grade offline)
//    dynamic: appliance (base URL) + token (a view-only token for this one course)}
import { html, render } from "./vendor/index.js";
import { applyTheme, Notice } from "./lib/boot.js";
import { translator } from "./lib/i18n.js";
import { Player } from "./player/player.js";
import { lmsConnection, localGrader, scormTransport } from "./player/scorm-transport.js";
import config from "./package.js";

const app = document.getElementById("app");
const events = [];
window.__scorm = { events, state: "loading" };  // for tests and debugging: no secrets

function stop(state, message) {
  window.__scorm.state = state;
  app.replaceChildren();  // the page's "Loading…" status goes: preact renders beside it
  render(html`<${Notice} title=${state === "expired" ? "This package has expired" : "This course could not start"} text=${message} />`, app);
}

function expiredText(expires) {
  const when = expires ? new Date(expires * 1000).toISOString().slice(0, 10) : null;
  return `This SCORM package has expired${when ? ` (${when})` : ""}. Test packages stop working 30 days after export: ask your course provider for a new export.`;
}

async function remote(path, body) {
  const response = await fetch(`${config.appliance}${path}`, {
    method: body ? "POST" : "GET",
    credentials: "omit",
    cache: "no-store",
    headers: { Authorization: `Bearer ${config.token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.message || "request failed"), { status: response.status });
  return data;
}

async function main() {
  if (config.expires && Date.now() / 1000 >= config.expires) return stop("expired", expiredText(config.expires));
  const lms = lmsConnection(config.version);
  if (!lms) return stop("no-lms", `No SCORM ${config.version} LMS was found. Launch this course from your LMS.`);
  if (!lms.init()) return stop("no-lms", `The LMS refused to start this course (error ${lms.lastError()}).`);

  let course = config.course;
  let grade = null;
  let mirror = null;
  let clip = null;
  if (config.mode === "dynamic") {
    try {
      course = (await remote("/scorm/api/course")).course;
    } catch (err) {
      if (err.status === 401) return stop("expired", expiredText(config.expires));
      if (err.status === 404) return stop("gone", "This course is no longer available. Ask your course provider for a new export.");
      return stop("offline", `The course could not be loaded from ${config.appliance}: ${err.message}. Check your connection and reopen the course.`);
    }
    const learner = { id: lms.get(lms.fields.learnerId), name: lms.get(lms.fields.learnerName) };
    mirror = (event, body) => remote("/scorm/api/track", { ...body, event, learner, version: config.version });
    grade = (screenId, answers, body) => mirror("attempt", body);
    clip = async (screenId) => {
      const response = await fetch(`${config.appliance}/scorm/api/narration/${encodeURIComponent(screenId)}`, {
        credentials: "omit", headers: { Authorization: `Bearer ${config.token}` },
      });
      if (!response.ok) throw new Error("narration unavailable");
      return URL.createObjectURL(await response.blob());
    };
  } else {
    grade = localGrader(config.key);
  }
  const transport = scormTransport({ lms, course, grade, mirror, clip });
  const end = () => transport.terminate();
  window.addEventListener("pagehide", end);
  window.addEventListener("beforeunload", end);

  const t = translator(course.language);
  document.documentElement.lang = t.language;
  applyTheme(course.theme, {});
  document.title = course.title;
  window.__scorm.state = "ready";
  app.replaceChildren();
  render(html`<${Player} course=${course} tracking=${transport.tracking()} options=${{}}
      testMode=${config.environment === "test"} transport=${transport}
      emit=${(type, event, data) => events.push({ type, event, data })} t=${t} />`, app);
}

main().catch((err) => stop("error", String((err && err.message) || err)));
