// Validates the Kubernetes manifests of deploy/kubernetes offline, without
// a cluster and without the network:
//
// 1. Schemas. Every document of every manifest file is checked against the
//    schema of its kind: the Kubernetes OpenAPI schemas of the
//    `kubernetes-models` package and the CRD schemas of KEDA
//    (`@kubernetes-models/keda`) and prometheus-operator
//    (`@kubernetes-models/prometheus-operator`), all installed from npm.
//    On top of types, required fields and enums, the check is strict: a
//    field its schema does not declare (a typo such as `readinesProbe`) is
//    an error, where the API server would silently drop it. A kind with no
//    schema here is an error too, never skipped.
// 2. Properties of a multi-replica ferroserve: shared registry (no SQLite),
//    shutdown timings, probes, security context, selectors that match...
//    each checked against the files of the repository where it can be
//    (setting names from crates/ferroserve/src/config, probe routes from
//    crates/ferroserve-server/src/routes.rs, the user id from Dockerfile).
// 3. Negative cases: broken copies of the real manifests that each check
//    must reject, so that a check that stopped working is noticed.
//
// Usage: node validate.mjs [MANIFEST_DIR]   (default: the folder above this
// one). Prints one `ok` / `not ok` line per check and ends with
// `N passed, N failed`; exits 1 when a check failed, 2 when it cannot run.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { parseAllDocuments } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const manifestDir = path.resolve(process.argv[2] ?? path.join(here, ".."));
const repoRoot = path.resolve(manifestDir, "..", "..");

// The example Secret is validated but deliberately not applied by the
// kustomization (it must never overwrite real credentials).
const NOT_IN_KUSTOMIZATION = new Set(["secret.example.yaml"]);

// ---------------------------------------------------------------------------
// Reading the manifests

/** YAML parsed as kubectl does: YAML 1.1 scalars (`0440` is octal, `on`
 * is a boolean), a duplicate key is an error. */
function parseYaml(text, file) {
  const docs = [];
  for (const doc of parseAllDocuments(text, { version: "1.1", uniqueKeys: true })) {
    const errors = [...doc.errors, ...doc.warnings];
    if (errors.length > 0) {
      throw new Error(`${file}: ${errors.map((e) => e.message).join("; ")}`);
    }
    const value = doc.toJS();
    if (value !== null && value !== undefined) docs.push(value);
  }
  return docs;
}

/** Every manifest file under `dir`, relative, sorted; the validator's own
 * folder and the kustomization are not manifests. */
function manifestFiles(dir, prefix = "") {
  const files = [];
  for (const entry of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = path.posix.join(prefix, entry.name);
    if (entry.isDirectory()) {
      if (rel !== "validate" && entry.name !== "node_modules") files.push(...manifestFiles(dir, rel));
    } else if (/\.ya?ml$/.test(entry.name) && rel !== "kustomization.yaml") {
      files.push(rel);
    }
  }
  return files.sort();
}

function readRepoFile(rel) {
  const file = path.join(repoRoot, rel);
  if (!fs.existsSync(file)) throw new Error(`${rel} not found under ${repoRoot}`);
  return fs.readFileSync(file, "utf8");
}

// ---------------------------------------------------------------------------
// Schemas

// API groups whose schemas come from a CRD package; the others are
// Kubernetes' own, in kubernetes-models under their apiVersion.
const CRD_MODULES = {
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};

async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  if (!/^[A-Za-z0-9]+$/.test(kind) || !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion)) return null;
  const module = `${CRD_MODULES[apiVersion] ?? `kubernetes-models/${apiVersion}`}/${kind}`;
  try {
    return (await import(module))[kind] ?? null;
  } catch (e) {
    if (e.code === "ERR_MODULE_NOT_FOUND" || e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED") return null;
    throw e;
  }
}

/** A copy of `value` whose objects record which of their properties are
 * read; `nodes` collects, for each object, its path, keys and reads. */
