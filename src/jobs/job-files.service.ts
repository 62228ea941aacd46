import { HttpStatus, Injectable, StreamableFile } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ProblemException } from '../common/problem';
import { BlobStorage } from '../storage/blob-storage';
import { JobState } from './job-state';
import type { Job } from './job.entity';

const DEFAULT_TAIL = 64 * 1024;

/** What a job leaves in storage, served as streams: its log and its result archive. */
@Injectable()
export class JobFilesService {
  constructor(private readonly storage: BlobStorage) {}

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
