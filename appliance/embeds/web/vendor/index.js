// Preact 10.29.8 (MIT) + hooks + htm 3.1.1 (Apache-2.0), vendored unmodified from the npm registry
// except for the hooks module's import path. Licences beside this file.
import { h, render, Fragment } from "./preact.module.js";
import htm from "./htm.module.js";
export { h, render, Fragment };
export { useState, useEffect, useRef, useMemo, useCallback, useReducer } from "./hooks.module.js";
export const html = htm.bind(h);
