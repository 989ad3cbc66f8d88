// The API's documentation (/docs), rendered from /openapi.json: every operation with its
// scope, parameters, body (and example), answers and problem types, then every schema.
// DOM built with h() only: text from the document is never parsed as HTML.

import { byId, h, say } from "./dom.js";

const SCHEMA_PREFIX = "#/components/schemas/";
const METHODS = ["get", "post", "put", "patch", "delete"];

/** `code` spans of a description as <code>, the rest as text, a paragraph per blank line. */
function prose(text) {
  return (text || "").split(/\n\s*\n/).filter((p) => p.trim()).map((paragraph) =>
    h("p", {}, paragraph.replace(/\s*\n\s*/g, " ").split(/`([^`]+)`/)
      .map((part, i) => (i % 2 ? h("code", { text: part }) : part))));
}

function refName(ref) {
  return ref.startsWith(SCHEMA_PREFIX) ? ref.slice(SCHEMA_PREFIX.length) : ref;
}

function schemaLink(name) {
  return h("a", { href: `#schema-${name}`, class: "ref" }, name);
}

/** A schema as a short type expression, linking the schemas it names. */
function typeOf(schema) {
  if (!schema || Object.keys(schema).length === 0) return ["any"];
  if (schema.$ref) return [schemaLink(refName(schema.$ref))];
  const join = (parts, sep) => parts.flatMap((part, i) => (i ? [sep, ...part] : part));
  if (schema.anyOf) return join(schema.anyOf.map(typeOf), " | ");
  if (schema.oneOf) return join(schema.oneOf.map(typeOf), " | ");
  if (schema.allOf) return join(schema.allOf.map(typeOf).filter((t) => t.length), " & ");
  if ("const" in schema) return [h("code", { text: JSON.stringify(schema.const) })];
  if (schema.enum) return join(schema.enum.map((v) => [h("code", { text: JSON.stringify(v) })]), " | ");
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return join(types.map((type) => {
    if (type === "array") return ["array of ", ...typeOf(schema.items)];
    if (type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
      return ["object of ", ...typeOf(schema.additionalProperties)];
    }
    if (type === undefined) return schema.properties ? ["object"] : [];
    return [schema.format ? `${type} (${schema.format})` : type];
  }), " | ");
}

/** Bounds, patterns and defaults of a schema, in words. */
function constraints(schema) {
  if (!schema) return "";
  const said = [];
  const pairs = [["minLength", "min length"], ["maxLength", "max length"], ["minimum", "≥"],
    ["maximum", "≤"], ["exclusiveMinimum", ">"], ["minItems", "min items"], ["maxItems", "max items"],
    ["pattern", "pattern"], ["default", "default"]];
  for (const [key, word] of pairs) {
    if (key in schema) said.push(`${word} ${typeof schema[key] === "string" && key !== "pattern" ? JSON.stringify(schema[key]) : schema[key]}`);
  }
  return said.join(", ");
}

function describe(schema, description) {
  const note = constraints(schema);
  return [description || schema?.description || "", note ? h("div", { class: "constraints", text: note }) : null];
}

function parametersTable(parameters) {
  return h("table", {},
    h("tr", {}, h("th", { text: "name" }), h("th", { text: "in" }), h("th", { text: "type" }), h("th", { text: "" })),
    parameters.map((p) => h("tr", {},
      h("td", { class: "name" }, p.name, p.required ? h("div", { class: "required", text: "required" }) : null),
      h("td", { text: p.in }),
      h("td", {}, typeOf(p.schema)),
      h("td", {}, describe(p.schema, p.description)))));
}

/** The problem types an answer's schema narrows `type` to (allOf: Problem & one of …). */
function problemTypes(schema) {
  const narrowed = (schema?.allOf || []).find((part) => part.properties?.type?.enum);
  return narrowed ? narrowed.properties.type.enum : [];
}

function responsesTable(responses) {
  return h("table", {},
    h("tr", {}, h("th", { text: "status" }), h("th", { text: "answer" }), h("th", { text: "body" })),
    Object.entries(responses).map(([status, answer]) => {
      const content = Object.entries(answer.content || {});
      const headers = Object.entries(answer.headers || {});
      return h("tr", { dataset: { status } },
        h("td", { class: "status", dataset: { class: status[0] }, text: status }),
        h("td", {}, answer.description,
          headers.length ? h("div", { class: "constraints" }, "headers: ",
            headers.flatMap(([name], i) => [i ? ", " : "", h("code", { text: name })])) : null),
        h("td", {}, content.map(([mediaType, media]) => {
          const types = problemTypes(media.schema);
          return h("div", {}, h("code", { text: mediaType }), " ",
            types.length ? schemaLink(refName(media.schema.allOf[0].$ref)) : typeOf(media.schema),
            types.length ? h("ul", { class: "types" }, types.map((t) => h("li", {}, h("code", { text: t })))) : null);
        })));
    }));
}

function operationSection(path, method, op) {
  const id = `op-${op.operationId || `${method}-${path}`}`;
  const scope = (op.security || []).flatMap((s) => Object.values(s).flat());
  const body = op.requestBody?.content?.["application/json"];
  return h("section", { class: "op", id, dataset: { path, method } },
    h("div", { class: "op-head" },
      h("span", { class: "method", dataset: { method }, text: method.toUpperCase() }),
      h("code", { class: "path", text: path }),
      op.security && op.security.length === 0 ? h("span", { class: "chip public", text: "public" })
        : scope.map((s) => h("span", { class: "chip", text: `scope ${s}` }))),
    h("p", { class: "summary", text: op.summary || "" }),
    prose(op.description),
    op.parameters?.length ? [h("h3", { text: "Parameters" }), parametersTable(op.parameters)] : null,
    body ? [h("h3", { text: `Body${op.requestBody.required ? "" : " (optional)"}` }),
      h("div", {}, h("code", { text: "application/json" }), " ", typeOf(body.schema)),
      body.example ? h("pre", { text: JSON.stringify(body.example, null, 2) }) : null] : null,
    h("h3", { text: "Answers" }), responsesTable(op.responses || {}));
}

function schemaSection(name, schema) {
  const required = new Set(schema.required || []);
  const properties = Object.entries(schema.properties || {});
  const listed = schema.oneOf && schema.oneOf.every((s) => "const" in s);
  return h("section", { class: "schema", id: `schema-${name}`, dataset: { schema: name } },
    h("div", { class: "op-head" }, h("code", { class: "path", text: name }),
      schema.additionalProperties === false ? h("span", { class: "chip", text: "closed" }) : null),
    prose(schema.description),
    properties.length ? h("table", {},
      h("tr", {}, h("th", { text: "field" }), h("th", { text: "type" }), h("th", { text: "" })),
      properties.map(([field, property]) => h("tr", {},
        h("td", { class: "name" }, field, required.has(field) ? h("div", { class: "required", text: "required" }) : null),
        h("td", {}, typeOf(property)),
        h("td", {}, describe(property))))) : null,
    listed ? h("table", {}, schema.oneOf.map((s) => h("tr", {},
      h("td", { class: "name", text: s.const }), h("td", { text: s.description || s.title || "" }))))
      : null,
    !properties.length && !listed ? h("div", {}, typeOf(schema)) : null);
}

function render(spec) {
  byId("version").textContent = `v${spec.info?.version ?? "?"} · OpenAPI ${spec.openapi}`;
  byId("intro").replaceChildren(...prose(spec.info?.description));
  const toc = [];
  const sections = [];
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS.filter((m) => item[m])) {
      const section = operationSection(path, method, item[method]);
      sections.push(section);
      toc.push(h("li", { dataset: { path, method } },
        h("a", { href: `#${section.id}` }, h("span", { class: "method", dataset: { method }, text: method.toUpperCase() }), " ", path)));
    }
  }
  byId("operations").replaceChildren(...sections);
  byId("toc-operations").replaceChildren(...toc);
  const schemas = Object.entries(spec.components?.schemas || {});
  byId("schemas").replaceChildren(...schemas.map(([name, schema]) => schemaSection(name, schema)));
  byId("toc-schemas").replaceChildren(...schemas.map(([name]) => h("li", {}, schemaLink(name))));
  byId("schemas-title").hidden = schemas.length === 0;
}

function filterOperations(text) {
  const needle = text.trim().toLowerCase();
  for (const node of document.querySelectorAll("[data-path]")) {
    const section = node.closest("section") || node;
    const haystack = `${node.dataset.method} ${node.dataset.path} ${section.textContent}`.toLowerCase();
    node.hidden = needle !== "" && !haystack.includes(needle);
  }
}

async function main() {
  const status = byId("status");
  try {
    const answer = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error(`/openapi.json answered ${answer.status}`);
    render(await answer.json());
    say(status, "");
    byId("filter").addEventListener("input", (event) => filterOperations(event.target.value));
    if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
  } catch (error) {
    say(status, `Could not load the API document: ${error.message}`, "bad");
  } finally {
    document.body.dataset.ready = "1";
  }
}

main();