function tracked(value, at, nodes) {
  if (Array.isArray(value)) return value.map((v, i) => tracked(v, `${at}[${i}]`, nodes));
  if (value === null || typeof value !== "object") return value;
  const node = { at, keys: Object.keys(value), read: new Set() };
  nodes.push(node);
  const copy = {};
  for (const [key, v] of Object.entries(value)) copy[key] = tracked(v, `${at}.${key}`, nodes);
  const note = (key) => {
    if (typeof key === "string") node.read.add(key);
  };
  return new Proxy(copy, {
    get(target, key, receiver) {
      note(key);
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      note(key);
      return Reflect.has(target, key);
    },
    getOwnPropertyDescriptor(target, key) {
      note(key);
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
  });
}

/** Problems of one document against its schema: schema errors, else
 * fields the schema does not declare. The compiled schema validators read
 * exactly the properties their schema declares (and every key of a map),
 * so a key of an object that the validator never read is unknown to the
 * schema. An object none of whose properties were read at all is
 * free-form in its schema (e.g. x-kubernetes-preserve-unknown-fields) and
 * has no unknown fields. */
async function schemaProblems(doc) {
  const Model = await modelFor(doc?.apiVersion, doc?.kind);
  if (!Model) {
    return [`no schema for apiVersion ${JSON.stringify(doc?.apiVersion)} kind ${JSON.stringify(doc?.kind)}: add its package to validate/package.json`];
  }
  const nodes = [];
  try {
    Model.prototype.validate.call(tracked(doc, "", nodes));
  } catch (e) {
    return [e.message];
  }
  const unknown = [];
  for (const node of nodes) {
    if (node.read.size === 0) continue;
    for (const key of node.keys) {
      if (!node.read.has(key)) unknown.push(`${node.at}.${key}`.replace(/^\./, ""));
    }
  }
  return unknown.map((field) => `unknown field ${field} (not in the ${doc.kind} schema)`);
}

// ---------------------------------------------------------------------------
// What the property checks look at

const clone = (value) => structuredClone(value);
const isSubset = (small, big) =>
  small && Object.keys(small).length > 0 && Object.entries(small).every(([k, v]) => big?.[k] === v);
const portOf = (address) => Number(String(address).split(":").pop());
const pod = (b) => b.deployment.spec.template.spec;
const podLabels = (b) => b.deployment.spec.template.metadata?.labels ?? {};
const server = (b) => pod(b).containers.find((c) => c.name === "ferroserve") ?? pod(b).containers[0];
const allContainers = (b) => [...(pod(b).initContainers ?? []), ...pod(b).containers];
const env = (container, name) => (container.env ?? []).find((e) => e.name === name);
const literal = (container, name) => env(container, name)?.value;
const secretValues = (b) => ({ ...b.secret?.stringData });
const namedPort = (container, name) => (container.ports ?? []).find((p) => p.name === name);

/** Where a setting comes from: a literal, a key of the example Secret
 * (explicitly or through envFrom), or somewhere this check cannot see. */
function source(b, container, name) {
  const entry = env(container, name);
  if (entry?.value !== undefined) return { literal: entry.value };
  const ref = entry?.valueFrom?.secretKeyRef;
  if (ref) {
    return ref.name === b.secret?.metadata?.name
      ? { secretKey: ref.key, value: secretValues(b)[ref.key] }
      : { other: `Secret ${ref.name}, not ${b.secret?.metadata?.name}` };
  }
  if (entry) return { other: "a source other than the Secret" };
  for (const from of container.envFrom ?? []) {
    if (from.secretRef?.name === b.secret?.metadata?.name && name in secretValues(b)) {
      return { secretKey: name, value: secretValues(b)[name] };
    }
  }
  return { missing: true };
}

function preStopSeconds(container) {
  const preStop = container.lifecycle?.preStop;
  if (preStop?.sleep) return Number(preStop.sleep.seconds);
  const command = preStop?.exec?.command ?? [];
  const sleep = command.findIndex((word) => /(^|\/)sleep$/.test(word));
  return sleep >= 0 ? Number(command[sleep + 1]) : undefined;
}

/** FERROSERVE_* variables that `ferroserve serve` reads. */
function settingNames() {
  const dir = "crates/ferroserve/src/config";
  const names = new Set();
  for (const file of fs.readdirSync(path.join(repoRoot, dir))) {
    if (!file.endsWith(".rs")) continue;
    for (const [name] of readRepoFile(`${dir}/${file}`).matchAll(/FERROSERVE_[A-Z0-9_]+/g)) names.add(name);
  }
  if (names.size < 20) throw new Error(`found only ${names.size} FERROSERVE_* settings in ${dir}`);
  return names;
}

// ---------------------------------------------------------------------------
// Property checks: each returns its problems (none: it holds) and may add
// what it measured to `facts` for the report.

const PROPERTIES = {
  "several replicas share one registry: no SQLite, registry, artifact store and Redis from the Secret"(b) {
    const problems = [];
    const replicas = Math.max(b.deployment.spec.replicas ?? 1, b.scaledObject?.spec?.minReplicaCount ?? 0);
    if (replicas <= 1) return [`expected several replicas, the Deployment runs ${replicas}`];
    const c = server(b);
    const shared = [
      ["FERROSERVE_REGISTRY_URL", /^postgres(ql)?:\/\//, "a postgres:// URL"],
      ["FERROSERVE_ARTIFACT_STORE", /^s3:\/\//, "an s3:// URL"],
      ["FERROSERVE_REDIS_URL", /^rediss?:\/\//, "a redis:// URL"],
    ];
    for (const [name, shape, what] of shared) {
      const from = source(b, c, name);
      if (from.missing) problems.push(`${name} is not set: ${replicas} replicas would each use their own default`);
      else if (from.literal !== undefined) problems.push(`${name} is a literal (${from.literal}), not read from the Secret`);
      else if (from.other) problems.push(`${name} comes from ${from.other}`);
      else if (from.value === undefined) problems.push(`${name}: the Secret has no key ${from.secretKey}`);
      else if (!shape.test(from.value)) problems.push(`${name}: the Secret's ${from.secretKey} must be ${what}, is ${from.value}`);
    }
    const words = [...(c.command ?? []), ...(c.args ?? [])];
    if (words.some((w) => /--registry-url|--artifact-store|--redis-url/.test(w))) {
      problems.push("the command line sets the registry, artifact store or Redis (it would override the Secret)");
    }
    for (const container of allContainers(b)) {
      for (const e of container.env ?? []) {
        if (/sqlite/i.test(e.value ?? "")) problems.push(`${container.name}: ${e.name} mentions sqlite`);
      }
      const line = [...(container.command ?? []), ...(container.args ?? [])].join(" ");
      if (/sqlite/i.test(line)) problems.push(`${container.name}: the command line mentions sqlite`);
    }
    if (/sqlite/i.test(Object.values(secretValues(b)).join(" "))) problems.push("the Secret mentions sqlite");
    return problems;
  },

  "shutdown: preStop sleep + drain (twice: requests, then jobs) end before terminationGracePeriodSeconds"(b, facts) {
    const c = server(b);
    const problems = [];
    const preStop = preStopSeconds(c);
    const drain = Number(literal(c, "FERROSERVE_DRAIN_TIMEOUT_S"));
    const grace = pod(b).terminationGracePeriodSeconds ?? 30;
    const timeoutMs = Number(literal(c, "FERROSERVE_REQUEST_TIMEOUT_MS") ?? 30000);
    if (!(preStop > 0)) problems.push("no preStop sleep: the pod would stop accepting before it leaves the endpoints");
    if (!(drain > 0)) problems.push("FERROSERVE_DRAIN_TIMEOUT_S is not set to a number of seconds");
    if (problems.length > 0) return problems;
    // serve.rs: the HTTP and gRPC front ends drain for up to the drain
    // time, then running jobs get as long again to reach a checkpoint.
    if (!(preStop + drain < grace)) problems.push(`preStop ${preStop} s + drain ${drain} s >= grace period ${grace} s`);
    if (!(preStop + 2 * drain < grace)) {
      problems.push(`preStop ${preStop} s + 2 x drain ${drain} s (requests, then jobs) >= grace period ${grace} s`);
    }
    if (timeoutMs > drain * 1000) {
      problems.push(`request deadline ${timeoutMs} ms > drain ${drain} s: a request accepted before SIGTERM could be cut`);
    }
    facts.push(`preStop ${preStop} s + drain ${drain} s + jobs ${drain} s = ${preStop + 2 * drain} s < ${grace} s`);
    return problems;
  },

  "probes: startup /startupz, liveness /livez, readiness /readyz on the HTTP port, routes that exist"(b) {
    const c = server(b);
    const routes = readRepoFile("crates/ferroserve-server/src/routes.rs");
    const httpPort = portOf(literal(c, "FERROSERVE_HTTP") ?? "127.0.0.1:8080");
    const problems = [];
    for (const [probe, route] of [["startupProbe", "/startupz"], ["livenessProbe", "/livez"], ["readinessProbe", "/readyz"]]) {
      const get = c[probe]?.httpGet;
      if (!get) {
        problems.push(`${probe} missing (or not an httpGet)`);
        continue;
      }
      if (get.path !== route) problems.push(`${probe} asks ${get.path}, expected ${route}`);
      if (!routes.includes(`"${get.path}"`)) problems.push(`${probe}: ${get.path} is not a route in routes.rs`);
      const port = typeof get.port === "string" ? namedPort(c, get.port)?.containerPort : get.port;
      if (port !== httpPort) problems.push(`${probe} asks port ${get.port} (${port}), ferroserve serves HTTP on ${httpPort}`);
    }
    return problems;
  },

  "ports: http, grpc and metrics named and equal to the addresses ferroserve listens on"(b) {
    const c = server(b);
    const problems = [];
    for (const [name, setting] of [["http", "FERROSERVE_HTTP"], ["grpc", "FERROSERVE_GRPC"], ["metrics", "FERROSERVE_METRICS_HTTP"]]) {
      const address = literal(c, setting);
      const port = namedPort(c, name);
      if (!address) problems.push(`${setting} is not set`);
      else if (!address.startsWith("0.0.0.0:") && !address.startsWith("[::]:")) problems.push(`${setting}=${address} listens on the loopback only`);
      if (!port) problems.push(`no container port named ${name}`);
      else if (address && port.containerPort !== portOf(address)) problems.push(`port ${name} is ${port.containerPort}, ${setting} says ${address}`);
    }
    return problems;
  },

  "security: non-root (the Dockerfile's uid), read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault seccomp"(b) {
    const uid = Number(readRepoFile("Dockerfile").match(/--uid\s+(\d+)/)?.[1]);
    const podContext = pod(b).securityContext ?? {};
    const problems = [];
    if (!uid) problems.push("no `--uid N` in the Dockerfile");
    for (const c of allContainers(b)) {
      const s = { ...podContext, ...c.securityContext };
      const is = (ok, what) => ok || problems.push(`${c.name}: ${what}`);
      is(s.runAsNonRoot === true, "runAsNonRoot is not true");
      is(s.runAsUser === uid, `runAsUser ${s.runAsUser}, the image's user is ${uid}`);
      is(c.securityContext?.readOnlyRootFilesystem === true, "readOnlyRootFilesystem is not true");
      is(c.securityContext?.allowPrivilegeEscalation === false, "allowPrivilegeEscalation is not false");
      is(s.privileged !== true, "privileged");
      is((c.securityContext?.capabilities?.drop ?? []).includes("ALL"), "capabilities do not drop ALL");
      is((c.securityContext?.capabilities?.add ?? []).length === 0, "adds capabilities");
      is(s.seccompProfile?.type === "RuntimeDefault", "seccompProfile is not RuntimeDefault");
    }
    return problems;
  },

  "writable paths: the data dir and /tmp are emptyDir volumes"(b) {
    const c = server(b);
    const problems = [];
    const dataDir = literal(c, "FERROSERVE_DATA_DIR");
    if (!dataDir) problems.push("FERROSERVE_DATA_DIR is not set");
    for (const dir of [dataDir, "/tmp"].filter(Boolean)) {
      const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === dir);
      const volume = (pod(b).volumes ?? []).find((v) => v.name === mount?.name);
      if (!mount) problems.push(`nothing mounted at ${dir} (read-only root filesystem)`);
      else if (!volume?.emptyDir) problems.push(`${dir} is not an emptyDir volume`);
      else if (mount.readOnly) problems.push(`${dir} is mounted read-only`);
    }
    return problems;
  },

  "rolling update never goes below the current capacity (maxUnavailable 0)"(b) {
    const strategy = b.deployment.spec.strategy ?? {};
    const unavailable = strategy.rollingUpdate?.maxUnavailable;
    if (strategy.type !== "RollingUpdate") return [`strategy is ${strategy.type ?? "the default"}, expected RollingUpdate`];
    return unavailable === 0 || unavailable === "0%" ? [] : [`maxUnavailable is ${unavailable ?? "25% (default)"}`];
  },

  "replicas spread across nodes"(b) {
    const labels = podLabels(b);
    const spread = (pod(b).topologySpreadConstraints ?? []).some(
      (t) => t.topologyKey === "kubernetes.io/hostname" && t.whenUnsatisfiable === "DoNotSchedule" && isSubset(t.labelSelector?.matchLabels, labels),
    );
    const anti = (pod(b).affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).some(
      (t) => t.topologyKey === "kubernetes.io/hostname" && isSubset(t.labelSelector?.matchLabels, labels),
    );
    return spread || anti ? [] : ["no hostname topology spread constraint (DoNotSchedule) or required pod anti-affinity selecting the pods"];
  },

  "resources: CPU and memory requested, memory limited, for every container"(b) {
    const problems = [];
    for (const c of allContainers(b)) {
      for (const [kind, what] of [["requests", "cpu"], ["requests", "memory"], ["limits", "memory"]]) {
        if (!c.resources?.[kind]?.[what]) problems.push(`${c.name}: no ${what} ${kind}`);
      }
    }
    return problems;
  },

  "pod: no service links (they would set FERROSERVE_* variables), no API token"(b) {
    const problems = [];
    if (pod(b).enableServiceLinks !== false) problems.push("enableServiceLinks is not false");
    if (pod(b).automountServiceAccountToken !== false) problems.push("automountServiceAccountToken is not false");
    return problems;
  },

  "every FERROSERVE_* variable set is a setting of ferroserve serve"(b) {
    const known = settingNames();
    return allContainers(b).flatMap((c) =>
      (c.env ?? []).filter((e) => e.name.startsWith("FERROSERVE_") && !known.has(e.name)).map((e) => `${c.name}: ${e.name} is not a setting (crates/ferroserve/src/config)`),
    );
  },

  "the example Secret holds only placeholders, and every key the pods need"(b) {
    if (!b.secret) return ["no Secret among the manifests"];
    const problems = [];
    if (b.secret.data) problems.push("the example uses data: (base64); use stringData with visible placeholders");
    for (const [key, value] of Object.entries(secretValues(b))) {
      if (!String(value).includes("REPLACE_ME")) problems.push(`${key} is not an obvious placeholder (no REPLACE_ME)`);
    }
    for (const c of allContainers(b)) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref && !ref.optional && !(ref.key in secretValues(b))) problems.push(`${c.name}: ${e.name} needs key ${ref.key}, missing from the example`);
      }
    }
    for (const v of pod(b).volumes ?? []) {
      for (const item of v.secret?.items ?? []) {
        if (!(item.key in secretValues(b))) problems.push(`volume ${v.name} needs key ${item.key}, missing from the example`);
      }
    }
    return problems;
  },

  "PodDisruptionBudget selects the Deployment's pods and lets one go at a time"(b) {
    const pdb = b.pdb;
    if (!pdb) return ["no PodDisruptionBudget"];
    const problems = [];
    if (!isSubset(pdb.spec.selector?.matchLabels, podLabels(b))) problems.push("its selector does not match the pod template's labels");
    if (pdb.metadata.namespace !== b.deployment.metadata.namespace) problems.push("not in the Deployment's namespace");
    const min = b.scaledObject?.spec?.minReplicaCount ?? b.deployment.spec.replicas;
    const { maxUnavailable, minAvailable } = pdb.spec;
    if (maxUnavailable !== undefined && maxUnavailable !== 1) problems.push(`maxUnavailable ${maxUnavailable}, expected 1`);
    if (minAvailable !== undefined && !(Number(minAvailable) >= 2 && Number(minAvailable) < min)) {
      problems.push(`minAvailable ${minAvailable} must be at least 2 and below ${min} replicas (else no drain can proceed)`);
    }
    if (maxUnavailable === undefined && minAvailable === undefined) problems.push("sets neither maxUnavailable nor minAvailable");
    return problems;
  },

  "ScaledObject targets the Deployment and scales on ferroserve_queue_depth"(b, facts) {
    const so = b.scaledObject;
    if (!so) return ["no ScaledObject"];
    const problems = [];
    const ref = so.spec.scaleTargetRef ?? {};
    if (ref.name !== b.deployment.metadata.name) problems.push(`scaleTargetRef.name is ${ref.name}, the Deployment is ${b.deployment.metadata.name}`);
    if ((ref.kind ?? "Deployment") !== "Deployment" || (ref.apiVersion ?? "apps/v1") !== "apps/v1") problems.push("scaleTargetRef is not an apps/v1 Deployment");
    if (so.metadata.namespace !== b.deployment.metadata.namespace) problems.push("not in the Deployment's namespace");
    const { minReplicaCount: min, maxReplicaCount: max } = so.spec;
    if (min !== b.deployment.spec.replicas) problems.push(`minReplicaCount ${min} differs from the Deployment's replicas ${b.deployment.spec.replicas}`);
    if (!(min >= 2)) problems.push(`minReplicaCount ${min}: fewer than 2 replicas`);
    if (!(max > min)) problems.push(`maxReplicaCount ${max} is not above minReplicaCount ${min}`);
    const trigger = (so.spec.triggers ?? []).find((t) => t.type === "prometheus");
    const query = trigger?.metadata?.query ?? "";
    if (!trigger) problems.push("no prometheus trigger");
    else {
      if (!query.includes("ferroserve_queue_depth")) problems.push(`the query does not read ferroserve_queue_depth: ${query}`);
      if (b.metricsService && !query.includes(`job="${b.metricsService.metadata.name}"`)) problems.push(`the query does not filter on job="${b.metricsService.metadata.name}"`);
      if (b.namespace && !query.includes(`namespace="${b.namespace}"`)) problems.push(`the query does not filter on namespace="${b.namespace}"`);
      if ((trigger.metricType ?? "AverageValue") !== "AverageValue") problems.push("metricType is not AverageValue (per replica average)");
      if (!(Number(trigger.metadata.threshold) > 0)) problems.push("no positive threshold");
    }
    facts.push(`${min}..${max} replicas, ${query}`);
    return problems;
  },

  "Services select the pods and name container ports; gRPC and HTTP exposed"(b) {
    const problems = [];
    const ports = server(b).ports ?? [];
    for (const svc of b.services) {
      if (!isSubset(svc.spec.selector, podLabels(b))) problems.push(`Service ${svc.metadata.name}: selector does not match the pods`);
      for (const p of svc.spec.ports ?? []) {
        const target = p.targetPort ?? p.port;
        const found = typeof target === "string" ? ports.find((c) => c.name === target) : ports.find((c) => c.containerPort === target);
        if (!found) problems.push(`Service ${svc.metadata.name}: port ${p.name} targets ${target}, no such container port`);
      }
    }
    const main = b.services.find((s) => s.metadata.name === b.deployment.metadata.name);
    for (const name of ["http", "grpc"]) {
      if (!main?.spec.ports?.some((p) => p.targetPort === name)) problems.push(`Service ${b.deployment.metadata.name} does not expose ${name}`);
    }
    return problems;
  },

  "ServiceMonitor scrapes the metrics port of exactly one Service"(b) {
    const sm = b.serviceMonitor;
    if (!sm) return ["no ServiceMonitor"];
    const selected = b.services.filter((s) => isSubset(sm.spec.selector?.matchLabels, s.metadata.labels));
    if (selected.length !== 1) return [`its selector matches ${selected.length} Services: ${selected.map((s) => s.metadata.name).join(", ")}`];
    const problems = [];
    const svc = selected[0];
    for (const endpoint of sm.spec.endpoints ?? []) {
      const port = svc.spec.ports?.find((p) => p.name === endpoint.port);
      if (!port) problems.push(`endpoint port ${endpoint.port} is not a port of Service ${svc.metadata.name}`);
      else if (port.targetPort !== "metrics") problems.push(`Service ${svc.metadata.name} port ${port.name} does not target the metrics container port`);
    }
    if (svc !== b.metricsService) problems.push(`it scrapes ${svc.metadata.name}, the Service with the metrics port is ${b.metricsService?.metadata.name}`);
    return problems;
  },

  "NetworkPolicy: HTTP/gRPC in, metrics from monitoring only, egress to DNS, PostgreSQL, Redis, S3"(b) {
    const np = b.networkPolicy;
    if (!np) return ["no NetworkPolicy"];
    const problems = [];
    if (!isSubset(np.spec.podSelector?.matchLabels, podLabels(b))) problems.push("its podSelector does not match the pods");
    for (const type of ["Ingress", "Egress"]) if (!(np.spec.policyTypes ?? []).includes(type)) problems.push(`policyTypes lacks ${type}`);
    const ingressFor = (port) => (np.spec.ingress ?? []).filter((r) => !r.ports || r.ports.some((p) => p.port === port));
    for (const port of ["http", "grpc"]) if (ingressFor(port).length === 0) problems.push(`no ingress to ${port}`);
    const metrics = ingressFor("metrics");
    if (metrics.length === 0) problems.push("no ingress to metrics (Prometheus could not scrape)");
    for (const rule of metrics) {
      const onlyMonitoring =
        (rule.from ?? []).length > 0 &&
        rule.from.every((f) => !f.ipBlock && f.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "monitoring");
      if (!onlyMonitoring) problems.push("metrics is open to more than the monitoring namespace");
    }
    const egressPorts = (np.spec.egress ?? []).flatMap((r) => (r.ports ?? []).map((p) => `${p.port}/${p.protocol ?? "TCP"}`));
    for (const need of ["53/UDP", "5432/TCP", "6379/TCP", "443/TCP"]) if (!egressPorts.includes(need)) problems.push(`no egress to ${need}`);
    return problems;
  },

  "one autoscaler: only the ScaledObject targets the Deployment by default"(b) {
    const applied = b.applied.filter(
      (d) => (d.kind === "ScaledObject" || d.kind === "HorizontalPodAutoscaler") && d.spec?.scaleTargetRef?.name === b.deployment.metadata.name,
    );
    return applied.length === 1 && applied[0].kind === "ScaledObject" ? [] : [`kustomization applies ${applied.map((d) => d.kind).join(" + ") || "no autoscaler"}`];
  },
};

