// Try it: a form made from the serving version's feature schema (one
// field per named feature, its default from the schema or the reference
// profile's median) or, without one, from the model's input tensors; the
// answer is shown with the version that gave it and the latency.

import { call, seg } from "./api.js";
import { h, replace, failure } from "./dom.js";

/** A starting value for `feature`: its default, else the reference median. */
function startValue(feature, profile) {
  if (feature.default !== undefined && feature.default !== null) return feature.default;
  const stats = profile?.features?.find((f) => f.name === feature.name)?.summary;
  if (stats?.kind === "numeric") return stats.quantiles[Math.floor(stats.quantiles.length / 2)];
  if (stats?.kind === "categorical") return stats.categories[0]?.value ?? "";
  return feature.min ?? 0;
}

function featureField(feature, profile, i) {
  const id = `try-${i}`;
  const stats = profile?.features?.find((f) => f.name === feature.name)?.summary;
  const value = startValue(feature, profile);
  const field = stats?.kind === "categorical"
    ? h("select", { id, name: feature.name },
      stats.categories.map((c) => h("option", { value: c.value, selected: c.value === value }, c.value)))
    : h("input", { id, name: feature.name, type: feature.datatype === "BYTES" ? "text" : "number",
      step: "any", value, required: feature.default === undefined || feature.default === null });
  return [h("label", { for: id }, feature.name), field];
}

/** A tensor's data of zeros for one sample, as JSON text. */
function zeros(input) {
  const size = input.shape.reduce((n, d) => n * (d < 0 ? 1 : d), 1);
  return JSON.stringify(new Array(size).fill(input.datatype === "BYTES" ? "" : 0));
}

async function answer(out, request) {
  const started = performance.now();
  try {
    const reply = await request();
    const ms = performance.now() - started;
    replace(out, h("div", { class: "card", role: "status", id: "try-answer" },
      h("p", {}, `Version ${reply.version ?? "?"} answered in ${ms.toFixed(1)} ms.`),
      h("pre", {}, JSON.stringify(reply.body, null, 2))));
  } catch (error) {
    replace(out, failure(error));
  }
}

/** The "Try it" section of model `name`, served by `version`. */
export async function tryIt(name, version) {
  const out = h("div", { "aria-live": "polite" });
  const schema = version?.feature_schema;
  let form;
  if (schema && schema.features.length) {
    const profile = version.reference_profile;
    form = h("form", {
      class: "card grid-form",
      onsubmit: (event) => {
        event.preventDefault();
        const instance = {};
        schema.features.forEach((f, i) => {
          const el = form.querySelector(`#try-${i}`);
          if (el.value === "") return;
          instance[f.name] = el.type === "number" ? Number(el.value) : el.value;
        });
        answer(out, async () => {
          const reply = await call(`/v1/models/${seg(name)}:predict`, { method: "POST", body: { instances: [instance] } });
          return { version: reply.model_version, body: reply.predictions[0] };
        });
      },
    },
    schema.features.map((f, i) => featureField(f, profile, i)),
    h("button", { type: "submit" }, "Predict"));
  } else {
    const meta = await call(`/v2/models/${seg(name)}`);
    form = h("form", {
      class: "card grid-form",
      onsubmit: (event) => {
        event.preventDefault();
        answer(out, async () => {
          const inputs = meta.inputs.map((input, i) => ({
            name: input.name,
            datatype: input.datatype,
            shape: input.shape.map((d) => (d < 0 ? 1 : d)),
            data: JSON.parse(form.querySelector(`#try-${i}`).value),
          }));
          const reply = await call(`/v2/models/${seg(name)}/infer`, { method: "POST", body: { inputs } });
          return { version: reply.model_version, body: reply.outputs };
        });
      },
    },
    meta.inputs.map((input, i) => [
      h("label", { for: `try-${i}` }, `${input.name} (${input.datatype} [${input.shape.join(", ")}], flat)`),
      h("textarea", { id: `try-${i}`, rows: 2, cols: 40 }, zeros(input)),
    ]),
    h("button", { type: "submit" }, "Predict"));
  }
  return h("section", { "aria-labelledby": "try-title" },
    h("h2", { id: "try-title" }, "Try it"), form, out);
}
