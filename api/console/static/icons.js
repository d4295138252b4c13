// Icons drawn inline as SVG, shipped with the console: no emoji (a kiosk or a Debian box
// without an emoji font shows a box instead) and no icon font from anywhere else.
import { h } from "./dom.js";

/** A bell (alert sound), as tall as the text around it; decorative: the text says what it is. */
export function bellIcon() {
  return h("svg", { class: "icon", viewBox: "0 0 24 24", width: "1.1em", height: "1.1em", "aria-hidden": "true", focusable: "false" },
    h("path", { fill: "currentColor", d: "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z" }));
}
