// Entry of a cmi5 package's launch page (index.html, written at export; docs/xapi.md, cmi5).
// The same learner player as the embed and SCORM packages (player/player.js) with the cmi5
// transport (player/cmi5-transport.js). `package.js` is written at export:
//   {environment, expires (epoch s or null), course (learner shape), key (the answer key), courseId}
import { html, render } from "./vendor/index.js";
import { applyTheme, Notice } from "./lib/boot.js";
import { translator } from "./lib/i18n.js";
import { Player } from "./player/player.js";
import { cmi5Session, cmi5Transport, launchParameters, localGrader } from "./player/cmi5-transport.js";
import config from "./package.js";

const app = document.getElementById("app");
const events = [];
window.__cmi5 = { events, state: "loading" };  // for tests and debugging: no secrets

function stop(state, message) {
  window.__cmi5.state = state;
  app.replaceChildren();
  render(html`<${Notice} title=${state === "expired" ? "This package has expired" : "This course could not start"} text=${message} />`, app);
}

async function main() {
  if (config.expires && Date.now() / 1000 >= config.expires) {
    return stop("expired", "This cmi5 package has expired. Test packages stop working 30 days after export: ask your course provider for a new export.");
  }
  const params = launchParameters(location.search);
  if (!params) return stop("no-lms", "This course was not launched by a cmi5 LMS. Launch it from your LMS.");
  let session;
  try {
    session = await cmi5Session(params);
  } catch (err) {
    return stop("no-lms", String(err.message || err));
  }
  const course = config.course;
  const transport = cmi5Transport({ session, course, grade: localGrader(config.key) });
  const end = () => transport.terminate();
  window.addEventListener("pagehide", end);
  window.__cmi5.terminate = end;
  const t = translator(course.language);
  document.documentElement.lang = t.language;
  applyTheme(course.theme, {});
  document.title = course.title;
  window.__cmi5.state = "ready";
  app.replaceChildren();
  render(html`<${Player} course=${course} tracking=${transport.tracking()} options=${{}}
      testMode=${config.environment === "test"} transport=${transport}
      emit=${(type, event, data) => events.push({ type, event, data })} t=${t} />`, app);
}

main().catch((err) => stop("error", String((err && err.message) || err)));
