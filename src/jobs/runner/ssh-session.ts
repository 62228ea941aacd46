import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  Client,
  type ClientChannel,
  type SFTPWrapper,
  type Stats,
  type SyncHostVerifier,
} from 'ssh2';

/** Connection trouble that a new connection may cure: refused, reset, timed out, closed. */
export class SshTransportError extends Error {}

/** Host key mismatch, unusable key, key refused: a new connection would fail the same way. */
export class SshTrustError extends Error {}

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: string | Buffer;
  /** `SHA256:…` as `ssh-keygen -lf` prints it. */
  hostFingerprint: string;
  connectTimeoutMs: number;
}

export interface ExecResult {
  /** null when the remote end sent no exit status (killed by a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `SHA256:` + unpadded base64 of sha256(key blob): what `ssh-keygen -lf` prints. */
export function hostKeyFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

const SFTP_NO_SUCH_FILE = 2;

/**
 * One verified SSH connection to a cluster's login node: commands and SFTP transfers. Every
 * failure of the link itself comes out as an SshTransportError, so that callers can tell
 * "reconnect and retry" from everything else.
 */
export class SshSession {
  private sftpChannel?: Promise<SFTPWrapper>;
  private closed = false;
  private readonly pending = new Set<(err: Error) => void>();

  private constructor(
    private readonly client: Client,
    readonly where: string,
  ) {
    // Always listened to: an unhandled 'error' event would take the worker down.
    client.on('error', (err) => this.lost(err.message));
    client.on('close', () => this.lost('connection closed'));
  }

