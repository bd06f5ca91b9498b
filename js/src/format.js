// Number formatting shared by the tables.

/** Python's "{:.<p>g}": exponent form when exp < -4 or exp >= p, trailing zeros stripped. */
export function fmtG(value, precision = 3) {
  if (value == null || !Number.isFinite(value)) return value == null ? "" : String(value);
  if (value === 0) return "0";
  const [mant, expText] = value.toExponential(precision - 1).split("e");
  const exp = Number(expText);
  if (exp < -4 || exp >= precision) {
    const m = mant.includes(".") ? mant.replace(/0+$/, "").replace(/\.$/, "") : mant;
    const e = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : String(Math.abs(exp));
    return `${m}e${exp < 0 ? "-" : "+"}${e}`;
  }
  const fixed = value.toFixed(Math.max(0, precision - 1 - exp));
  return fixed.includes(".") ? fixed.replace(/0+$/, "").replace(/\.$/, "") : fixed;
}

/** A fit coefficient as the published table writes it: -9.31e-1, 2.61e+0. */
export function fmtCoef(value) {
  if (value == null || !Number.isFinite(value)) return "nan";
  return value.toExponential(2);
}

export function fmtR2(value) {
  return value == null || !Number.isFinite(value) ? "–" : value.toFixed(4);
}

/** A loss or metric value in a table cell. */
export function fmtValue(value) {
  return value == null || !Number.isFinite(value) ? "–" : fmtG(value, 3);
}

/** A step or range bound for an input box: integers stay integers, others 4 digits. */
export function fmtBound(value) {
  if (value == null || !Number.isFinite(value)) return "";
  return Number.isInteger(value) ? String(value) : fmtG(value, 4);
}
