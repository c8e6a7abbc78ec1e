// Renders a kustomization (deploy/k8s/base and overlays) without kubectl: the part of Kustomize
// this repository uses, and nothing else. A field outside that part is refused, naming it, so
// the tree cannot drift into what this renderer would silently get wrong. Where `kubectl` is
// installed, test/deploy/manifests.test.ts renders every overlay with `kubectl kustomize` too and
// requires the same objects.
//
// Supported, in Kustomize's order: `resources` (files and folders with a kustomization.yaml),
// `patches` (strategic merge from a file, or JSON 6902 inline with a `target` of kind, name
// regex and label selector), `namespace`, `replicas`, `images` (newName, newTag, digest).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as YAML gives it. */
export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface PatchTarget {
  kind?: string;
  name?: string;
  labelSelector?: string;
}

interface Kustomization {
  resources?: string[];
  namespace?: string;
  patches?: { path?: string; patch?: string; target?: PatchTarget }[];
  replicas?: { name: string; count: number }[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
}

const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'patches', 'replicas', 'images']);

/** Kinds without a namespace (the ones a kustomization here could meet). */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'ClusterIssuer',
  'IngressClass',
  'PriorityClass',
  'StorageClass',
  'PersistentVolume',
]);

/**
 * Strategic-merge keys of the lists a patch may merge into (from the Kubernetes API's
 * `x-kubernetes-patch-merge-key`); any other list is replaced whole, as Kubernetes does.
 */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  imagePullSecrets: 'name',
  topologySpreadConstraints: 'topologyKey',
};

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readYamlDocuments(file: string): Json[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`);
      return document.toJS() as Json;
    })
    .filter((value) => value !== null && value !== undefined);
}

function readKustomization(dir: string): Kustomization {
  const file = join(dir, 'kustomization.yaml');
  if (!existsSync(file)) throw new Error(`kustomize: ${dir} has no kustomization.yaml`);
  const [raw] = readYamlDocuments(file);
  if (!isObject(raw)) throw new TypeError(`${file}: expected a mapping`);
  const unknown = Object.keys(raw).filter((key) => !SUPPORTED.has(key));
  if (unknown.length > 0)
    throw new TypeError(
      `${file}: ${unknown.join(', ')} not supported by scripts/kustomize.ts (${[...SUPPORTED].join(', ')})`,
    );
  return raw as unknown as Kustomization;
}

function asObject(value: Json, where: string): KubernetesObject {
  if (!isObject(value) || typeof value.kind !== 'string' || typeof value.apiVersion !== 'string')
    throw new TypeError(`${where}: every document must have apiVersion and kind`);
  const metadata = value.metadata;
  if (!isObject(metadata) || typeof metadata.name !== 'string')
    throw new TypeError(`${where}: ${value.kind} without metadata.name`);
  return value as unknown as KubernetesObject;
}

/** Strategic merge of `patch` into `target` (both plain JSON), returning a new value. */
function strategicMerge(target: Json, patch: Json, field = ''): Json {
  if (isObject(target) && isObject(patch)) {
    const merged: JsonObject = { ...target };
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete merged[key];
      else merged[key] = key in merged ? strategicMerge(merged[key] as Json, value, key) : value;
    }
    return merged;
  }
  const mergeKey = MERGE_KEYS[field];
  if (Array.isArray(target) && Array.isArray(patch) && mergeKey) {
    const merged = [...target];
    for (const item of patch) {
      const at = isObject(item) ? merged.findIndex((m) => isObject(m) && m[mergeKey] === item[mergeKey]) : -1;
      if (at >= 0) merged[at] = strategicMerge(merged[at] as Json, item, '');
      else merged.push(item);
    }
    return merged;
  }
  return patch;
}

function unescapePointer(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

/** Applies JSON 6902 `add`, `replace` and `remove` operations. */
function jsonPatch(document: Json, operations: Json, where: string): Json {
  if (!Array.isArray(operations)) throw new TypeError(`${where}: a JSON 6902 patch is a list of operations`);
  const copy = structuredClone(document);
  for (const operation of operations) {
    if (!isObject(operation) || typeof operation.op !== 'string' || typeof operation.path !== 'string')
      throw new TypeError(`${where}: every operation needs op and path`);
    const tokens = operation.path.split('/').slice(1).map(unescapePointer);
    const last = tokens.pop();
    if (last === undefined) throw new TypeError(`${where}: ${operation.path} names the whole document`);
    let parent: Json = copy;
    for (const token of tokens) {
      const next: Json | undefined = Array.isArray(parent)
        ? parent[Number(token)]
        : isObject(parent)
          ? parent[token]
          : undefined;
      if (next === undefined) throw new Error(`${where}: ${operation.path}: ${token} does not exist`);
      parent = next;
    }
    const exists = Array.isArray(parent)
      ? last === '-' || Number(last) < parent.length
      : isObject(parent) && last in parent;
    switch (operation.op) {
      case 'add':
      case 'replace': {
        if (operation.op === 'replace' && !exists)
          throw new Error(`${where}: replace ${operation.path}: nothing there to replace`);
        const value = operation.value as Json;
        if (Array.isArray(parent)) {
          if (last === '-') parent.push(value);
          else if (operation.op === 'add') parent.splice(Number(last), 0, value);
          else parent[Number(last)] = value;
        } else if (isObject(parent)) parent[last] = value;
        break;
      }
      case 'remove':
        if (!exists) throw new Error(`${where}: remove ${operation.path}: nothing there`);
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else if (isObject(parent)) delete parent[last];
        break;
      default:
        throw new TypeError(`${where}: op ${operation.op} not supported (add, replace, remove)`);
    }
  }
  return copy;
}

/** Kustomize's target match: kind and name are anchored regular expressions. */
function matches(object: KubernetesObject, target: PatchTarget): boolean {
  const anchored = (pattern: string, value: string) => new RegExp(`^(?:${pattern})$`).test(value);
  if (target.kind !== undefined && !anchored(target.kind, object.kind)) return false;
  if (target.name !== undefined && !anchored(target.name, object.metadata.name)) return false;
  if (target.labelSelector !== undefined) {
    for (const requirement of target.labelSelector.split(',')) {
      const [key = '', value] = requirement.split('=').map((part) => part.trim());
      if (object.metadata.labels?.[key] !== value) return false;
    }
  }
  return true;
}

/** `name[:tag][@digest]` split into its parts. */
function parseImage(image: string): { name: string; tag?: string; digest?: string } {
  const [withTag = '', digest] = image.split('@');
  const slash = withTag.lastIndexOf('/');
  const colon = withTag.lastIndexOf(':');
  const hasTag = colon > slash;
  return {
    name: hasTag ? withTag.slice(0, colon) : withTag,
    ...(hasTag ? { tag: withTag.slice(colon + 1) } : {}),
    ...(digest ? { digest } : {}),
  };
}

function setImages(object: KubernetesObject, images: NonNullable<Kustomization['images']>): void {
  const spec = (object.spec as JsonObject | undefined)?.template as JsonObject | undefined;
  const podSpec = spec?.spec as JsonObject | undefined;
  for (const list of ['containers', 'initContainers'] as const) {
    for (const container of (podSpec?.[list] as JsonObject[] | undefined) ?? []) {
      const current = parseImage(String(container.image));
      const rule = images.find((image) => image.name === current.name);
      if (!rule) continue;
      const name = rule.newName ?? current.name;
      if (rule.digest) container.image = `${name}@${rule.digest}`;
      else {
        const tag = rule.newTag ?? current.tag;
        container.image = `${name}${tag ? `:${tag}` : ''}${current.digest && !rule.newTag ? `@${current.digest}` : ''}`;
      }
    }
  }
}

/** Every object the kustomization in `dir` produces, in the order its resources list them. */
export function renderKustomization(dir: string): KubernetesObject[] {
  const root = resolve(dir);
  const kustomization = readKustomization(root);
  let objects: KubernetesObject[] = [];
  for (const resource of kustomization.resources ?? []) {
    const path = resolve(root, resource);
    if (!existsSync(path)) throw new Error(`${root}/kustomization.yaml: resource ${resource} does not exist`);
    if (statSync(path).isDirectory()) objects.push(...renderKustomization(path));
    else objects.push(...readYamlDocuments(path).map((doc) => asObject(doc, path)));
  }
  for (const [i, patch] of (kustomization.patches ?? []).entries()) {
    const where = `${root}/kustomization.yaml patches[${i}]`;
    if (patch.path) {
      const file = resolve(root, patch.path);
      for (const document of readYamlDocuments(file)) {
        const body = asObject(document, file);
        const target = patch.target ?? { kind: body.kind, name: body.metadata.name };
        let hit = false;
        objects = objects.map((object) => {
          if (!matches(object, target)) return object;
          hit = true;
          const { metadata, ...rest } = body;
          const { name: _name, ...meta } = metadata;
          return strategicMerge(
            object as unknown as Json,
            { ...rest, metadata: meta } as unknown as Json,
          ) as unknown as KubernetesObject;
        });
        if (!hit) throw new Error(`${where}: ${file} matches no ${target.kind} ${target.name}`);
      }
    } else if (patch.patch && patch.target) {
      const [operations] = parseAllDocuments(patch.patch).map((d) => d.toJS() as Json);
      const target = patch.target;
      let hit = false;
      objects = objects.map((object) => {
        if (!matches(object, target)) return object;
        hit = true;
        return jsonPatch(
          object as unknown as Json,
          operations ?? null,
          `${where} on ${object.kind}/${object.metadata.name}`,
        ) as unknown as KubernetesObject;
      });
      if (!hit) throw new Error(`${where}: the target ${JSON.stringify(target)} matches nothing`);
    } else throw new TypeError(`${where}: give path (strategic merge) or patch with target (JSON 6902)`);
  }
  if (kustomization.namespace) {
    const namespace = kustomization.namespace;
    objects = objects.map((object) =>
      CLUSTER_SCOPED.has(object.kind) ? object : { ...object, metadata: { ...object.metadata, namespace } },
    );
  }
  for (const { name, count } of kustomization.replicas ?? []) {
    const scaled = objects.filter(
      (o) => ['Deployment', 'StatefulSet', 'ReplicaSet'].includes(o.kind) && o.metadata.name === name,
    );
    if (scaled.length === 0)
      throw new Error(`${root}/kustomization.yaml: replicas names no workload ${name}`);
    for (const object of scaled) (object.spec as JsonObject).replicas = count;
  }
  if (kustomization.images) for (const object of objects) setImages(object, kustomization.images);
  return objects;
}

/** `deploy/k8s`: `base`, `overlays/dev`, `overlays/prod`. */
export const K8S_DIR = fileURLToPath(new URL('../deploy/k8s/', import.meta.url));
