// Build DOM from values without ever parsing them as HTML: server data (an applicant's
// name, an error message) can hold markup, and must show as the text it is.

/** An element with properties and children; strings become text nodes, never markup. */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "style") throw new Error("expected CSS classes, got a style attribute (the CSP refuses it)");
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child != null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** The element with this id; a missing one is a bug in index.html, so say which. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`expected #${id} in index.html`);
  return node;
}

/** Show a status line with a message, or hide it when the message is empty. */
export function say(node, message, tone = "") {
  node.textContent = message || "";
  node.hidden = !message;
  node.dataset.tone = tone;
}

/** Call `fn` once input has been quiet for `ms` (typing in a search box). */
export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
