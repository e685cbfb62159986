// Entry of /embed/collection/<token>: the collection's courses, each playable with the same player.
import { html, render, useState, useEffect, useRef } from "./vendor/index.js";
import { icon } from "./vendor/icons/index.js";
import { boot, applyTheme } from "./lib/boot.js";
import { Player } from "./player/player.js";
import { embedTransport } from "./player/embed-transport.js";

function Collection({ session, context, host, t, initial }) {
  const [data, setData] = useState(initial);
  const [playing, setPlaying] = useState(null);
  const returnTo = useRef(null);  // the course just closed: its Open button takes focus back
  useEffect(() => {
    if (playing || returnTo.current == null) return;
    const button = document.querySelector(`[data-course-id="${returnTo.current}"]`);
    returnTo.current = null;
    if (button) button.focus();
  });
  const open = async (id) => {
    const loaded = await session.get(`/embed/api/course?id=${encodeURIComponent(id)}`);
    applyTheme(loaded.course.theme, context.options);
    setPlaying(loaded);
  };
  const close = async () => {
    returnTo.current = playing.course.id;
    setData(await session.get("/embed/api/collection"));
    setPlaying(null);
  };
  if (playing) {
    return html`<div>
      <nav class="collection-back" aria-label=${t("courses")}>
        <button type="button" class="back" onClick=${close}>${icon("arrow-left")} ${t("close")}</button></nav>
      <${Player} key=${playing.course.id} course=${playing.course} tracking=${playing.tracking}
        options=${context.options} testMode=${context.testMode}
        transport=${embedTransport(session, playing.course.id)}
        emit=${(type, event, data) => host.post(type, event, { ...data, courseId: playing.course.id })} t=${t} />
    </div>`;
  }
  return html`<main class="collection" aria-labelledby="title">
    ${context.testMode ? html`<span class="test-mode" role="note">${t("testMode")}</span>` : null}
    <h1 id="title">${data.title}</h1>
    ${data.description ? html`<p class="lead">${data.description}</p>` : null}
    <h2 class="sr-only">${t("courses")}</h2>
    <ul class="course-list">
      ${data.courses.map((c) => {
        const progress = c.tracking ? c.tracking.progress : 0;
        return html`<li key=${c.id} class="course-item">
          <div><strong>${c.title}</strong>
            <p class="meta">${c.tracking && c.tracking.completed ? t("completed") : progress ? `${progress}%` : t("notStarted")}</p>
            <div class="progress" role="progressbar" aria-label=${`${t("progress")}: ${c.title}`} aria-valuemin="0" aria-valuemax="100" aria-valuenow=${progress}>
              <div class="progress-bar" style=${{ width: `${progress}%` }}></div></div>
          </div>
          <button type="button" class="primary" data-course-id=${c.id} onClick=${() => open(c.id)} aria-label=${`${t("open")}: ${c.title}`}>${t("open")}</button>
        </li>`;
      })}
    </ul>
  </main>`;
}

boot("collection", async ({ app, session, context, host, setLanguage }) => {
  const data = await session.get("/embed/api/collection");
  const t = setLanguage(context.options.language);
  applyTheme(null, context.options);
  render(html`<${Collection} session=${session} context=${context} host=${host} t=${t} initial=${data} />`, app);
  host.post("session", "ready", { collectionId: data.id, courses: data.courses.length });
});
