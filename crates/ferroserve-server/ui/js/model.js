// One model: its versions, lineage, model card and audit history, and the
// changes a deployer makes (promote, alias), each confirmed first with
// what will change.

import { call, seg } from "./api.js";
import { h, replace, table, when, failure } from "./dom.js";
import { confirmChange } from "./confirm.js";
import { tryIt } from "./tryit.js";
import { configEditor } from "./config.js";

const STAGES = ["Production", "Staging", "None", "Archived"];

function keyValues(caption, map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return null;
  return table(caption, ["Name", "Value"], entries.map(([k, v]) => [k, String(v)]));
}

function lineage(version) {
  const l = version.lineage || {};
  const facts = [
    ["Run", l.run_id], ["Code commit", l.code_commit], ["Data", l.data_uri],
    ["Data sha256", l.data_sha256], ["Parent version", l.parent_version],
    ["Registered by", version.registered_by], ["Artifact sha256", version.artifact_digest],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
  return h("section", { "aria-labelledby": "lineage-title" },
    h("h2", { id: "lineage-title" }, `Lineage of version ${version.version}`),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])),
    keyValues("Params", version.params),
    keyValues("Metrics", version.metrics));
}

async function card(name, version) {
  const section = h("section", { "aria-labelledby": "card-title" },
    h("h2", { id: "card-title" }, `Model card of version ${version.version}`));
  if (!version.model_card) {
    section.append(h("p", { class: "muted" }, "No model card."));
    return section;
  }
  const html = await call(`/api/v1/models/${seg(name)}/versions/${version.version}/card`,
    { accept: "text/html" });
  // Rendered by the server from Markdown, with raw HTML shown as text.
  const body = h("div", { class: "markdown" });
  body.innerHTML = html;
  section.append(body);
  return section;
}

function timeline(events) {
  return h("section", { "aria-labelledby": "history-title" },
    h("h2", { id: "history-title" }, "History"),
    h("p", { class: "muted" }, "Newest first: the last 50 changes (ferroserve models history shows all)."),
    events.length
      ? h("ol", { class: "timeline" }, events.map((e) => h("li", {},
        h("time", { datetime: new Date(e.at).toISOString() }, when(e.at)), " ",
        h("strong", {}, e.action.replaceAll("_", " ")),
        e.version ? ` version ${e.version}` : "", ` by ${e.actor}`)))
      : h("p", { class: "muted" }, "Nothing recorded yet."));
}

/** What a promotion will change, in words. */
function promotionLines(name, version, stage, versions, servingVersion) {
  const lines = [`Version ${version.version} of ${name} moves from ${version.stage} to ${stage}.`];
  if (stage === "Production" || stage === "Staging") {
    const others = versions.filter((v) => v.stage === stage && v.version !== version.version);
    if (others.length) {
      lines.push(`Version${others.length > 1 ? "s" : ""} ${others.map((v) => v.version).join(", ")} ` +
        `now in ${stage} move${others.length > 1 ? "" : "s"} to Archived.`);
    }
  }
  lines.push(`${name} serves version ${servingVersion ?? "nothing"} now; afterwards it serves ` +
    "what its serving config selects (the Production version by default).");
  return lines;
}

function promoteControl(name, version, versions, servingVersion, refresh, status) {
  const select = h("select", { "aria-label": `Stage for version ${version.version}` },
    STAGES.filter((s) => s !== version.stage).map((s) => h("option", { value: s }, s)));
  const button = h("button", {
    type: "button",
    class: "promote",
    dataset: { version: String(version.version) },
    onclick: async () => {
      const stage = select.value;
      const ok = await confirmChange(`Move version ${version.version} to ${stage}?`,
        promotionLines(name, version, stage, versions, servingVersion), `Move to ${stage}`);
      if (!ok) return;
      try {
        const answer = await call(`/api/v1/models/${seg(name)}/versions/${version.version}/stage`,
          { method: "POST", body: { stage, archive_existing: true } });
        replace(status, h("p", { class: "ok", role: "status" },
          `Version ${version.version} is in ${stage}; ${name} serves version ` +
          `${answer.serving?.serving_version ?? "nothing"}.`));
        await refresh();
      } catch (error) {
        replace(status, failure(error));
      }
    },
  }, "Move");
  return h("span", { class: "inline" }, select, button);
}

