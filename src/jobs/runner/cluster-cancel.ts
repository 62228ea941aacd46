import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { SshSettings } from '../../devices/device.entity';
import { fillCommand, shellQuote } from './ssh-script';
import { SshSession } from './ssh-session';

const COMMAND_TIMEOUT_MS = 60_000;

/**
 * Ends a cluster job nobody polls (a device without a status command: the cluster calls back):
 * its cancel command with the cluster's job id, then its remote folder. Best effort, like
 * scancel itself: reports what went wrong instead of throwing.
 */
export async function cancelOnCluster(
  settings: SshSettings,
  jobId: string,
  externalId: string,
): Promise<string | undefined> {
  let session: SshSession | undefined;
  try {
    session = await SshSession.connect({
      host: settings.host,
      port: settings.port,
      username: settings.username,
      privateKey: await readFile(settings.privateKeyFile),
      hostFingerprint: settings.hostFingerprint,
      connectTimeoutMs: 20_000,
    });
    if (settings.cancelCommand) {
      const result = await session.exec(
        fillCommand(settings.cancelCommand, { id: externalId }),
        COMMAND_TIMEOUT_MS,
      );
      if (result.code !== 0) {
        return `cancel command exited with ${result.code}: ${result.stderr.trim().slice(0, 500)}`;
      }
    }
    await session.exec(
      `rm -rf -- ${shellQuote(posix.join(settings.workDir, jobId))}`,
      COMMAND_TIMEOUT_MS,
    );
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await session?.close();
  }
}
