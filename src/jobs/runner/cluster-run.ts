import { readFile } from 'node:fs/promises';
import type { ServiceManifest } from '../../catalog/manifest';
import type { Device } from '../../devices/device.entity';
import type { AttemptResult } from '../job-execution.service';
import type { Job } from '../job.entity';
import type { WorkDir } from '../work-dir';
import { runOverSsh } from './ssh-runner';

export interface ClusterRun {
  device: Device;
  job: Job;
  manifest: ServiceManifest;
  workDir: WorkDir;
  signal: AbortSignal;
  /** The API's external URL: a cluster that calls back needs it. */
  publicUrl: string;
  onSubmitted: (externalId: string) => Promise<void>;
  onState: (clusterState: string) => void;
}

/**
 * A job on a device with runner `ssh`: submitted to the cluster behind it, then polled to its
 * end, or left to call the agent completion endpoint (`submitted`) when the device has no
 * status command.
 */
export async function runOnCluster(run: ClusterRun): Promise<'submitted' | AttemptResult> {
  const { device, job, manifest, workDir } = run;
  if (!device.ssh) {
    return {
      outcome: 'failed',
      exitCode: null,
      reason: `device ${device.name} has no SSH settings`,
    };
  }
  let privateKey: Buffer;
  try {
    privateKey = await readFile(device.ssh.privateKeyFile);
  } catch (err) {
    return {
      outcome: 'failed',
      exitCode: null,
      reason: `the SSH key of ${device.name} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    };
  }
  const env: Record<string, string> = {
    LABGATE_JOB_ID: job.id,
    LABGATE_URL: run.publicUrl,
    LABGATE_COMPLETE_URL: `${run.publicUrl}/api/v1/agent/jobs/${job.id}/complete`,
  };
  for (const name of manifest.run.env) {
    const value = process.env[name];
    if (value !== undefined) {
      env[name] = value;
    }
  }
  const result = await runOverSsh({
    settings: device.ssh,
    privateKey,
    jobId: job.id,
    localWorkDir: workDir.root,
    serviceDir: manifest.dir,
    run: manifest.run,
    env,
    signal: run.signal,
    onSubmitted: run.onSubmitted,
    onState: run.onState,
    logFile: workDir.logFile,
  });
  switch (result.outcome) {
    case 'submitted':
      return 'submitted';
    case 'exited':
      return {
        outcome: 'exited',
        exitCode: result.exitCode,
        reason:
          result.exitCode === 0
            ? undefined
            : `cluster job ${result.externalId} exited with code ${result.exitCode}`,
      };
    case 'failed':
      return { outcome: 'failed', exitCode: null, reason: result.reason };
    case 'cancelled':
      return { outcome: 'cancelled', exitCode: null };
  }
}
