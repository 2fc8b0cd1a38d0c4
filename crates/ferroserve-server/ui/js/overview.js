// Overview: every model with what it serves, and the server's health.

import { call, seg } from "./api.js";
import { h, replace, table } from "./dom.js";

async function modelRow(model) {
  const base = `/api/v1/models/${seg(model.name)}`;
  const [serving, versions, details] = await Promise.all([
    call(`${base}/serving`).catch(() => null),
    call(`${base}/versions`),
    call(base),
  ]);
  const served = serving && serving.serving_version;
  const version = versions.versions.find((v) => String(v.version) === served);
  const aliases = Object.entries(details.aliases || {}).map(([alias, v]) => `${alias} → ${v}`);
  return [
    h("a", { href: `#/models/${seg(model.name)}` }, model.name),
    h("span", { class: "serving", dataset: { model: model.name } }, served ?? "nothing"),
    version ? version.stage : "",
    aliases.join(", "),
    serving && serving.degraded ? h("span", { class: "warn" }, `degraded: ${serving.degraded}`) : "ok",
    String(versions.versions.length),
  ];
}

export async function overview(main, session) {
  document.title = "Overview · ferroserve";
  const [listed, ready] = await Promise.all([
    call("/api/v1/models"),
    fetch("/readyz").then((r) => r.ok, () => false),
  ]);
  const rows = await Promise.all(listed.models.map(modelRow));
  replace(main,
    h("h1", {}, "Overview"),
    h("p", { class: ready ? "ok" : "warn", id: "health" }, ready ? "Server ready" : "Server not ready"),
    rows.length
      ? table("Models", ["Model", "Serving version", "Stage", "Aliases", "State", "Versions"], rows)
      : h("p", {}, "No models yet: register one with ferroserve models register."),
    session.may("deploy") ? null : h("p", { class: "muted" }, `Signed in as a ${session.who.role}: read only.`),
  );
}
