import { call } from './http';

/** The parts of an OpenAPI 3 document these tests read. */
export interface SchemaObject {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  items?: SchemaObject;
  properties?: Record<string, SchemaObject>;
  required?: string[];
  additionalProperties?: boolean | SchemaObject;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  nullable?: boolean;
  oneOf?: SchemaObject[];
  allOf?: SchemaObject[];
  anyOf?: SchemaObject[];
}

export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: SchemaObject;
}

export interface OperationObject {
  parameters?: ParameterObject[];
  requestBody?: { content?: Record<string, { schema?: SchemaObject }> };
  security?: Array<Record<string, string[]>>;
  'x-public'?: boolean;
  'x-device'?: boolean;
  'x-roles'?: string[];
  'x-optional-auth'?: boolean;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OperationObject>>;
  components?: { schemas?: Record<string, SchemaObject> };
}

export interface Operation {
  /** `METHOD /path` with OpenAPI's `{param}` placeholders, e.g. `GET /api/v1/jobs/{id}`. */
  key: string;
  method: string;
  path: string;
  operation: OpenApiDocument['paths'][string][string];
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'];

export async function fetchOpenApi(base: string): Promise<OpenApiDocument> {
  const res = await call(base, { method: 'GET', path: '/docs-json' });
  if (res.status !== 200) {
    throw new Error(`GET /docs-json: ${res.status} ${res.text.slice(0, 200)}`);
  }
  return JSON.parse(res.text) as OpenApiDocument;
}

/** Every operation of the document, sorted by its key. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (METHODS.includes(method)) {
        const upper = method.toUpperCase();
        operations.push({ key: `${upper} ${path}`, method: upper, path, operation });
      }
    }
  }
  return operations.sort((a, b) => a.key.localeCompare(b.key));
}

/** A schema with its `$ref` (and `allOf` of one) replaced by the referenced component. */
export function resolveSchema(
  doc: OpenApiDocument,
  schema: SchemaObject | undefined,
): SchemaObject {
  let current = schema ?? {};
  for (let depth = 0; depth < 20; depth++) {
    if (current.$ref) {
      const name = current.$ref.replace('#/components/schemas/', '');
      current = doc.components?.schemas?.[name] ?? {};
    } else if (current.allOf?.length === 1 && !current.properties) {
      current = current.allOf[0];
    } else {
      return current;
    }
  }
  return current;
}

/** `/api/v1/jobs/{id}` with its placeholders replaced (each value URL-encoded). */
export function fillPath(path: string, values: Record<string, string>): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) {
      throw new Error(`no value for {${name}} in ${path}`);
    }
    return encodeURIComponent(value);
  });
}
