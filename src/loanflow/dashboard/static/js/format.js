// How numbers and times read on the wall screen: short, fixed units, "—" when unknown.

const DASH = "—";
const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const one = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });

const known = (n) => typeof n === "number" && Number.isFinite(n);

/** Per-second rates: one decimal below 100 (a trickle matters), whole numbers above. */
export function rate(n) {
  if (!known(n)) return DASH;
  return n < 100 ? one.format(n) : int.format(n);
}

export function count(n) {
  return known(n) ? int.format(n) : DASH;
}

/** A fraction (0.0123) as a percentage ("1.23 %"). */
export function percent(fraction) {
  if (!known(fraction)) return DASH;
  const pct = fraction * 100;
  return `${pct < 10 ? pct.toFixed(2) : pct.toFixed(1)} %`;
}

export function ms(n) {
  if (!known(n)) return DASH;
  return n < 10 ? `${n.toFixed(1)} ms` : n < 10000 ? `${int.format(n)} ms` : `${one.format(n / 1000)} s`;
}

export function seconds(n) {
  if (!known(n)) return DASH;
  return n < 60 ? `${n.toFixed(1)} s` : `${int.format(Math.floor(n / 60))} min ${int.format(n % 60)} s`;
}

/** An RFC 3339 time as local wall-clock time; the raw text if it does not parse. */
export function clock(iso) {
  if (typeof iso !== "string") return DASH;
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return at.toLocaleTimeString("en-GB", { hour12: false });
}

/** Date and time, for records that may be days old (dead letters). */
export function stamp(iso) {
  if (typeof iso !== "string") return DASH;
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const time = at.toLocaleTimeString("en-GB", { hour12: false });
  // The local date beside the local time: the UTC date is another day near midnight.
  return at.toDateString() === new Date().toDateString() ? time : `${localDate(at)} ${time}`;
}

/** The day of a record that may be months old or ahead (a key's expiry); today: its time. */
export function day(iso) {
  if (typeof iso !== "string") return DASH;
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  if (at.toDateString() === new Date().toDateString()) return at.toLocaleTimeString("en-GB", { hour12: false });
  return localDate(at);
}

function localDate(at) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
}

/** Any value as display text: null and undefined read as "—". */
export function text(value) {
  return value == null || value === "" ? DASH : String(value);
}