/** The kustomization's own checks: what it lists exists, and it lists
 * every manifest but the example Secret and optional/. */
function kustomizationProblems(k, files) {
  const problems = [];
  if (k.apiVersion !== "kustomize.config.k8s.io/v1beta1" || k.kind !== "Kustomization") problems.push("not a kustomize.config.k8s.io/v1beta1 Kustomization");
  const known = new Set(["apiVersion", "kind", "namespace", "resources", "labels", "commonLabels", "images", "patches", "configMapGenerator", "secretGenerator", "components"]);
  for (const key of Object.keys(k)) if (!known.has(key)) problems.push(`unexpected key ${key}`);
  const resources = k.resources ?? [];
  for (const r of resources) if (!files.includes(r)) problems.push(`lists ${r}, which is not a manifest here`);
  for (const f of files) {
    const expected = !NOT_IN_KUSTOMIZATION.has(f) && !f.startsWith("optional/");
    if (expected && !resources.includes(f)) problems.push(`does not list ${f}`);
    if (!expected && resources.includes(f)) problems.push(`lists ${f}, which must not be applied by default`);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// The bundle the property checks read: the documents by role, with the
// kustomization's namespace applied as `kubectl apply -k` would.

function bundleOf(byFile, kustomization) {
  const namespace = kustomization.namespace;
  const applied = [];
  for (const file of kustomization.resources ?? []) {
    for (const doc of byFile[file] ?? []) {
      const copy = clone(doc);
      if (namespace && copy.kind !== "Namespace") copy.metadata = { ...copy.metadata, namespace };
      applied.push(copy);
    }
  }
  const all = Object.values(byFile).flat();
  const only = (list, what) => {
    if (list.length !== 1) throw new Error(`expected one ${what}, found ${list.length}`);
    return list[0];
  };
  const services = applied.filter((d) => d.kind === "Service");
  return {
    namespace,
    applied,
    deployment: only(applied.filter((d) => d.kind === "Deployment"), "Deployment"),
    secret: all.find((d) => d.kind === "Secret"),
    pdb: applied.find((d) => d.kind === "PodDisruptionBudget"),
    scaledObject: applied.find((d) => d.kind === "ScaledObject"),
    serviceMonitor: applied.find((d) => d.kind === "ServiceMonitor"),
    networkPolicy: applied.find((d) => d.kind === "NetworkPolicy"),
    services,
    metricsService: services.find((s) => s.spec.ports?.some((p) => p.targetPort === "metrics")),
  };
}

// ---------------------------------------------------------------------------
// Negative cases: each breaks a copy of the real manifests and names the
// check that must reject it.

const firstContainer = (d) => d.spec.template.spec.containers[0];
const setEnv = (c, name, value) => {
  c.env = [...(c.env ?? []).filter((e) => e.name !== name), { name, value }];
};

const SCHEMA_NEGATIVES = [
  ["a wrong field type (Deployment spec.replicas: \"3\")", "Deployment", (d) => (d.spec.replicas = "3")],
  ["a missing required field (Deployment without spec.selector)", "Deployment", (d) => delete d.spec.selector],
  ["an unknown field (container readinesProbe, a typo)", "Deployment", (d) => {
    const c = firstContainer(d);
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
  }],
  ["an unknown field in a securityContext (runAsNonroot)", "Deployment", (d) => (d.spec.template.spec.securityContext.runAsNonroot = true)],
  ["a CRD unknown field (ScaledObject spec.minReplicas, the HPA's name)", "ScaledObject", (d) => (d.spec.minReplicas = 3)],
  ["a CRD wrong field type (ScaledObject spec.maxReplicaCount: \"10\")", "ScaledObject", (d) => (d.spec.maxReplicaCount = "10")],
  ["a CRD missing required field (ScaledObject without scaleTargetRef)", "ScaledObject", (d) => delete d.spec.scaleTargetRef],
  ["a CRD wrong field type (ServiceMonitor endpoint port: 9090)", "ServiceMonitor", (d) => (d.spec.endpoints[0].port = 9090)],
  ["a wrong enum value (NetworkPolicy policyTypes: [Inbound])", "NetworkPolicy", (d) => (d.spec.policyTypes = ["Inbound"])],
  ["a kind without a schema (example.com/v1 Widget)", "Deployment", (d) => Object.assign(d, { apiVersion: "example.com/v1", kind: "Widget" })],
];

const PROPERTY_NEGATIVES = [
  ["a SQLite registry URL as a literal", "several replicas", (b) => setEnv(server(b), "FERROSERVE_REGISTRY_URL", "sqlite:///data/registry.db?mode=rwc")],
  ["no registry URL at all (the data dir's SQLite)", "several replicas", (b) => {
    server(b).env = server(b).env.filter((e) => e.name !== "FERROSERVE_REGISTRY_URL");
  }],
  ["an artifact store on the pod's disk", "several replicas", (b) => (b.secret.stringData["artifact-store"] = "file:///data/artifacts")],
  ["a grace period of 40 s", "shutdown", (b) => (pod(b).terminationGracePeriodSeconds = 40)],
  ["no preStop hook", "shutdown", (b) => delete server(b).lifecycle],
  ["no readiness probe", "probes", (b) => delete server(b).readinessProbe],
  ["a probe on a route ferroserve does not have (/healthz)", "probes", (b) => (server(b).livenessProbe.httpGet.path = "/healthz")],
  ["a writable root filesystem", "security", (b) => (server(b).securityContext.readOnlyRootFilesystem = false)],
  ["running as root", "security", (b) => (pod(b).securityContext.runAsUser = 0)],
  ["maxUnavailable 1 in the rolling update", "rolling update", (b) => (b.deployment.spec.strategy.rollingUpdate.maxUnavailable = 1)],
  ["a PodDisruptionBudget selecting other pods", "PodDisruptionBudget", (b) => (b.pdb.spec.selector.matchLabels = { "app.kubernetes.io/name": "other" })],
  ["a ScaledObject targeting another Deployment", "ScaledObject", (b) => (b.scaledObject.spec.scaleTargetRef.name = "ferroserve-old")],
  ["a misspelt setting (FERROSERVE_DRAIN_TIMEOUT)", "every FERROSERVE_*", (b) => setEnv(server(b), "FERROSERVE_DRAIN_TIMEOUT", "30")],
  ["a real-looking secret in the example", "the example Secret", (b) => (b.secret.stringData["aws-secret-access-key"] = "wJalrXUtnFEMI/K7MDENG")],
  ["metrics open to every namespace", "NetworkPolicy", (b) => (b.networkPolicy.spec.ingress[1].from = [{ namespaceSelector: {} }])],
];

// ---------------------------------------------------------------------------

async function main() {
  if (!(await modelFor("apps/v1", "Deployment")) || !(await modelFor("keda.sh/v1alpha1", "ScaledObject"))) {
    console.error(`error: the schema packages are not installed: run npm ci --prefix ${here}`);
    process.exit(2);
  }
  let passed = 0;
  let failed = 0;
  const report = (ok, name, details = []) => {
    if (ok) passed++;
    else failed++;
    console.log(`${ok ? "ok" : "not ok"} - ${name}`);
    for (const line of details) console.log(`    ${line}`);
  };

  // 1. Every document against its schema.
  const files = manifestFiles(manifestDir);
  const byFile = {};
  for (const file of files) {
    try {
      byFile[file] = parseYaml(fs.readFileSync(path.join(manifestDir, file), "utf8"), file);
    } catch (e) {
      report(false, `yaml: ${file}`, [e.message]);
      byFile[file] = [];
      continue;
    }
    for (const doc of byFile[file]) {
      const problems = await schemaProblems(doc);
      report(problems.length === 0, `schema: ${file} ${doc.apiVersion} ${doc.kind} ${doc.metadata?.name}`, problems);
    }
  }
  let kustomization;
  try {
    [kustomization] = parseYaml(fs.readFileSync(path.join(manifestDir, "kustomization.yaml"), "utf8"), "kustomization.yaml");
    const problems = kustomizationProblems(kustomization, files);
    report(problems.length === 0, "kustomization.yaml lists every manifest but the example Secret and optional/", problems);
  } catch (e) {
    report(false, "kustomization.yaml", [e.message]);
  }

  // 2. The properties of the service as a whole.
  let bundle;
  try {
    bundle = bundleOf(byFile, kustomization ?? {});
  } catch (e) {
    report(false, "the manifests hold one Deployment to check", [e.message]);
  }
  const runProperty = (name, b) => {
    const facts = [];
    try {
      return { problems: PROPERTIES[name](b, facts), facts };
    } catch (e) {
      return { problems: [`cannot check: ${e.message}`], facts };
    }
  };
  if (bundle) {
    for (const name of Object.keys(PROPERTIES)) {
      const { problems, facts } = runProperty(name, bundle);
      report(problems.length === 0, name, problems.length ? problems : facts);
    }
  }

  // 3. Broken copies must be rejected.
  const docOf = (kind) => Object.values(byFile).flat().find((d) => d.kind === kind);
  for (const [what, kind, breakIt] of SCHEMA_NEGATIVES) {
    const doc = docOf(kind);
    if (!doc) {
      report(false, `rejects ${what}`, [`no ${kind} to break`]);
      continue;
    }
    const broken = clone(doc);
    breakIt(broken);
    const problems = await schemaProblems(broken);
    report(problems.length > 0, `rejects ${what}`, problems.length ? [`-> ${problems[0]}`] : ["accepted: the schema check no longer catches this"]);
  }
  {
    let error;
    try {
      parseYaml("apiVersion: v1\nkind: Service\nkind: Secret\n", "duplicate.yaml");
    } catch (e) {
      error = e.message.split("\n")[0].replace(/:$/, "");
    }
    report(Boolean(error), "rejects a duplicate key in YAML", error ? [`-> ${error}`] : ["accepted"]);
  }
  if (bundle) {
    for (const [what, prefix, breakIt] of PROPERTY_NEGATIVES) {
      const name = Object.keys(PROPERTIES).find((n) => n.startsWith(prefix));
      const broken = bundleOf(clone(byFile), kustomization ?? {});
      breakIt(broken);
      const { problems } = runProperty(name, broken);
      report(problems.length > 0, `rejects ${what}`, problems.length ? [`-> ${problems[0]}`] : [`accepted by "${name}"`]);
    }
  }

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`error: ${e.stack ?? e}`);
  process.exit(2);
});
