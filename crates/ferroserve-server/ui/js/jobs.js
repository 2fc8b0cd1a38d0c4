// Batch jobs: upload a file (streamed by the browser, with a progress
// bar) to score it with a model, follow every job's progress and ETA,
// download results and bad-row reports, cancel. Refreshed every second.

import { call, seg, authorization } from "./api.js";
import { every, h, replace, table, when, failure } from "./dom.js";
import { confirmChange } from "./confirm.js";

const REFRESH_MS = 1000;
const FORMATS = { csv: "text/csv", jsonl: "application/x-ndjson", parquet: "application/vnd.apache.parquet" };

function formatOf(file) {
  const ext = file.name.toLowerCase().split(".").pop();
  return ext === "ndjson" ? "jsonl" : ext in FORMATS ? ext : null;
}

/** Sends `file` as a job's input; `onProgress(0..1)` follows the upload. */
function upload(file, query, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/jobs?${new URLSearchParams(query)}`);
    const auth = authorization();
    if (auth) xhr.setRequestHeader("authorization", auth);
    xhr.setRequestHeader("content-type", FORMATS[query.format]);
    xhr.setRequestHeader("accept", "application/json");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        // The status says it.
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(answer);
      else reject(new Error((answer && answer.error) || `${xhr.status} ${xhr.statusText}`));
    };
    xhr.onerror = () => reject(new Error("the upload failed: the server could not be reached"));
    xhr.send(file);
  });
}

/** Downloads `path` with the signed-in key, saved as `name`. */
async function download(path, name, status) {
  try {
    const auth = authorization();
    const response = await fetch(path, { headers: auth ? { authorization: auth } : {} });
    if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    replace(status, failure(error));
  }
}

function uploadForm(models, refresh, status) {
  const model = models
    ? h("select", { id: "job-model", name: "model", required: true },
      models.map((m) => h("option", { value: m.name }, m.name)))
    : h("input", { id: "job-model", name: "model", required: true });
  const file = h("input", { id: "job-file", name: "file", type: "file", required: true, accept: ".csv,.jsonl,.ndjson,.parquet" });
  const output = h("select", { id: "job-output", name: "output_format" },
    h("option", { value: "csv" }, "CSV"), h("option", { value: "jsonl" }, "JSON lines"));
  const bar = h("progress", { id: "upload-progress", max: 100, value: 0 });
  const percent = h("span", { id: "upload-percent", "aria-live": "polite" }, "");
  const button = h("button", { type: "submit" }, "Upload and score");
  const form = h("form", {
    class: "card grid-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const chosen = file.files[0];
      const format = chosen && formatOf(chosen);
      if (!format) {
        replace(status, failure(new Error("choose a .csv, .jsonl or .parquet file")));
        return;
      }
      button.disabled = true;
      try {
        const job = await upload(chosen,
          { model: model.value, format, output_format: output.value, source: chosen.name },
          (share) => {
            bar.value = Math.round(share * 100);
            percent.textContent = `${bar.value} %`;
          });
        bar.value = 100;
        percent.textContent = "100 %";
        replace(status, h("p", { class: "ok", role: "status" }, `Job ${job.id} accepted.`));
        await refresh();
      } catch (error) {
        replace(status, failure(error));
      } finally {
        button.disabled = false;
      }
    },
  },
  h("h2", {}, "Score a file"),
  h("label", { for: "job-model" }, "Model"), model,
  h("label", { for: "job-file" }, "File (CSV, JSON lines, Parquet)"), file,
  h("label", { for: "job-output" }, "Results as"), output,
  h("label", { for: "upload-progress" }, "Upload"), h("span", { class: "inline" }, bar, percent),
  button);
  return form;
}

function eta(job) {
  if (job.eta_seconds === null || job.eta_seconds === undefined) return "";
  const s = Math.round(job.eta_seconds);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

function jobRow(job, session, refresh, status) {
  const done = ["succeeded", "failed", "cancelled"].includes(job.state);
  const progress = job.progress ?? (job.state === "succeeded" ? 1 : 0);
  const ext = job.spec?.output_format === "jsonl" ? "jsonl" : "csv";
  return [
    h("code", {}, job.id),
    job.model,
    h("span", { class: job.state === "failed" ? "error" : job.state === "succeeded" ? "ok" : "" }, job.state),
    h("span", { class: "inline" },
      h("progress", { max: 100, value: Math.round(progress * 100), "aria-label": `Progress of job ${job.id}` }),
      `${Math.round(progress * 100)} %`),
    `${job.rows_done}${job.rows_total != null ? ` / ${job.rows_total}` : ""}` +
      (job.rows_failed ? ` (${job.rows_failed} bad)` : ""),
    job.rows_per_second ? `${Math.round(job.rows_per_second)}/s` : "",
    done ? "" : eta(job),
    when(job.created_at),
    h("span", { class: "inline" },
      job.state === "succeeded"
        ? h("button", { type: "button", class: "quiet download",
          onclick: () => download(job.links.result, `${job.id}-results.${ext}`, status) }, "Results")
        : null,
      job.rows_failed
        ? h("button", { type: "button", class: "quiet",
          onclick: () => download(job.links.errors, `${job.id}-bad-rows.jsonl`, status) }, "Bad rows")
        : null,
      !done && session.may("infer")
        ? h("button", { type: "button", class: "quiet",
          onclick: async () => {
            if (!(await confirmChange(`Cancel job ${job.id}?`,
              [`Job ${job.id} stops at its next checkpoint; the rows scored so far stay.`], "Cancel job"))) return;
            try {
              await call(`/api/v1/jobs/${seg(job.id)}`, { method: "DELETE" });
              await refresh();
            } catch (error) {
              replace(status, failure(error));
            }
          } }, "Cancel")
        : null),
  ];
}

export async function jobsPage(main, session, alive) {
  document.title = "Jobs · ferroserve";
  const status = h("div", { "aria-live": "polite" });
  const list = h("div", { id: "jobs" });
  const refresh = async () => {
    const listed = await call("/api/v1/jobs?limit=50");
    replace(list, listed.jobs.length
      ? table("Jobs, newest first", ["Job", "Model", "State", "Progress", "Rows", "Rate", "ETA", "Created", ""],
        listed.jobs.map((job) => jobRow(job, session, refresh, status)))
      : h("p", { class: "muted" }, "No jobs yet."));
  };
  const models = session.may("read") ? (await call("/api/v1/models")).models : null;
  replace(main,
    h("h1", {}, "Jobs"),
    status,
    session.may("infer") ? uploadForm(models, refresh, status) : null,
    list);
  await refresh();
  every(REFRESH_MS, alive, refresh, status);
}
