// Colours: JupyterLab theme variables (read from the panel, as canvas needs real colours).
// The colours of experiments and fit families come with the state (facts.js).

const FALLBACK = { fg: "#212121", fg2: "#616161", grid: "#e0e0e0", axis: "#bdbdbd",
  bg: "#ffffff", brand: "#1976d2", font: "system-ui, -apple-system, 'Segoe UI', sans-serif",
  mono: "ui-monospace, Menlo, Consolas, monospace", error: "#d32f2f" };

const VARS = { fg: "--fl-fg", fg2: "--fl-fg2", grid: "--fl-grid", axis: "--fl-border",
  bg: "--fl-bg", brand: "--fl-brand", font: "--fl-font", mono: "--fl-mono", error: "--fl-error-color" };

/** Theme colours as the panel's CSS resolved them (fallbacks outside a browser). */
export function readTheme(el) {
  const theme = { ...FALLBACK };
  try {
    const style = getComputedStyle(el);
    for (const [key, name] of Object.entries(VARS)) {
      const value = style.getPropertyValue(name).trim();
      if (value && !value.includes("var(")) theme[key] = value;
    }
  } catch {
    /* not in a browser */
  }
  theme.dark = isDark(theme.bg);
  return theme;
}

/** [r, g, b] of "#rgb", "#rrggbb" or "rgb(a)(...)"; null if unknown. */
export function parseColor(text) {
  const s = String(text || "").trim();
  let m = /^#([0-9a-f]{3})$/i.exec(s);
  if (m) return [...m[1]].map((c) => parseInt(c + c, 16));
  m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/i.exec(s);
  if (m) return [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16));
  m = /^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/i.exec(s);
  if (m) return [m[1], m[2], m[3]].map(Number);
  return null;
}

export function withAlpha(color, alpha) {
  const rgb = parseColor(color);
  return rgb ? `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${alpha})` : color;
}

export function isDark(color) {
  const rgb = parseColor(color);
  if (!rgb) return false;
  return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] < 128;
}
