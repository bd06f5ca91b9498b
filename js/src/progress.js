// Live progress of running experiments: step counts from the kernel's state pushes (about
// 4 per second while a run flushes), turned into a speed and the time left. The kernel
// sends no timing of its own: what matters to the person is the rate the panel sees.

/** "850/s", "12.4k/s", "0.35/s". */
export function fmtRate(perSecond) {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return "";
  if (perSecond >= 1e4) return `${(perSecond / 1e3).toFixed(0)}k/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k/s`;
  if (perSecond >= 10) return `${Math.round(perSecond)}/s`;
  return `${perSecond.toPrecision(2)}/s`;
}

/** "4 s", "2 min 05 s", "1 h 20 min". */
export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

const steps = (n) => n.toLocaleString("en-US");

// Seconds, monotonic; tests set their own.
let clock = () => performance.now() / 1000;
export function setClock(fn) {
  clock = fn || (() => performance.now() / 1000);
}
export const now = () => clock();

/**
 * Follows the step counts of running experiments over time. `observe(id, done, total, now)`
 * is called on every state push; `line(id)` says "step 1,240 of 2,000 · 850/s · 1 s left".
 * The rate is a moving average over the last few seconds, so a pause (a flush, a busy
 * kernel) does not swing the estimate.
 */
export function createProgressTracker({ span = 5 } = {}) {
  const seen = new Map(); // id -> {samples: [[t, done]], total}

  return {
    observe(id, done, total, now) {
      let s = seen.get(id);
      if (!s || done < s.samples.at(-1)[1]) s = { samples: [] }; // a new run
      s.total = total;
      const last = s.samples.at(-1);
      if (!last || done !== last[1]) s.samples.push([now, done]);
      while (s.samples.length > 2 && now - s.samples[1][0] > span) s.samples.shift();
      seen.set(id, s);
    },
    forget(id) {
      seen.delete(id);
    },
    rate(id) {
      const s = seen.get(id);
      if (!s || s.samples.length < 2) return null;
      const [t0, d0] = s.samples[0];
      const [t1, d1] = s.samples.at(-1);
      return t1 > t0 && d1 > d0 ? (d1 - d0) / (t1 - t0) : null;
    },
    line(id) {
      const s = seen.get(id);
      if (!s) return "";
      const done = s.samples.at(-1)[1];
      const parts = [`step ${steps(done)} of ${steps(s.total)}`];
      const rate = this.rate(id);
      if (rate) {
        parts.push(fmtRate(rate));
        parts.push(`${fmtDuration(Math.max(0, s.total - done) / rate)} left`);
      }
      return parts.join(" · ");
    },
  };
}
