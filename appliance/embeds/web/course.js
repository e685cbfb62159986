// Entry of /embed/course/<token>: the learner player (action view); edit tokens get the builder
// (builder/builder.js).
import { html, render } from "./vendor/index.js";
import { boot, applyTheme } from "./lib/boot.js";
import { Player } from "./player/player.js";
import { embedTransport } from "./player/embed-transport.js";

boot("course", async ({ app, session, context, host, setLanguage }) => {
  if (context.action === "edit") {
    const { mountBuilder } = await import("./builder/builder.js");
    await mountBuilder({ app, session, context, host, setLanguage });
    return;
  }
  const { course, tracking } = await session.get("/embed/api/course");
  const t = setLanguage(context.options.language || course.language);
  applyTheme(course.theme, context.options);
  document.title = course.title;
  render(html`<${Player} course=${course} tracking=${tracking} options=${context.options}
      testMode=${context.testMode} transport=${embedTransport(session, course.id)}
      emit=${(type, event, data) => host.post(type, event, data)} t=${t} />`, app);
  host.post("session", "ready", { courseId: course.id, screens: course.screens.length });
});
