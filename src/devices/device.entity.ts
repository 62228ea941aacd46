import { randomUUID } from 'node:crypto';
import { Entity, EntityRepositoryType, Enum, Index, PrimaryKey, Property } from '@mikro-orm/core';
import {
  ADMIN_STATES,
  type AdminState,
  DEVICE_KINDS,
  DEVICE_RUNNERS,
  type DeviceKind,
  type DeviceRunner,
} from './device-state';
import { DeviceRepository } from './device.repository';

/** How the SSH runner reaches an HPC login node (runner `ssh`). */
export interface SshSettings {
  host: string;
  port: number;
  username: string;
  /** Path of the private key on the worker's machine (a mounted secret); never stored itself. */
  privateKeyFile: string;
  /** The host key's SHA-256 fingerprint (`SHA256:…`, as ssh-keygen -l prints it); required. */
  hostFingerprint: string;
  /** Remote folder under which each job gets a folder of its own. */
  workDir: string;
  /** Submits the job script; `{script}` is its remote path. Prints the cluster's job id. */
  submitCommand: string;
  /**
   * Prints the cluster job's state (`{id}` is the id the submit printed), e.g.
   * `sacct -n -X -P -j {id} -o State`. Without one, the cluster calls back through the agent
   * completion endpoint with the device token instead of being polled.
   */
  statusCommand?: string;
  /** Command that cancels a cluster job, e.g. `scancel {id}`. */
  cancelCommand?: string;
  pollSeconds: number;
}

/** A machine that runs jobs: a GPU box, a lab enclosure, an HPC cluster, or the workers. */
@Entity({ tableName: 'device', repository: () => DeviceRepository })
export class Device {
  [EntityRepositoryType]?: DeviceRepository;

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text', unique: true })
  name!: string;

  @Enum({ items: () => [...DEVICE_KINDS] })
  kind!: DeviceKind;

  @Enum({ items: () => [...DEVICE_RUNNERS] })
  runner!: DeviceRunner;

  /** Service keys this device offers; `*` offers every service. */
  @Property({ type: 'json' })
  services: string[] = [];

  /** How many jobs it runs at once. */
  @Property({ type: 'integer' })
  slots: number = 1;

  @Property({ type: 'text', nullable: true })
  location?: string;

  @Property({ type: 'json' })
  labels: Record<string, string> = {};

  @Enum({ items: () => [...ADMIN_STATES] })
  adminState: AdminState = 'enabled';

  @Property({ type: 'json', nullable: true })
  ssh?: SshSettings;

  /** SHA-256 of the device token (`lgd_…`), which is shown once. */
  @Property({ type: 'text', unique: true, lazy: true })
  tokenHash!: string;

  @Property({ type: 'text' })
  tokenHint!: string;

  @Index()
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  lastHeartbeatAt?: Date;

  /** What the agent said in its last heartbeat. */
  @Property({ type: 'text', nullable: true })
  reportedStatus?: string;

  @Property({ type: 'json', nullable: true })
  reportedMetrics?: Record<string, unknown>;

  @Property({ type: 'json', nullable: true })
  reportedJobs?: string[];

  /** Jobs assigned to or running on it, kept by the scheduler (for BUSY and shortest queue). */
  @Property({ type: 'integer' })
  activeJobs: number = 0;

  /** When a job was last placed on it: ties in the shortest queue go to the least recent. */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  lastAssignedAt?: Date;

  /** Set when it was found DOWN (its jobs were put back), cleared by its next heartbeat. */
  @Property({ type: 'datetime', columnType: 'timestamptz', nullable: true })
  downSince?: Date;

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', columnType: 'timestamptz' })
  updatedAt: Date = new Date();
}
