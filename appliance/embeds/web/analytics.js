// Entry of /embed/analytics/{course,collection,user}/<token>: completion, progress and score over the
// trackings, scoped to the token's client. options: stats, chart, table (all shown unless false).
import { html, render } from "./vendor/index.js";
import { boot, applyTheme } from "./lib/boot.js";
import { icon } from "./vendor/icons/index.js";

const LABELS = {
  learners: "Learners", commenced: "Commenced", completed: "Completed", completionRate: "Completion rate",
  averageProgress: "Average progress", averageScore: "Average score", passed: "Passed", totalTime: "Total time",
};

function fmt(key, value) {
  if (value == null) return "–";
  if (key === "completionRate" || key === "averageProgress" || key === "averageScore") return `${value}%`;
  if (key === "totalTime") return `${Math.round(value / 60)} min`;
  return String(value);
}

function Analytics({ data, testMode }) {
  const subject = data.subject;
  const title = subject.title || subject.name || subject.identifier || "";
  const max = Math.max(1, ...data.chart.map((b) => b.count));
  // nothing tracked yet: a sentence instead of zeros, empty bars and an empty table
  const empty = data.table.length === 0 && !data.stats.learners;
  return html`<main class="analytics" aria-labelledby="title">
    ${testMode ? html`<span class="test-mode" role="note">Test mode</span>` : null}
    <h1 id="title">${title}</h1>
    ${empty ? html`<p class="empty-state">${icon("info-circle")} <span><strong>No learners yet.</strong>${" "}Numbers appear here once ${subject.type === "user" ? "this learner starts a course" : subject.type === "collection" ? "someone starts a course of this collection" : "someone starts this course"}.</span></p>` : null}
    ${data.options.stats && !empty ? html`<section aria-label="Statistics"><dl class="stats">
      ${Object.entries(data.stats).map(([k, v]) => html`<div class="stat" key=${k}><dt>${LABELS[k] || k}</dt><dd>${fmt(k, v)}</dd></div>`)}
    </dl></section>` : null}
    ${data.options.chart && !empty ? html`<section aria-labelledby="chart-title"><h2 id="chart-title">Learners by progress</h2>
      <ul class="chart">${data.chart.map((b) => html`<li key=${b.label}>
        <span class="chart-label">${b.label}</span>
        <span class="chart-bar" role="img" aria-label=${`${b.label}: ${b.count} learners`}><span style=${{ width: `${(100 * b.count) / max}%` }}></span></span>
        <span class="chart-n">${b.count}</span></li>`)}</ul></section>` : null}
    ${data.options.table && !empty ? html`<section><h2 id="table-title">Learners</h2>
      <div class="table-wrap" tabindex="0" role="region" aria-labelledby="table-title"><table><thead><tr>
        <th scope="col">Learner</th><th scope="col">Course</th><th scope="col">Progress</th><th scope="col">Score</th>
        <th scope="col">Passed</th><th scope="col">Completed</th></tr></thead>
      <tbody>${data.table.map((r, i) => html`<tr key=${i}><td>${r.name || r.identifier}</td><td>${r.course}</td>
        <td>${r.progress}%</td><td>${r.score == null ? "–" : `${Math.round(r.score)}%`}</td>
        <td>${r.passed == null ? "–" : r.passed ? "Yes" : "No"}</td><td>${r.completed ? r.completed.slice(0, 10) : "–"}</td></tr>`)}
      </tbody></table></div></section>` : null}
  </main>`;
}

boot(document.body.dataset.kind, async ({ app, session, context, host, setLanguage }) => {
  setLanguage(context.options.language);
  applyTheme(null, context.options);
  const data = await session.get("/embed/api/analytics");
  render(html`<${Analytics} data=${data} testMode=${context.testMode} />`, app);
  host.post("session", "ready", { kind: context.kind });
});
