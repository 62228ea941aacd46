import { HttpStatus } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { ProblemException } from './problem';

/** `?limit=&cursor=`: keyset pagination, stable under inserts (no offsets). */
export class PageQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit: number = 50;

  @ApiPropertyOptional({ description: 'The nextCursor of the previous page.' })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  cursor?: string;
}

export class PageInfo {
  @ApiPropertyOptional({ description: 'Pass as ?cursor= for the next page; absent on the last.' })
  nextCursor?: string;
}

/** A cursor is the sort key of the last row seen: (timestamp, id), opaque to callers. */
export function encodeCursor(at: Date, id: string): string {
  return Buffer.from(JSON.stringify([at.toISOString(), id])).toString('base64url');
}

export function decodeCursor(cursor: string): { at: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [string, string];
    const date = new Date(at);
    if (typeof id !== 'string' || Number.isNaN(date.getTime())) {
      throw new Error('bad cursor');
    }
    return { at: date, id };
  } catch {
    throw new ProblemException(HttpStatus.BAD_REQUEST, 'The cursor is not one this API gave out.', {
      errors: [{ field: 'cursor', message: 'cursor must be a nextCursor from a previous page' }],
    });
  }
}

export class Page<T> {
  @ApiProperty({ isArray: true })
  items: T[];

  @ApiPropertyOptional()
  nextCursor?: string;
}
