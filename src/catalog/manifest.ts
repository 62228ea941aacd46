/**
 * A compute service as an operator declares it in a YAML manifest under SERVICES_DIR. It says
 * *what* runs; where and how (local process, remote agent, cluster) belongs to the device.
 */
export const INPUT_TYPES = [
  'file',
  'volume',
  'float',
  'int',
  'string',
  'boolean',
  'choice',
] as const;
export type InputType = (typeof INPUT_TYPES)[number];

export interface InputSpec {
  name: string;
  type: InputType;
  title?: string;
  description?: string;
  /** Inputs are required unless `required: false` or a `default` is given. */
  required: boolean;
  default?: string | number | boolean;
  /** int/float bounds. */
  min?: number;
  max?: number;
  /** string rules. */
  maxLength?: number;
  pattern?: string;
  /** choice options. */
  options?: string[];
  /** file/volume rules: lower-case extensions with the dot (`.trc`, `.nii.gz`), media types. */
  extensions?: string[];
  mediaTypes?: string[];
  maxBytes?: number;
}

export interface RunSpec {
  /** argv, never a shell string. `{serviceDir}` is replaced by the manifest's folder. */
  command: string[];
  /** Names of environment variables passed through to the program (nothing else is). */
  env: string[];
  timeoutSeconds: number;
  /** Cap on stdout+stderr kept as the job log, and on the packed outputs. */
  maxOutputBytes: number;
}

export interface RetryPolicy {
  attempts: number;
  backoffSeconds: number;
}

export interface ServiceManifest {
  key: string;
  title: string;
  description: string;
  version: string;
  inputs: InputSpec[];
  /** JSON Schema for the metrics (outputs/metrics.json) a run reports. */
  resultSchema?: Record<string, unknown>;
  run: RunSpec;
  retry: RetryPolicy;
  requiredEntitlement?: string;
  retentionDays: number;
  /** Most jobs of this service running at once, over all users and devices. */
  maxConcurrentJobs?: number;
  /** Most jobs of this service one user may have assigned or running at once. */
  maxRunningPerUser?: number;
  /** Default priority of its jobs (higher first, among one user's waiting jobs). */
  priority: number;
  /** Absolute folder of the manifest file (for `{serviceDir}`). */
  dir: string;
  /** Absolute path of the manifest file, for messages. */
  file: string;
}

/** Values of the non-file inputs after validation, and the file inputs by name. */
export type InputValues = Record<string, string | number | boolean>;
