import { HttpStatus, Injectable, StreamableFile } from '@nestjs/common';
import { PassThrough } from 'node:stream';
import type { Request, Response } from 'express';
import { EntityManager } from '@mikro-orm/postgresql';
import { ProblemException } from '../common/problem';
import { BlobStorage } from '../storage/blob-storage';
import { JobEventsBus } from './job-events.bus';
import { isFinal, JobState } from './job-state';
import { Job } from './job.entity';

const DEFAULT_TAIL = 64 * 1024;

/** What a job leaves in storage, served as streams: its log and its result archive. */
@Injectable()
export class JobFilesService {
  constructor(
    private readonly em: EntityManager,
    private readonly storage: BlobStorage,
    private readonly bus: JobEventsBus,
  ) {}

  /**
   * `follow`: the stored log, then every new piece until the job ends (from whichever worker
   * runs it), as one streamed response. Pieces are placed by their byte offset, so the seam
   * between the stored copy and the live pieces neither repeats nor reorders text.
   */
  async follow(job: Job): Promise<StreamableFile> {
    const key = `jobs/${job.id}/log.txt`;
    const out = new PassThrough();
    let written = 0;
    const pending: Array<{ offset: number; chunk: string }> = [];
    let ready = false;
    let finished = false;
    const close = () => {
      stop();
      if (!out.writableEnded) {
        out.end();
      }
    };
    const write = (offset: number, chunk: string) => {
      const bytes = Buffer.from(chunk);
      const end = offset + bytes.length;
      if (end > written) {
        out.write(bytes.subarray(Math.max(0, written - offset)));
        written = end;
      }
    };
    const stop = await this.bus.subscribe(job.id, (update) => {
      if (update.type === 'log') {
        if (ready) {
          write(update.offset, update.chunk);
        } else {
          pending.push(update);
        }
      } else if (update.type === 'state' && isFinal(update.state)) {
        finished = true;
        if (ready) {
          close();
        }
      }
    });
    out.on('close', stop);
    const stored = await this.storage.stat(key);
    if (stored) {
      for await (const chunk of this.storage.read(key)) {
        out.write(chunk as Buffer);
      }
      written = stored.size;
    }
    ready = true;
    for (const piece of pending) {
      write(piece.offset, piece.chunk);
    }
    // It may have ended before we subscribed: PostgreSQL says.
    const now = await this.em.fork().findOne(Job, job.id, { fields: ['state'] });
    if (finished || !now || isFinal(now.state)) {
      close();
    }
    return new StreamableFile(out, { type: 'text/plain; charset=utf-8' });
  }

  async log(job: Job, tail?: string): Promise<StreamableFile> {
    const bytes = tail === undefined ? DEFAULT_TAIL : Number(tail);
    if (!Number.isInteger(bytes) || bytes < 1) {
      throw new ProblemException(
        HttpStatus.BAD_REQUEST,
        'tail must be a positive whole number of bytes.',
        {
          errors: [{ field: 'tail', message: 'tail must be a positive integer' }],
        },
      );
    }
    const key = `jobs/${job.id}/log.txt`;
    const stat = await this.storage.stat(key);
    if (!stat) {
      return new StreamableFile(Buffer.from(''), { type: 'text/plain; charset=utf-8' });
    }
    const start = Math.max(0, stat.size - bytes);
    return new StreamableFile(this.storage.read(key, { start }), {
      type: 'text/plain; charset=utf-8',
      length: stat.size - start,
    });
  }

  async result(job: Job, req: Request, res: Response): Promise<StreamableFile | undefined> {
    if (job.state !== JobState.Succeeded || !job.resultSha256) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        job.state === JobState.Expired
          ? 'The result has been removed (the job expired).'
          : `The job is ${job.state}; a result exists once it has succeeded.`,
      );
    }
    const key = `jobs/${job.id}/result.tar.gz`;
    const stat = await this.storage.stat(key);
    if (!stat) {
      throw new ProblemException(HttpStatus.GONE, 'The result file is missing from storage.');
    }
    const etag = `"${job.resultSha256}"`;
    res.setHeader('ETag', etag);
    res.setHeader('Cache-Control', 'private, no-cache');
    if (req.headers['if-none-match'] === etag) {
      res.status(304);
      return undefined;
    }
    return new StreamableFile(this.storage.read(key), {
      type: 'application/gzip',
      length: stat.size,
      disposition: `attachment; filename="${job.service}-${job.id}.tar.gz"`,
    });
  }
}