function rollbackButton(name, versions, refresh, status) {
  const production = versions.filter((v) => v.stage === "Production").map((v) => v.version);
  if (!production.length) return null;
  return h("button", {
    type: "button",
    id: "rollback",
    class: "quiet",
    onclick: async () => {
      const ok = await confirmChange(`Roll back ${name}?`, [
        `Version ${production.join(", ")} (now Production) moves to Archived, and the version ` +
        "that was in Production before it comes back.",
      ], "Roll back");
      if (!ok) return;
      try {
        const answer = await call(`/api/v1/models/${seg(name)}/rollback`, { method: "POST", body: {} });
        replace(status, h("p", { class: "ok", role: "status" },
          `Version ${answer.version.version} is in Production again; ${name} serves version ` +
          `${answer.serving?.serving_version ?? "nothing"}.`));
        await refresh();
      } catch (error) {
        replace(status, failure(error));
      }
    },
  }, "Roll back");
}

function aliasForm(name, versions, refresh, status) {
  const alias = h("input", { id: "alias-name", name: "alias", required: true, pattern: "[A-Za-z0-9_.\\-]+" });
  const version = h("select", { id: "alias-version", name: "version" },
    versions.map((v) => h("option", { value: String(v.version) }, String(v.version))));
  return h("form", {
    class: "inline card",
    onsubmit: async (event) => {
      event.preventDefault();
      const ok = await confirmChange(`Point ${alias.value} at version ${version.value}?`,
        [`The alias ${alias.value} of ${name} will name version ${version.value}.`,
          "A serving config that serves this alias swaps to that version."], "Set alias");
      if (!ok) return;
      try {
        await call(`/api/v1/models/${seg(name)}/aliases/${seg(alias.value)}`,
          { method: "PUT", body: { version: Number(version.value) } });
        replace(status, h("p", { class: "ok", role: "status" }, `${alias.value} → ${version.value}`));
        await refresh();
      } catch (error) {
        replace(status, failure(error));
      }
    },
  },
  h("label", { for: "alias-name" }, "Alias"), alias,
  h("label", { for: "alias-version" }, "Version"), version,
  h("button", { type: "submit" }, "Set alias"));
}

export async function modelPage(main, name, session) {
  document.title = `${name} · ferroserve`;
  const status = h("div", { "aria-live": "polite" });
  const base = `/api/v1/models/${seg(name)}`;
  const render = async () => {
    const [details, listed, serving, history] = await Promise.all([
      call(base),
      call(`${base}/versions`),
      call(`${base}/serving`).catch(() => null),
      call(`${base}/history?limit=50&order=desc`),
    ]);
    const versions = listed.versions;
    const servingVersion = serving?.serving_version;
    const aliasesOf = (v) => Object.entries(details.aliases || {})
      .filter(([, n]) => n === v.version).map(([a]) => a).join(", ");
    const canDeploy = session.may("deploy");
    const rows = versions.slice().reverse().map((v) => [
      String(v.version),
      v.stage,
      v.status.state === "failed"
        ? h("span", { class: "warn", title: v.status.reason }, `failed: ${v.status.reason}`)
        : v.status.state,
      aliasesOf(v),
      String(v.version) === servingVersion ? h("strong", {}, "serving") : "",
      Object.entries(v.metrics || {}).map(([k, m]) => `${k} ${m}`).join(", "),
      when(v.created_at),
      canDeploy ? promoteControl(name, v, versions, servingVersion, render, status) : null,
    ].filter((cell) => cell !== null));
    const shown = versions.find((v) => String(v.version) === servingVersion) || versions[versions.length - 1];
    replace(main,
      h("p", {}, h("a", { href: "#/" }, "← Overview")),
      h("h1", {}, name),
      h("p", { class: "inline" }, h("a", { href: `#/models/${seg(name)}/rollout` }, "Rollout"),
        h("a", { href: `#/models/${seg(name)}/drift` }, "Drift")),
      details.description ? h("p", {}, details.description) : null,
      h("p", { id: "serving-now" }, `Serving version ${servingVersion ?? "nothing"}`,
        serving?.degraded ? h("span", { class: "warn" }, ` (degraded: ${serving.degraded})`) : ""),
      status,
      table("Versions",
        ["Version", "Stage", "Status", "Aliases", "Serving", "Metrics", "Created"]
          .concat(canDeploy ? ["Change stage"] : []),
        rows),
      canDeploy && versions.length
        ? h("div", { class: "inline" }, aliasForm(name, versions, render, status),
          rollbackButton(name, versions, render, status))
        : null,
      session.may("infer") && servingVersion ? await tryIt(name, shown) : null,
      shown ? lineage(shown) : null,
      shown ? await card(name, shown) : null,
      canDeploy ? await configEditor(name, render) : null,
      timeline(history.events || []));
  };
  await render();
}
