// jsdom has no canvas and no matchMedia. getContext returns null (the panel skips drawing)
// instead of printing "not implemented"; uPlot calls matchMedia when it is imported. The
// plots themselves are faked in the tests (setPlotFactory).
HTMLCanvasElement.prototype.getContext = () => null;
if (!window.matchMedia) {
  window.matchMedia = (query) => ({
    matches: false, media: query, onchange: null,
    addEventListener() {}, removeEventListener() {}, addListener() {}, removeListener() {},
    dispatchEvent: () => false,
  });
  globalThis.matchMedia = window.matchMedia;
}
