// The step slider of a snapshot view, with play: the snapshots one after another, each
// drawn before the next is asked for, at most ~6 a second.
import { h } from "./dom.js";

/**
 * `show(step)` asks for and draws the snapshot at or before `step`, resolving once drawn.
 * Returns {el (the play button, slider and label), wanted() (the step the slider points
 * at), setSteps(steps, shown) (the snapshot steps known, and the one drawn), stop()}.
 */
export function createStepPlayer(show, { what = "the snapshots" } = {}) {
  const slider = h("input", { type: "range", class: "fl-slider", testid: "step-slider", min: "0", max: "0",
    value: "0", step: "1", "aria-label": "Snapshot step" });
  const label = h("span", { class: "fl-step-label fl-mono", testid: "step-label" }, "step –");
  const play = h("button", { type: "button", class: "fl-button fl-icon", testid: "play-steps",
    "aria-label": `Play ${what} over steps`, title: `Play ${what} over steps` }, "▶");
  let steps = [];
  let playing = false;

  const wanted = () => (steps.length ? steps[Number(slider.value)] ?? 0 : 0);
  const setPlaying = (on) => {
    playing = on;
    play.textContent = on ? "⏸" : "▶";
    play.setAttribute("aria-pressed", on ? "true" : "false");
  };
  const advance = () => {
    if (!playing) return;
    const i = Number(slider.value);
    if (i >= steps.length - 1) { setPlaying(false); return; }
    setTimeout(() => {
      if (!playing) return;
      slider.value = String(i + 1);
      label.textContent = `step ${wanted()}`;
      Promise.resolve(show(wanted())).then(advance);
    }, 160);
  };
  slider.addEventListener("input", () => {
    label.textContent = `step ${wanted()}`;
    show(wanted());
  });
  play.addEventListener("click", () => {
    if (playing) { setPlaying(false); return; }
    if (Number(slider.value) >= steps.length - 1) slider.value = "0"; // from the start again
    setPlaying(true);
    Promise.resolve(show(wanted())).then(advance);
  });

  return {
    el: [play, slider, label],
    wanted,
    get playing() { return playing; },
    setSteps(next, shown) {
      steps = next || [];
      slider.max = String(Math.max(0, steps.length - 1));
      const index = steps.indexOf(shown);
      if (index >= 0 && document.activeElement !== slider) slider.value = String(index);
      if (shown != null) label.textContent = `step ${shown}`;
    },
    stop() { setPlaying(false); },
  };
}
