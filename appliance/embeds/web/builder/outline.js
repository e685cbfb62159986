// The builder's outline: the course's screens as one tab stop (roving tabindex). Up/Down/Home/End
// move between rows and select the screen; Alt+Up/Alt+Down move it; Delete removes it (with an undo
// toast in builder.js); Enter goes to its editor. Only the selected row shows its actions, so the
// title keeps the row's width and a keyboard user meets four buttons, not four per screen.
import { html } from "../vendor/index.js";
import { icon } from "../vendor/icons/index.js";
import { TYPE_NAMES } from "./editors.js";

export const KEYS_HINT = "Up and Down choose a screen, Alt+Up and Alt+Down move it, Delete removes it, Enter edits it; Escape in the editor comes back here.";

export function Outline({ screens, selected, select, move, duplicate, remove, edit, disabled }) {
  const onKey = (e, i) => {
    const last = screens.length - 1;
    const to = { ArrowUp: i - 1, ArrowDown: i + 1, Home: 0, End: last }[e.key];
    if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      e.preventDefault();
      if (!disabled) move(i, e.key === "ArrowUp" ? -1 : 1, "row");
    } else if (to !== undefined && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      select(Math.max(0, Math.min(last, to)), true);
    } else if (e.key === "Delete" && !disabled) {
      e.preventDefault();
      remove(i);
    } else if (e.key === "Enter") {
      e.preventDefault();
      select(i, false);
      edit();
    }
  };
  return html`<ol class="outline-list" aria-labelledby="outline-title">
    ${screens.map((s, i) => {
      const current = i === selected;
      const n = i + 1;
      return html`<li key=${s.id} class=${current ? "selected" : ""}>
        <button type="button" class="outline-item" data-index=${i} tabindex=${current ? 0 : -1}
          aria-current=${current ? "true" : undefined} aria-describedby="outline-keys"
          aria-keyshortcuts="ArrowUp ArrowDown Alt+ArrowUp Alt+ArrowDown Delete Enter"
          onClick=${() => select(i, false)} onKeyDown=${(e) => onKey(e, i)}>
          <span class="n" aria-hidden="true">${n}</span>
          <span class="t"><span class="sr-only">Screen ${n}: </span>${s.title || "(untitled)"}</span>${" "}
          <small class="type">${TYPE_NAMES[s.type] || s.type}</small>${" "}
          ${s.unsupported ? html`<span class="flag">${icon("alert-triangle")} check</span>` : null}
        </button>
        ${current ? html`<div class="row-actions" role="group" aria-label=${`Screen ${n} actions`}>
          <button type="button" class="tool icon-only" data-action="up" aria-label=${`Move screen ${n} up`} title="Move up (Alt+Up)"
            disabled=${i === 0 || disabled} onClick=${() => move(i, -1, "up")}>${icon("arrow-up")}</button>
          <button type="button" class="tool icon-only" data-action="down" aria-label=${`Move screen ${n} down`} title="Move down (Alt+Down)"
            disabled=${i === screens.length - 1 || disabled} onClick=${() => move(i, 1, "down")}>${icon("arrow-down")}</button>
          <button type="button" class="tool" data-action="copy" aria-label=${`Copy screen ${n}`} disabled=${disabled}
            onClick=${() => duplicate(i)}>${icon("copy")} Copy</button>
          <button type="button" class="tool danger" data-action="delete" aria-label=${`Delete screen ${n}`} title="Delete (Delete key)"
            disabled=${disabled} onClick=${() => remove(i)}>${icon("trash")} Delete</button>
        </div>` : null}
      </li>`;
    })}
  </ol>`;
}