  /** Connects with key auth only, after checking the host key against the registered one. */
  static connect(target: SshTarget): Promise<SshSession> {
    const where = `${target.host}:${target.port}`;
    const expected = target.hostFingerprint.trim();
    return new Promise((resolve, reject) => {
      const client = new Client();
      let presented: string | undefined;
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) {
          return;
        }
        settled = true;
        client.off('error', onError).off('close', onClose);
        if (err) {
          client.on('error', () => undefined).destroy();
          reject(err);
        } else {
          resolve(new SshSession(client, where));
        }
      };
      const onError = (err: Error & { level?: string }) => {
        if (presented !== undefined && presented !== expected) {
          settle(
            new SshTrustError(
              `host key of ${where} is ${presented}, expected ${expected || '(none registered)'}: ` +
                'refusing to connect',
            ),
          );
        } else if (err.level === 'client-authentication') {
          settle(new SshTrustError(`${where} refused the key of ${target.username}`));
        } else {
          settle(new SshTransportError(`cannot connect to ${where}: ${err.message}`));
        }
      };
      const onClose = () => settle(new SshTransportError(`${where} closed the connection`));
      client.on('error', onError).on('close', onClose);
      client.once('ready', () => settle());
      const hostVerifier: SyncHostVerifier = (key: Buffer) => {
        presented = hostKeyFingerprint(key);
        return expected !== '' && presented === expected;
      };
      try {
        client.connect({
          host: target.host,
          port: target.port,
          username: target.username,
          privateKey: target.privateKey,
          authHandler: ['publickey'], // never a password, an agent or a prompt
          hostVerifier,
          readyTimeout: target.connectTimeoutMs,
          keepaliveInterval: 15_000,
          keepaliveCountMax: 4,
        });
      } catch (err) {
        // ssh2 parses the key synchronously.
        settle(new SshTrustError(`cannot use the private key for ${where}: ${errorText(err)}`));
      }
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs a command through the login shell; output kept up to maxBytes per stream. */
  exec(command: string, timeoutMs: number, maxBytes = 64 * 1024): Promise<ExecResult> {
    return this.track<ExecResult>((resolve, reject, onEnd) => {
      this.client.exec(command, (err, stream: ClientChannel) => {
        if (err) {
          reject(this.transport(`cannot run a command: ${err.message}`));
          return;
        }
        const stdout = new Capped(maxBytes);
        const stderr = new Capped(maxBytes);
        let code: number | null = null;
        const timer = setTimeout(() => {
          stream.close();
          reject(this.transport(`a command did not finish within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        onEnd(() => clearTimeout(timer)); // also when the connection goes first
        stream.on('data', (chunk: Buffer) => stdout.push(chunk));
        stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        stream.on('exit', (exitCode: number | null) => (code = exitCode ?? null));
        stream.on('close', () => {
          resolve({ code, stdout: stdout.text(), stderr: stderr.text() });
        });
      });
    });
  }

  async realpath(path: string): Promise<string> {
    const sftp = await this.sftp();
    return this.track((resolve, reject) =>
      sftp.realpath(path, (err, abs) => (err ? reject(this.sftpError(err)) : resolve(abs))),
    );
  }

  /** The entry's attributes (symlinks not followed), or undefined when there is none. */
  async lstat(path: string): Promise<Stats | undefined> {
    const sftp = await this.sftp();
    return this.track((resolve, reject) =>
      sftp.lstat(path, (err, stats) => {
        if ((err as { code?: number } | undefined)?.code === SFTP_NO_SUCH_FILE) {
          resolve(undefined);
        } else if (err) {
          reject(this.sftpError(err));
        } else {
          resolve(stats);
        }
      }),
    );
  }

  async mkdirp(path: string): Promise<void> {
    if ((await this.lstat(path))?.isDirectory()) {
      return;
    }
    const parent = posix.dirname(path);
    if (parent !== path) {
      await this.mkdirp(parent);
    }
    const sftp = await this.sftp();
    await this.track<void>((resolve, reject) =>
      sftp.mkdir(path, (err) => (err ? reject(this.sftpError(err, path)) : resolve())),
    );
  }

  /** Streams a local file up; keeps the execute bits (service scripts). */
  async upload(localFile: string, remoteFile: string, mode: number): Promise<void> {
    const sftp = await this.sftp();
    await this.guard(() =>
      pipeline(
        createReadStream(localFile),
        sftp.createWriteStream(remoteFile, { mode: mode & 0o777 }),
      ),
    );
    if (mode & 0o111) {
      await this.track<void>((resolve, reject) =>
        sftp.chmod(remoteFile, mode & 0o777, (err) =>
          err ? reject(this.sftpError(err, remoteFile)) : resolve(),
        ),
      );
    }
  }

  /** Uploads a folder's files and subfolders; symlinks to files are followed, to folders not. */
  async uploadDir(localDir: string, remoteDir: string): Promise<void> {
    await this.mkdirp(remoteDir);
    for (const entry of await readdir(localDir, { withFileTypes: true })) {
      const local = join(localDir, entry.name);
      const remote = posix.join(remoteDir, entry.name);
      if (entry.isDirectory()) {
        await this.uploadDir(local, remote);
      } else if (entry.isFile() || entry.isSymbolicLink()) {
        const info = await stat(local).catch(() => undefined);
        if (info?.isFile()) {
          await this.upload(local, remote, info.mode);
        }
      }
    }
  }

  async writeFile(remoteFile: string, content: string, mode: number): Promise<void> {
    const sftp = await this.sftp();
    await this.guard(() =>
      pipeline(Readable.from([Buffer.from(content)]), sftp.createWriteStream(remoteFile, { mode })),
    );
    await this.track<void>((resolve, reject) =>
      sftp.chmod(remoteFile, mode, (err) => (err ? reject(this.sftpError(err)) : resolve())),
    );
  }

  async download(remoteFile: string, localFile: string): Promise<void> {
    const sftp = await this.sftp();
    await this.guard(() =>
      pipeline(sftp.createReadStream(remoteFile), createWriteStream(localFile)),
    );
  }

  /** Streams the first maxBytes of a remote file to onChunk. */
  async read(
    remoteFile: string,
    maxBytes: number,
    onChunk: (chunk: Buffer) => void,
  ): Promise<void> {
    if (maxBytes <= 0) {
      return;
    }
    const sftp = await this.sftp();
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        onChunk(chunk);
        done();
      },
    });
    await this.guard(() =>
      pipeline(sftp.createReadStream(remoteFile, { start: 0, end: maxBytes - 1 }), sink),
    );
  }

  /**
   * Copies a remote folder down. Only plain files and folders: a job could leave a symlink to
   * anything on the cluster in its outputs. Names are checked, though the server sends them.
   */
  async downloadDir(remoteDir: string, localDir: string): Promise<void> {
    await mkdir(localDir, { recursive: true });
    const sftp = await this.sftp();
    const entries = await this.track<{ filename: string; attrs: Stats }[]>((resolve, reject) =>
      sftp.readdir(remoteDir, (err, list) =>
        err ? reject(this.sftpError(err, remoteDir)) : resolve(list),
      ),
    );
    for (const { filename, attrs } of entries) {
      if (!filename || filename.includes('/') || filename === '.' || filename === '..') {
        continue;
      }
      const remote = posix.join(remoteDir, filename);
      if (attrs.isDirectory()) {
        await this.downloadDir(remote, join(localDir, filename));
      } else if (attrs.isFile()) {
        await this.download(remote, join(localDir, filename));
      }
    }
  }

  /** A small remote file as text (exit codes, markers), or undefined when it is absent. */
  async readSmallFile(remoteFile: string, maxBytes = 1024): Promise<string | undefined> {
    if (!(await this.lstat(remoteFile))?.isFile()) {
      return undefined;
    }
    const chunks: Buffer[] = [];
    await this.read(remoteFile, maxBytes, (chunk) => chunks.push(chunk));
    return Buffer.concat(chunks).toString('utf8');
  }

  /** Ends the connection; resolves once the socket is closed (destroyed if the end hangs). */
  close(): Promise<void> {
    if (this.closed) {
      this.client.destroy(); // after an error the socket may linger
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.client.destroy(), 2000);
      this.client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.client.end();
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpChannel ??= this.track<SFTPWrapper>((resolve, reject) =>
      this.client.sftp((err, sftp) =>
        err ? reject(this.transport(`cannot open SFTP: ${err.message}`)) : resolve(sftp),
      ),
    );
    return this.sftpChannel;
  }

  /**
   * A pending operation that fails with an SshTransportError when the connection goes, whether
   * or not ssh2 reports it on the operation itself.
   */
  private track<T>(
    work: (
      resolve: (value: T) => void,
      reject: (err: Error) => void,
      onEnd: (cleanUp: () => void) => void,
    ) => void,
  ): Promise<T> {
    if (this.closed) {
      return Promise.reject(this.transport('connection closed'));
    }
    return new Promise<T>((resolve, reject) => {
      const cleanUps: (() => void)[] = [];
      const end = () => {
        this.pending.delete(fail);
        cleanUps.forEach((cleanUp) => cleanUp());
      };
      const fail = (err: Error) => {
        end();
        reject(err);
      };
      this.pending.add(fail);
      try {
        work(
          (value) => {
            end();
            resolve(value);
          },
          fail,
          (cleanUp) => cleanUps.push(cleanUp),
        );
      } catch (err) {
        fail(this.transport(errorText(err)));
      }
    });
  }

  /** A stream transfer: any error once the link is gone is the link's fault. */
  private async guard(transfer: () => Promise<void>): Promise<void> {
    try {
      await this.track<void>((resolve, reject) => {
        transfer().then(resolve, reject);
      });
    } catch (err) {
      throw this.closed && !(err instanceof SshTransportError)
        ? this.transport(errorText(err))
        : err;
    }
  }

  private lost(why: string): void {
    this.closed = true;
    const err = this.transport(why);
    for (const fail of [...this.pending]) {
      fail(err);
    }
  }

  private transport(message: string): SshTransportError {
    return new SshTransportError(`${this.where}: ${message}`);
  }

  private sftpError(err: Error, path?: string): Error {
    if (this.closed) {
      return this.transport(err.message);
    }
    return new Error(`${this.where}: ${err.message}${path ? ` (${path})` : ''}`);
  }
}

/** Output kept up to a cap, so that a chatty command cannot fill the worker's memory. */
class Capped {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    const room = this.cap - this.size;
    if (room > 0) {
      const kept = chunk.subarray(0, room);
      this.chunks.push(kept);
      this.size += kept.length;
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
